"""Semi-synthetic multi-frame infrared small-target sequences (SHU-MIRST style; spec ``synth.md``).

>>> from mirstd.synth import render_sequence, load_synth, generate
>>> seq = render_sequence("smoke", seed=0, index=0)       # one sequence, in memory
>>> ds = load_synth("smoke", seed=0)                        # a preset with its splits, in memory
>>> generate("demo", out="data/synth-demo", seed=0)        # written in the native layout
"""

from mirstd.data.readers import register_source
from mirstd.synth.engine import generate, load_synth, plan_dataset, render_sequence
from mirstd.synth.presets import DEFAULTS, PRESETS, resolve_config

register_source("synth", load_synth)

__all__ = [
    "DEFAULTS",
    "PRESETS",
    "generate",
    "load_synth",
    "plan_dataset",
    "render_sequence",
    "resolve_config",
]
