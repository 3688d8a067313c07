"""Semi-synthetic multi-frame infrared small-target sequences (SHU-MIRST style; spec ``synth.md``).

>>> from mirstd.synth import render_sequence, load_synth, generate
>>> seq = render_sequence("smoke", seed=0, index=0)       # one sequence, in memory
>>> ds = load_synth("smoke", seed=0)                        # a preset with its splits, in memory
>>> generate("demo", out="data/synth-demo", seed=0)        # written in the native layout
"""

import sys
import types
from pathlib import Path
from typing import Any

from mirstd.data.readers import register_source
from mirstd.synth.engine import generate, load_synth, plan_dataset, render_sequence
from mirstd.synth.presets import DEFAULTS, PRESETS, resolve_config
from mirstd.utils.config import ConfigError, task_config

register_source("synth", load_synth)


def synth(**kw: Any) -> Path:
    """``mirstd synth`` from Python (``mirstd.synth(preset="demo", out="data/demo")``): the ``synth``
    config section plus any key of :data:`DEFAULTS`; returns the dataset root."""
    cfg = task_config("synth", kw, extra=DEFAULTS)
    if not cfg.get("out"):
        raise ConfigError("mirstd.synth needs out=DIR")
    extra = {k: v for k, v in kw.items() if k not in ("preset", "out", "seed", "workers", "exist_ok")}
    return generate(cfg["preset"], cfg["out"], int(cfg["seed"]), workers=int(cfg["workers"]),
                    exist_ok=bool(cfg["exist_ok"]), **extra)  # fmt: skip


class _CallableModule(types.ModuleType):
    """``mirstd.synth`` is both this package and the task function, as ``mirstd.train`` is one."""

    def __call__(self, **kw: Any) -> Path:
        return synth(**kw)


sys.modules[__name__].__class__ = _CallableModule

__all__ = [
    "DEFAULTS",
    "PRESETS",
    "generate",
    "load_synth",
    "plan_dataset",
    "render_sequence",
    "resolve_config",
    "synth",
]
