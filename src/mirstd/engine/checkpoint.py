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

from mirstd._version import __version__
from mirstd.models.checkpoint import load_checkpoint, model_from_checkpoint
from mirstd.utils.io import atomic_save_torch

__all__ = ["load_checkpoint", "model_from_checkpoint", "rng_state", "save_checkpoint", "set_rng_state"]


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
    return atomic_save_torch({**state, "mirstd_version": __version__}, path)
