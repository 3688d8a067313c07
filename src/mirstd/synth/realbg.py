"""Real infrared frames as backgrounds (spec ``synth.md`` §2.2, "user frames").

A folder is searched recursively; images in the same directory form one source sequence (sorted
by name). Real frames already hold sensor noise and non-uniformity, so the synthetic sensor layer is
off for them (optional extra temporal noise, ``sensor.real_noise``) and the platform motion is the
real sequence's own (no ego warp: synthetic targets move in frame coordinates).

**Real targets are excluded, not relabelled.** When a source has known target points — a TensorISTD
layout ``<root>/anno/<dir name>.txt`` (1-based ``x y`` per frame, e.g. airground-real) — the crop
window is chosen so that every real target position of the clip lies at least ``exclusion`` px
outside it. A real target without a mask cannot get a trustworthy mask/box/SCR, so it is cropped
away rather than labelled. Frames with unknown real targets must be target-free (user's duty).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mirstd.data.image import IMAGE_SUFFIXES, read_frame


@dataclass(frozen=True)
class RealSource:
    name: str
    frames: tuple[Path, ...]
    points: np.ndarray | None  # (n_frames, 2) 0-based (x, y) of the real target, or None


def _anno_for(root: Path, seq_dir: Path, n: int) -> np.ndarray | None:
    cand = root / "anno" / f"{seq_dir.name}.txt"
    if not cand.is_file():
        return None
    rows = [ln.split() for ln in cand.read_text().splitlines() if ln.strip()]
    try:
        pts = np.array([[float(r[0]) - 1.0, float(r[1]) - 1.0] for r in rows])
    except (ValueError, IndexError) as e:
        raise ValueError(f"{cand}: expected 'x y' per line ({e})") from e
    if len(pts) < n:
        raise ValueError(f"{cand}: {len(pts)} points but {n} frames in {seq_dir}")
    return pts[:n]


@lru_cache(maxsize=8)
def scan_folder(path: str) -> tuple[RealSource, ...]:
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"synth key 'backgrounds': {root} is not a folder of IR frames")
    groups: dict[Path, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            groups.setdefault(p.parent, []).append(p)
    if not groups:
        raise FileNotFoundError(f"synth key 'backgrounds': no image files under {root}")
    return tuple(
        RealSource(str(d.relative_to(root)) or d.name, tuple(fs), _anno_for(root, d, len(fs)))
        for d, fs in sorted(groups.items())
    )


@lru_cache(maxsize=4096)
def _load(p: Path) -> np.ndarray:
    img, depth = read_frame(p)
    scale = 1.0 if depth in (8, 0) else 255.0 / (2**depth - 1)  # nominal 8-bit DN
    return img.astype(np.float64) * scale


def real_clip(
    path: str, rng: np.random.Generator, num_frames: int, size: tuple[int, int], exclusion: int = 12
) -> tuple[np.ndarray, dict]:
    """(T, H, W) frames cropped from a real source, real targets kept ≥ ``exclusion`` px outside."""
    sources = scan_folder(str(path))
    h, w = size
    for _ in range(50):
        src = sources[int(rng.integers(len(sources)))]
        n = len(src.frames)
        start = int(rng.integers(n))
        idx = [_pingpong(start + t, n) for t in range(num_frames)]
        fh, fw = _load(src.frames[idx[0]]).shape
        if fh < h or fw < w:
            raise ValueError(f"synth: real frames of {src.name} are {fh}x{fw}, smaller than size={h}x{w}")
        oy, ox = int(rng.integers(fh - h + 1)), int(rng.integers(fw - w + 1))
        if src.points is not None:
            pts = src.points[idx]
            inside = (
                (pts[:, 0] > ox - exclusion)
                & (pts[:, 0] < ox + w - 1 + exclusion)
                & (pts[:, 1] > oy - exclusion)
                & (pts[:, 1] < oy + h - 1 + exclusion)
            )
            if inside.any():
                continue
        frames = np.stack([_load(src.frames[i])[oy : oy + h, ox : ox + w] for i in idx])
        return frames, {
            "source": src.name,
            "start": start,
            "crop_yx": [oy, ox],
            "real_target_excluded": src.points is not None,
        }
    raise ValueError(
        f"synth: no crop of {h}x{w} keeps the known real targets of {path} at least {exclusion} px outside; use a smaller size"
    )


def _pingpong(i: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i
