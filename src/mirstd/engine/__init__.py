"""One training loop for every model: ``train(**cfg) -> run_dir``; ``validate`` is ``mirstd val``."""

from mirstd.engine.trainer import train
from mirstd.infer.evaluate import validate

__all__ = ["train", "validate"]
