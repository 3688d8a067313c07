"""Train the stand-in model on in-memory samples; run as a script (kill/resume and torchrun tests).

usage: python run_standin.py key=value ...   (engine config keys; plus delay=SECONDS per sample)
"""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))

import standins  # noqa: E402

from mirstd.engine import train  # noqa: E402
from mirstd.utils.config import parse_overrides  # noqa: E402

if __name__ == "__main__":
    torch.set_num_threads(1)
    args = parse_overrides(sys.argv[1:])
    delay = float(args.pop("delay", 0.0))
    n = int(args.pop("samples", 32))
    data = standins.ClipSamples(n, size=24, augment=True, delay=delay)
    base = {
        "model": standins.TINY,
        "model_args": {"num_frames": 3},
        "val_every": 0,
        "progress": False,
        "plots": False,
        "deterministic": True,
        "lr": 5e-3,
        "milestones": [0.5],
        "seed": 3,
    }
    train(train_data=data, **{**base, **args})
