"""Reading mirstd checkpoints (``weights_only=True``): the model they name, with their weights.

Checkpoints are written by the engine (``mirstd.engine.checkpoint.save_checkpoint``); reading them
lives here so inference never needs the training engine.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from mirstd.models.base import Method
from mirstd.models.registry import create


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        ckpt = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # truncated, zero-byte, text, or a pickle weights_only refuses
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(f"{path} is not a readable checkpoint ({first[:160]})") from None
    if not isinstance(ckpt, dict) or "model" not in ckpt or "model_name" not in ckpt:
        raise ValueError(f"{path} is not a mirstd checkpoint (needs 'model' and 'model_name' keys)")
    return ckpt


def model_from_checkpoint(
    weights: str | Path, device: str | torch.device = "cpu", use_ema: bool = True
) -> tuple[Method, dict[str, Any]]:
    """Build the registered model named in the checkpoint and load its (EMA, when present) weights."""
    ckpt = load_checkpoint(weights)
    model = create(ckpt["model_name"], **(ckpt.get("model_args") or {}))
    ema = ckpt.get("ema")
    state = ema["model"] if (use_ema and ema) else ckpt["model"]
    try:
        model.load_state_dict(state)
    except RuntimeError as e:
        n = str(e).count("\n")
        raise ValueError(
            f"{weights}: its weights do not fit model {ckpt['model_name']!r} with model_args "
            f"{ckpt.get('model_args') or {}} ({n} mismatched entries)"
        ) from None
    return model.to(device).eval(), ckpt
