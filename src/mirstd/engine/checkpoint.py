"""Checkpoints: plain dicts of tensors and primitive containers, loadable with ``weights_only=True``.

Keys: ``model`` (state_dict), ``ema`` (state_dict or None), ``optimizer``, ``scheduler``, ``scaler``,
``step``, ``epoch``, ``batch_in_epoch``, ``rng`` (torch/cuda tensors, numpy and python states as lists),
``config``, ``model_name``, ``model_args``, ``best_metric``, ``mirstd_version``.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mirstd.utils.io import atomic_save_torch


def rng_state() -> dict[str, Any]:
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "numpy": [
            str(np_state[0]),
            np_state[1].tolist(),
            int(np_state[2]),
            int(np_state[3]),
            float(np_state[4]),
        ],
        "python": [int(py_state[0]), list(py_state[1]), py_state[2]],
    }
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"].cpu())
    n = state["numpy"]
    np.random.set_state((n[0], np.asarray(n[1], dtype=np.uint32), n[2], n[3], n[4]))
    p = state["python"]
    random.setstate((p[0], tuple(p[1]), p[2]))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all([s.cpu() for s in state["cuda"]])


def save_checkpoint(path: str | Path, state: dict[str, Any]) -> Path:
    from mirstd import __version__

    return atomic_save_torch({**state, "mirstd_version": __version__}, path)


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    ckpt = torch.load(path, map_location=map_location, weights_only=True)
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_name" not in ckpt:
        raise ValueError(f"{path} is not a mirstd checkpoint (needs 'model' and 'model_name' keys)")
    return ckpt


def model_from_checkpoint(
    weights: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> tuple[nn.Module, dict[str, Any]]:
    """Build the registered model named in the checkpoint and load its (EMA, when present) weights."""
    from mirstd.models import create  # lazy: the registry imports every model family

    ckpt = load_checkpoint(weights)
    model = create(ckpt["model_name"], **(ckpt.get("model_args") or {}))
    ema = ckpt.get("ema")
    model.load_state_dict(ema["model"] if (use_ema and ema) else ckpt["model"])
    return model.to(device).eval(), ckpt
