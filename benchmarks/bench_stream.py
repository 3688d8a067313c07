"""Cost of one new frame with cached per-frame features ÷ one full-clip forward.

    .venv/bin/python benchmarks/bench_stream.py [--sizes 256 384] [--iters 5] [--threads 2]

Writes benchmarks/results/stream.json. Full-clip and streamed steps are timed interleaved (median of
``iters``) so load from other processes hits both alike; both paths run the same model in eval mode.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from mirstd.infer.stream import Stream
from mirstd.models.registry import create

MODELS = {"pstfnet": {}, "dtum": {}}


def cpu_info() -> dict[str, str]:
    name, flags = platform.processor(), ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags"):
                flags = line
                break
    except OSError:
        pass
    isa = [f for f in ("avx512f", "avx512_bf16", "amx_tile", "avx2", "fma") if f" {f}" in flags]
    return {
        "cpu": name,
        "isa_flags": " ".join(isa),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
    }


@torch.no_grad()
def bench(name: str, size: int, iters: int) -> dict[str, float]:
    torch.manual_seed(0)
    m = create(name, **MODELS[name]).eval()
    t = m.num_frames
    frames = [torch.rand(1, m.in_channels, size, size) for _ in range(t + iters + 1)]
    s = Stream(m, pad="repeat")
    for f in frames[:t]:  # fill the cache (and warm up)
        s.step(f)
    clip = torch.stack(frames[:t], dim=2)
    m.predict(clip)
    full, step = [], []
    for f in frames[t:]:
        a = time.perf_counter()
        m.predict(clip)
        b = time.perf_counter()
        s.step(f)
        c = time.perf_counter()
        full.append(b - a)
        step.append(c - b)
    fm, sm = statistics.median(full), statistics.median(step)
    return {"model": name, "size": size, "frames": t, "full_clip_s": round(fm, 4),
            "new_frame_s": round(sm, 4), "ratio": round(sm / fm, 3)}  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="+", default=[256, 384])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "stream.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    rows = []
    for name in a.models:
        for size in a.sizes:
            r = bench(name, size, a.iters)
            print(r, flush=True)
            rows.append(r)
    res = {**cpu_info(), "threads": a.threads, "torch": torch.__version__, "dtype": "float32",
           "target_ratio": 0.5, "rows": rows,
           "note": "ratio = median time of Stream.step (encode 1 frame + temporal part from cached "
                   "features) / median time of predict on the full T-frame clip; timed interleaved "
                   "on a CPU shared with other processes"}  # fmt: skip
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=1) + "\n")
    print(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
