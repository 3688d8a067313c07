"""Shared by the baseline tests: 30 engine steps on synth:smoke, mean train/loss of steps 1-10, 11-20, 21-30."""

from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

import torch

import mirstd.engine

# The recipe of every "loss falls" test: the model's configs/<model>.yaml (loss, optimiser), Adam at
# a CPU-test lr, constant schedule, every 32-px crop holding a target (synth:smoke targets are small).
RECIPE = dict(
    data="synth:smoke",
    steps=30,
    batch=2,
    imgsz=32,
    scheduler="constant",
    target_crop_prob=1.0,
    val_every=0,
    save_every=10,
    progress=False,
    plots=False,
)


def smoke_losses(
    model: str, model_args: dict[str, Any], seed: int, tmp_path: Path, **overrides: Any
) -> list[float]:
    torch.set_num_threads(1)
    run = mirstd.engine.train(
        model=model,
        model_args=model_args,
        seed=seed,
        project=str(tmp_path),
        name=f"s{seed}",
        **{**RECIPE, **overrides},
    )
    with open(Path(run) / "results.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [10, 20, 30]
    return [float(r["train/loss"]) for r in rows]
