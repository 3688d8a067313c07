"""PSTFNet CPU benchmark: fast (Conv2d over batch x time) vs faithful nn.Conv3d PTAM path.

Measures, on this CPU with ``torch.set_num_threads(THREADS)`` (shared machine):
inference latency / clips per second at 1x3x5x256x256, training clips per second (batch 2,
AdamW step, SoftIoU loss) at 256x256, and the 384x384 paper-mode forward latency.
Writes ``benchmarks/results/pstfnet.json``.

Usage: ``python benchmarks/bench_pstfnet.py [--threads 2] [--repeats 3]``
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

import torch

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


def bench_train(model: PSTFNet, size: int, batch: int, repeats: int) -> dict[str, float]:
    model.train()
    x = torch.rand(batch, 3, model.num_frames, size, size)
    y = (torch.rand(batch, 1, size, size) > 0.999).float()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-4)

    def step() -> None:
        p = torch.sigmoid(model(x))
        inter = (p * y).sum((1, 2, 3))
        loss = 1 - ((inter + 1) / (p.sum((1, 2, 3)) + y.sum((1, 2, 3)) - inter + 1)).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()

    sec = _time(step, repeats)
    return {"step_s": round(sec, 4), "clips_per_s": round(batch / sec, 3)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "pstfnet.json"))
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    res: dict = {
        "torch": torch.__version__,
        "cpu": platform.processor() or platform.machine(),
        "threads": args.threads,
        "note": "shared machine: other jobs were running; min over repeats",
    }
    model = PSTFNet()  # default: fixed 24x24 MSFM grid, identical to the lab model at 384
    for fast in (True, False):
        model.fast = fast
        key = "fast" if fast else "conv3d"
        res[f"infer_256_{key}"] = bench_infer(model, 256, args.repeats)
        res[f"train_256_b2_{key}"] = bench_train(model, 256, 2, max(1, args.repeats - 1))
        print(key, res[f"infer_256_{key}"], res[f"train_256_b2_{key}"], flush=True)
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
