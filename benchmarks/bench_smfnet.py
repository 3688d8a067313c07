"""CPU latency of SMFNet (faithful vs optimised inference) and SSTNet at 1×3×5×512×512.

Reports the median latency, FlopCounter GFLOPs (2×MAC), achieved FLOP/s and its fraction of the
same run's fp32 GEMM rate (a large ``torch.matmul``), and the max |faithful − optimised| output
difference. Writes ``benchmarks/results/smfnet.json`` atomically.

    python benchmarks/bench_smfnet.py [--threads 2] [--repeats 5] [--size 512] [--no-sstnet]
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch
from torch.utils.flop_counter import FlopCounterMode

from mirstd.models import create
from mirstd.utils.io import atomic_write_text


def gemm_rate(n: int = 2048, repeats: int = 5) -> float:
    """fp32 GEMM FLOP/s (2·n³ per product), best of ``repeats``."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    torch.matmul(a, b)
    best = min(_time(lambda: torch.matmul(a, b)) for _ in range(repeats))
    return 2 * n**3 / best


def _time(fn) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def flops(model: torch.nn.Module, x: torch.Tensor) -> float:
    with torch.inference_mode(), FlopCounterMode(display=False) as fc:
        model(x)
    return float(fc.get_total_flops())


def latency(model: torch.nn.Module, x: torch.Tensor, repeats: int, warmup: int = 1) -> list[float]:
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        return [_time(lambda: model(x)) for _ in range(repeats)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--size", type=int, default=512)
    ap.add_argument("--no-sstnet", action="store_true")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "smfnet.json"))
    args = ap.parse_args()
    torch.manual_seed(0)
    torch.set_num_threads(args.threads)
    x = torch.rand(1, 3, 5, args.size, args.size)

    rate = gemm_rate()
    rows = {}
    faithful = create("smfnet").eval()
    models = {"smfnet_faithful": faithful, "smfnet_optimized": faithful.fuse()}
    if not args.no_sstnet:
        models["sstnet"] = create("sstnet").eval()
        models["sstnet_optimized"] = models["sstnet"].fuse()
    for name, m in models.items():
        f = flops(m, x)
        times = latency(m, x, args.repeats)
        med = statistics.median(times)
        rows[name] = {
            "gflops": round(f / 1e9, 3),
            "latency_median_s": round(med, 4),
            "latency_min_s": round(min(times), 4),
            "achieved_gflops_per_s": round(f / med / 1e9, 2),
            "fraction_of_gemm": round(f / med / rate, 3),
        }
        print(name, rows[name], flush=True)
    with torch.inference_mode():
        diff = (faithful(x) - models["smfnet_optimized"](x)).abs().max().item()
    base = rows["smfnet_faithful"]["gflops"]
    result = {
        "input": [1, 3, 5, args.size, args.size],
        "threads": args.threads,
        "torch": torch.__version__,
        "machine": platform.processor() or platform.machine(),
        "gemm_fp32_gflops_per_s": round(rate / 1e9, 2),
        "models": rows,
        "smfnet_optimized_max_abs_diff": diff,
        "speedup_optimized": round(
            rows["smfnet_faithful"]["latency_median_s"] / rows["smfnet_optimized"]["latency_median_s"], 3
        ),
    }
    if "sstnet" in rows:
        result["flop_reduction_vs_sstnet"] = round(1 - base / rows["sstnet"]["gflops"], 4)
    atomic_write_text(args.out, json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
