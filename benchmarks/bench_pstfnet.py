"""PSTFNet CPU benchmark: fast (Conv2d over batch x time) vs faithful nn.Conv3d PTAM path.

Measures, on this CPU with ``torch.set_num_threads(THREADS)`` (shared machine):

* training steps (forward + SoftIoU backward + AdamW step), fast and Conv3d interleaved step by
  step so both see the same machine load: the ``mirstd demo`` setting
  (``create("pstfnet", grid_size=4)``, batch 4, 5x64x64) and batch 2, 5x256x256 (default 24x24
  grid); min and median over the repeats, and the Conv3d/fast ratio of each;
* inference latency / clips per second at 1x3x5x256x256 and the 384x384 paper-mode forward.

Writes ``benchmarks/results/pstfnet.json``.

Usage: ``python benchmarks/bench_pstfnet.py [--threads 2] [--repeats 5]``
"""

from __future__ import annotations

import argparse
import copy
import json
import platform
import statistics
import time
from collections.abc import Callable
from pathlib import Path

import torch

from mirstd.models import create
from mirstd.models.pstfnet import PSTFNet, pstfnet
from mirstd.utils.io import atomic_write_text


def _time(fn, repeats: int) -> float:  # noqa: ANN001
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench_infer(model: PSTFNet, size: int, repeats: int) -> dict[str, float]:
    model.eval()
    x = torch.rand(1, 3, model.num_frames, size, size)
    with torch.no_grad():
        sec = _time(lambda: model(x), repeats)
    return {"latency_s": round(sec, 4), "clips_per_s": round(1.0 / sec, 3)}


def _train_step(model: PSTFNet, size: int, batch: int) -> Callable[[], None]:
    model.train()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(batch, 3, model.num_frames, size, size, generator=g)
    y = (torch.rand(batch, 1, size, size, generator=g) > 0.999).float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        p = torch.sigmoid(model(x))
        inter = (p * y).sum((1, 2, 3))
        loss = 1 - ((inter + 1) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) - inter + 1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    return step


def bench_train_pair(model: PSTFNet, size: int, batch: int, repeats: int) -> dict[str, dict[str, float]]:
    """Training step of ``model`` with ``fast=True`` and of a copy with ``fast=False`` (same weights),
    alternated ``repeats`` times after one warm-up step each."""
    fast, conv3d = model, copy.deepcopy(model)
    fast.fast, conv3d.fast = True, False
    steps = {"fast": _train_step(fast, size, batch), "conv3d": _train_step(conv3d, size, batch)}
    times: dict[str, list[float]] = {k: [] for k in steps}
    for step in steps.values():
        step()  # warm-up
    for _ in range(repeats):
        for key, step in steps.items():
            t0 = time.perf_counter()
            step()
            times[key].append(time.perf_counter() - t0)
    res: dict[str, dict[str, float]] = {}
    for key, ts in times.items():
        res[key] = {
            "step_s_min": round(min(ts), 4),
            "step_s_median": round(statistics.median(ts), 4),
            "clips_per_s": round(batch / min(ts), 3),
            "repeats": len(ts),
        }
    res["conv3d_over_fast"] = {
        "min": round(res["conv3d"]["step_s_min"] / res["fast"]["step_s_min"], 3),
        "median": round(res["conv3d"]["step_s_median"] / res["fast"]["step_s_median"], 3),
    }
    return res


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pstfnet.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res: dict = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "note": "shared 2-core machine, other jobs running: min (and median) over repeats",
    }
    torch.manual_seed(0)
    demo = create("pstfnet", grid_size=4)  # what `mirstd demo` trains
    res["train_demo_64_b4"] = bench_train_pair(demo, 64, 4, args.repeats)
    print("train demo 64 b4", res["train_demo_64_b4"], flush=True)
    torch.manual_seed(0)
    model = PSTFNet()  # default: fixed 24x24 MSFM grid, identical to the lab model at 384
    res["train_256_b2"] = bench_train_pair(model, 256, 2, max(1, args.repeats - 2))
    print("train 256 b2", res["train_256_b2"], flush=True)
    for fast in (True, False):
        model.fast = fast
        key = "fast" if fast else "conv3d"
        res[f"infer_256_{key}"] = bench_infer(model, 256, args.repeats)
        print(key, res[f"infer_256_{key}"], flush=True)
    paper = pstfnet(paper_mode=True)
    for fast in (True, False):
        paper.fast = fast
        key = "fast" if fast else "conv3d"
        res[f"infer_384_paper_{key}"] = bench_infer(paper, 384, max(1, args.repeats - 1))
        print("paper", key, res[f"infer_384_paper_{key}"], flush=True)
    atomic_write_text(args.out, json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
