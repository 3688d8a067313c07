"""``mirstd train key=value ...`` and ``mirstd val weights=... data=... split=...``."""

from __future__ import annotations

import json

from mirstd.utils.config import parse_overrides

TRAIN_HELP = """usage: mirstd train model=NAME data=PATH|synth:PRESET [key=value ...]

Keys (defaults in configs/default.yaml, per family in configs/<family>.yaml):
  model, model_args.*, data, train_split, val_split, frames, pad, imgsz, batch, workers,
  steps | epochs, val_every, save_every, metric, loss, optimizer, lr, weight_decay, scheduler,
  milestones, warmup_steps, warmup_epochs, amp, clip_grad, ema, seed, deterministic, device,
  project, name, exist_ok, resume (true | path to last.pt), cfg (a YAML file of keys)
Multi-GPU / multi-process: torchrun --nproc_per_node=N -m mirstd train ...
Writes <project>/<task>/<name>/: weights/{best,last}.pt, args.yaml, env.yaml, results.csv,
results.png, splits/*.txt."""

VAL_HELP = """usage: mirstd val weights=PATH [data=PATH] [split=val|test|...] [out=DIR] [device=cpu]
       mirstd val model=tophat data=PATH [model_args.size=7] [split=test]   (parameter-free methods)

Scores a checkpoint with mirstd.metrics.Evaluator; writes metrics.json and metrics.md to the run
folder of the checkpoint (or out=) and prints them."""


def train_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(TRAIN_HELP)
        return 0
    from mirstd.engine.trainer import train

    run_dir = train(**parse_overrides(argv))
    print(f"results saved to {run_dir}")
    return 0


def val_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(VAL_HELP)
        return 0
    args = parse_overrides(argv)
    if "weights" not in args and "model" not in args:
        raise ValueError(
            "mirstd val needs weights=PATH (a .pt checkpoint) or model=NAME (a classical method)"
        )
    valid = {"weights", "data", "split", "out", "device", "progress", "model", "model_args"}
    unknown = sorted(set(args) - valid)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown}; valid: {', '.join(sorted(valid))}")
    from mirstd.engine.validation import flat_numbers, validate

    res = validate(
        args.get("weights"),
        data=args.get("data"),
        split=str(args.get("split", "val")),
        out=args.get("out"),
        device=args.get("device"),
        progress=bool(args.get("progress", True)),
        model=args.get("model"),
        model_args=args.get("model_args"),
    )
    print(json.dumps(flat_numbers(res), indent=1))
    return 0
