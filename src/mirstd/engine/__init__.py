"""One training loop for every model: ``train(**cfg) -> run_dir``, ``validate(weights, data, split) -> dict``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

__all__ = ["train", "validate"]


def train(**cfg: Any) -> Path:
    """Train a model; see :func:`mirstd.engine.trainer.train`."""
    from mirstd.engine.trainer import train as _train

    return _train(**cfg)


def validate(weights: str | Path, data: Any = None, split: str = "val", **kw: Any) -> dict[str, Any]:
    """Score a checkpoint on a split; see :func:`mirstd.engine.validation.validate`."""
    from mirstd.engine.validation import validate as _validate

    return _validate(weights, data=data, split=split, **kw)
