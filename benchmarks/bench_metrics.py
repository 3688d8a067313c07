"""Throughput and memory of metric accumulation: ``.venv/bin/python benchmarks/bench_metrics.py [--frames N]``.

Feeds N synthetic 256x256 frames (a pool of 64 pre-rendered probability maps with 1-3 small targets,
background noise and a few false alarms, cycled) through ``mirstd.metrics.Evaluator`` and reports
frames/s and the peak extra resident memory (ru_maxrss growth) of each protocol set. Targets:
>= 500 frames/s for the centroid convention, < 200 MB extra. Writes benchmarks/results/metrics.json.
"""

from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import numpy as np


def make_pool(n: int = 64, size: int = 256, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    pool = []
    for _ in range(n):
        g = np.zeros((size, size), np.uint8)
        p = (rng.random((size, size)) ** 6 * 0.3).astype(np.float32)  # mostly near 0
        for _ in range(int(rng.integers(1, 4))):
            r, c = rng.integers(4, size - 8, size=2)
            h, w = rng.integers(1, 5, size=2)
            g[r : r + h, c : c + w] = 1
            if rng.random() < 0.85:
                p[r : r + h, c : c + w] = rng.uniform(0.55, 0.99)
        for _ in range(int(rng.integers(0, 4))):
            r, c = rng.integers(0, size - 2, size=2)
            p[r : r + 2, c : c + 1] = rng.uniform(0.5, 0.9)
        pool.append((p, g))
    return pool


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def run(protocols: list[str] | None, frames: int, pool: list) -> dict[str, float]:
    from mirstd.metrics import Evaluator

    ev = Evaluator(protocols=protocols)
    base = rss_mb()
    t0 = time.perf_counter()
    for i in range(frames):
        p, g = pool[i % len(pool)]
        ev.update(p, gt_mask=g, sequence=f"seq{i // 1000}", frame=i % 1000, scr=float(i // 1000 % 6))
    t_update = time.perf_counter() - t0
    res = ev.compute()
    t_total = time.perf_counter() - t0
    return {"frames": frames, "fps_update": frames / t_update, "fps_total": frames / t_total,
            "seconds": t_total, "peak_extra_rss_mb": rss_mb() - base,
            "sample": {k: v for k, v in res.items() if isinstance(v, float)}}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=20000)
    ap.add_argument(
        "--full-frames", type=int, default=None, help="frames for the full default suite (default: --frames)"
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "metrics.json"))
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    from mirstd.utils.io import atomic_write_text

    pool = make_pool()
    suites = {
        "centroid": ["pdfa_centroid"],
        "iou+centroid": ["iou", "pdfa_centroid"],
        "default (iou, centroid, shooting 50 thr, roc 200 bins)": None,
    }
    out = {
        "machine": platform.platform(),
        "python": platform.python_version(),
        "frame_size": [256, 256],
        "suites": {},
    }
    for name, protos in suites.items():
        n = args.frames if protos is not None else (args.full_frames or args.frames)
        r = run(protos, n, pool)
        out["suites"][name] = r
        print(
            f"{name:<55} {r['frames']:>6} frames  {r['fps_total']:8.1f} frames/s  peak extra RSS {r['peak_extra_rss_mb']:.1f} MB"
        )
    atomic_write_text(args.out, json.dumps(out, indent=1))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
