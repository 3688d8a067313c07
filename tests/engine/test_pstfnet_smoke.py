"""PSTFNet through the real engine on the built-in synthetic data (issue: training on preset=smoke
halves the training loss -- for every seed and CPU kernel set, issue 9)."""

import csv

import pytest
import torch

import mirstd.engine


@pytest.mark.slow  # ~50 s per seed on an idle 2-core CPU
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_small_pstfnet_halves_loss_on_smoke(tmp_path, seed):
    """A small PSTFNet (channels 4/8/16/32, 4x4 MSFM grid, default head init), 150 AdamW steps at
    lr 3e-2 on 48 px target crops of synth:smoke: mean SoftIoU of steps 141-150 < half of steps
    1-10. Every seed runs (no pinned lucky seed).

    At 100 steps the end sat on the threshold (seed 0 / 1 / 2: 0.408 / 0.418 / 0.580; on an AMD
    AVX2 CPU seed 0 gave 0.954): smoke has low-SCR targets (S0 down to 0.5) and the curve is
    still falling there. Measured at 150 steps, steps 1-10 -> 141-150, seeds 0 / 1 / 2: AVX512
    0.987 -> 0.392, 0.986 -> 0.352, 0.987 -> 0.363; ATen default 0.986 -> 0.380, 0.986 -> 0.342,
    0.989 -> 0.417; avx2 0.987 -> 0.381, 0.986 -> 0.317, 0.987 -> 0.411.
    Tried without a fix: head prior 0.01 (stalls at the trivial all-background SoftIoU minimum,
    0.93 -> 0.89), prior 0.1, 32 px crops, lr 1e-2, batch 8, 10 warm-up steps.
    """
    torch.set_num_threads(1)
    run = mirstd.engine.train(
        model="pstfnet",
        model_args={"channels": [4, 8, 16, 32], "grid_size": 4},
        data="synth:smoke",
        steps=150,
        batch=4,
        imgsz=48,
        optimizer="adamw",
        lr=3e-2,
        scheduler="constant",
        val_every=0,
        save_every=10,
        target_crop_prob=1.0,
        project=str(tmp_path),
        progress=False,
        plots=False,
        seed=seed,
    )
    with open(run / "results.csv") as f:
        losses = [float(r["train/loss"]) for r in csv.DictReader(f)]
    assert len(losses) == 15
    assert losses[-1] < 0.5 * losses[0], losses
