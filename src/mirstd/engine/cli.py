"""``mirstd train key=value ...`` (keys: the ``train`` section of configs/default.yaml)."""

from __future__ import annotations

from mirstd.engine.trainer import train
from mirstd.utils.config import parse_overrides

TRAIN_HELP = """usage: mirstd train model=NAME data=PATH|synth:PRESET [key=value ...]

Keys (defaults in the train: section of configs/default.yaml, per family in configs/<family>.yaml):
  model, model_args.*, data, train_split, val_split, frames, pad, imgsz, batch, workers,
  steps | epochs, val_every, save_every, metric, loss, optimizer, lr, weight_decay, scheduler,
  milestones, warmup_steps, warmup_epochs, amp, clip_grad, ema, seed, deterministic, device,
  project, name, exist_ok, resume (true | path to last.pt), cfg (a YAML file of keys)
Multi-GPU / multi-process: torchrun --nproc_per_node=N -m mirstd train ...
Writes <project>/<task>/<name>/: weights/{best,last}.pt, args.yaml, env.yaml, results.csv,
results.png, splits/*.txt."""


def train_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(TRAIN_HELP)
        return 0
    run_dir = train(**parse_overrides(argv))
    print(f"results saved to {run_dir}")
    return 0
