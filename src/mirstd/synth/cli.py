"""``mirstd synth preset=demo out=DIR [seed=0] [preview=true] [key=value ...]``.

Any key of :data:`mirstd.synth.presets.DEFAULTS` can be overridden (``frames=20``,
``sensor.noise_sigma=[1,2]``, ``families={sky: 1}``); unknown presets and keys are rejected with the
list of valid ones.
"""

from __future__ import annotations

import time

from mirstd.synth.engine import generate
from mirstd.synth.presets import DEFAULTS, PRESETS, resolve_config
from mirstd.synth.preview import write_preview
from mirstd.utils.config import parse_overrides, task_config

USAGE = """usage: mirstd synth preset=demo out=DIR [seed=0] [workers=1] [preview=true] [key=value ...]

presets: {presets}
keys:    {keys}"""


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(USAGE.format(presets=", ".join(PRESETS), keys=", ".join(sorted(DEFAULTS))))
        return 0
    args = task_config("synth", parse_overrides(argv), extra=DEFAULTS)
    preset = args.pop("preset")
    out = args.pop("out")
    seed = int(args.pop("seed"))
    workers = int(args.pop("workers"))
    exist_ok = bool(args.pop("exist_ok"))
    args = {k: v for k, v in args.items() if k not in DEFAULTS or v != DEFAULTS[k]}
    if out is None:
        raise ValueError(f"missing out=DIR (e.g. mirstd synth preset={preset} out=data/synth-{preset})")

    cfg = resolve_config(preset, **args)  # validate before any work
    t0 = time.perf_counter()
    root = generate(preset, out, seed, progress=True, workers=workers, exist_ok=exist_ok, **args)
    print(f"mirstd synth: wrote {root} ({preset}, seed {seed}) in {time.perf_counter() - t0:.1f} s")
    if cfg["preview"]:
        paths = write_preview(root)
        print("preview: " + ", ".join(str(p) for p in paths))
    return 0
