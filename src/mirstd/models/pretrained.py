"""Weights shipped inside the package (``mirstd/weights/<name>.pt`` + its model card ``<name>.json``).

Nothing is downloaded: a name has weights only if the file is in the installed package. The files
are ordinary mirstd checkpoints with fp16 tensors (half the size); :func:`load_pretrained` builds the
model and loads them back as float32.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch

from mirstd.models.base import Method
from mirstd.models.checkpoint import load_checkpoint, model_from_checkpoint

WEIGHTS_DIR = Path(__file__).resolve().parents[1] / "weights"


def pretrained_path(name: str) -> Path | None:
    """The shipped checkpoint of model ``name``, or None."""
    p = WEIGHTS_DIR / f"{name}.pt"
    return p if p.is_file() else None


def pretrained_names() -> list[str]:
    return sorted(p.stem for p in WEIGHTS_DIR.glob("*.pt")) if WEIGHTS_DIR.is_dir() else []


def model_card(name: str) -> dict[str, Any]:
    """The model card of shipped weights ``name`` ({} when there is none)."""
    p = WEIGHTS_DIR / f"{name}.json"
    return json.loads(p.read_text()) if p.is_file() else {}


def load_pretrained(name: str, device: str | torch.device = "cpu") -> tuple[Method, dict[str, Any]]:
    """``(model, checkpoint)`` of the shipped weights of ``name``; ValueError listing those there are."""
    path = pretrained_path(name)
    if path is None:
        have = ", ".join(pretrained_names()) or "none"
        raise ValueError(f"model={name!r} has no shipped weights (shipped: {have}); give weights=PATH")
    return model_from_checkpoint(path, device)


def to_shipped(ckpt: dict[str, Any], card: dict[str, Any]) -> dict[str, Any]:
    """A training checkpoint reduced to what inference needs, floating tensors stored as fp16.

    The EMA weights are taken when the run kept them (what ``mirstd val`` scores by default).
    """
    ema = ckpt.get("ema")
    state = ema["model"] if ema else ckpt["model"]
    half = {k: (v.half() if v.is_floating_point() else v) for k, v in state.items()}
    keep = ("model_name", "model_args", "task", "config", "version")
    return {**{k: ckpt[k] for k in keep if k in ckpt}, "model": half, "card": card}


def transfer_weights(model: torch.nn.Module, source: str | Path) -> tuple[int, int]:
    """Copy into ``model`` every tensor of ``source`` whose name and shape match; ``(copied, total)``.

    ``source`` is a mirstd checkpoint path or the name of shipped weights (``mirstd models``). This
    is how one network starts from another's training: PSTFNet holds ResUNet's encoder, decoder and
    input norm under the same names, so ``pretrained=resunet`` starts it from the shipped ResUNet and
    leaves only its temporal and fusion modules at their initialisation. The EMA weights are taken
    when the checkpoint kept them. ValueError when ``source`` is neither, or when nothing matches.
    """
    path = Path(source)
    if not path.is_file():
        shipped = pretrained_path(str(source))
        if shipped is None:
            have = ", ".join(pretrained_names()) or "none"
            raise ValueError(
                f"pretrained={source!r}: no such checkpoint file and no shipped weights of that name "
                f"(shipped: {have})"
            )
        path = shipped
    ckpt = load_checkpoint(path)
    state = (ckpt.get("ema") or {}).get("model") or ckpt["model"]
    own = model.state_dict()
    fits = {k: v for k, v in state.items() if k in own and own[k].shape == v.shape}
    if not fits:
        raise ValueError(
            f"pretrained={source!r}: none of its {len(state)} tensors fits model "
            f"{type(model).__name__} (no name with the same shape)"
        )
    model.load_state_dict(fits, strict=False)  # copy_ casts the shipped fp16 tensors to the model's dtype
    return len(fits), len(own)
