from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np
import pytest


def shared_dir() -> Path | None:
    env = os.environ.get("MIRSTD_SHARED")
    cands = [Path(env)] if env else []
    cands.append(Path(__file__).resolve().parents[2] / ".." / "shared")
    for c in cands:
        if (c / "data" / "airground-real").is_dir():
            return c
    return None


@pytest.fixture
def airground() -> Path:
    d = shared_dir()
    if d is None:
        pytest.skip("shared data not found: set MIRSTD_SHARED to the folder holding data/airground-real")
    return d / "data" / "airground-real"


def frame(seed: int, h: int = 32, w: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 200, (h, w), dtype=np.uint8)


def write_img(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), arr)
    return path


def mask_with(h: int, w: int, boxes: list[tuple[int, int, int, int]]) -> np.ndarray:
    m = np.zeros((h, w), np.uint8)
    for x1, y1, x2, y2 in boxes:
        m[y1:y2, x1:x2] = 255
    return m
