"""mirstd: multi-frame infrared small target detection toolkit.

``import mirstd`` stays light; the API (``mirstd.Model``, ``mirstd.train/val/predict/evaluate/synth/
demo``, see :mod:`mirstd.api`) is imported on first use.
"""

from typing import Any

from mirstd._version import __version__

__all__ = ["Model", "__version__", "demo", "evaluate", "predict", "synth", "train", "val"]

_API = {"Model", "train", "val", "predict", "evaluate", "demo"}


def __getattr__(name: str) -> Any:
    if name in _API:
        from mirstd import api

        return getattr(api, name)
    if name == "synth":  # the subpackage, callable as the synth task
        import importlib

        return importlib.import_module("mirstd.synth")
    raise AttributeError(f"module 'mirstd' has no attribute {name!r}")
