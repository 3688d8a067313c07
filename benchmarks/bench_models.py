"""Cost of every deep model in mirstd:
``.venv/bin/python benchmarks/bench_models.py [--quick] [--models a,b] [--threads 2] [--out PATH]``.

For each registered network (paper configuration, constructor defaults): parameters, FLOPs
(``mirstd.metrics.efficiency.count_flops`` = 2 x MACs of one forward) at ``1 x C x T x 256 x 256``
(T = the model's clip length: 1 for the single-frame baselines, 5 for the temporal ones), CPU
latency of one eval forward at that shape (median of ``--iters`` after 2 warm-up calls,
``--threads`` intra-op threads, inference mode), and the time of one training step (forward,
``model.loss``, backward, Adam step) at batch 2 of the same size in train mode (median of
``--steps`` after one warm-up step). Detectors get one 8x8 box per sample.

Writes ``benchmarks/results/models.json`` (with CPU model, torch version and the load average, as
the 2-core machine is shared) and prints a Markdown table. ``--quick``: 64 x 64 inputs, one
iteration, for a smoke run.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
from pathlib import Path

# The 2 cores are shared with other jobs: OpenMP threads that spin while waiting make 2-thread runs
# 5x slower under load (measured: ResUNet 256 px 1.8 s ACTIVE vs 0.31 s PASSIVE); yield instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mirstd.metrics.efficiency import count_flops  # noqa: E402
from mirstd.models import create  # noqa: E402

#: model -> (paper, frames). Every deep network of mirstd, in the order of the table.
MODELS = {
    "pstfnet": ("PSTFNet (J. Infrared Millim. Waves)", 5),
    "resunet": ("ResUNet (PSTFNet backbone, single frame)", 1),
    "dtum": ("ResUNet-DTUM (TNNLS 2023)", 5),
    "dnanet": ("DNANet (TIP 2023)", 1),
    "dnanet_dtum": ("DNANet-DTUM (TNNLS 2023)", 5),
    "isnet": ("ISNet (CVPR 2022)", 1),
    "uiunet": ("UIU-Net (TIP 2023)", 1),
    "rdian": ("RDIAN (TGRS 2023)", 1),
    "smfnet": ("SMFNet", 5),
    "sstnet": ("SSTNet (TGRS 2024)", 5),
}


LOAD0: list[float] = []


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def _batch(m: torch.nn.Module, clip: torch.Tensor) -> dict:
    b, _, _, h, w = clip.shape
    mask = torch.zeros(b, 1, h, w)
    mask[..., h // 2 - 2 : h // 2 + 2, w // 2 - 2 : w // 2 + 2] = 1
    boxes = [torch.tensor([[w / 2 - 4.0, h / 2 - 4.0, w / 2 + 4.0, h / 2 + 4.0]]) for _ in range(b)]
    return {"clip": clip, "mask": mask, "boxes": boxes, "classes": [torch.zeros(1, dtype=torch.long)] * b}


def bench(name: str, frames: int, size: int, iters: int, steps: int) -> dict:
    torch.manual_seed(0)
    m = create(name)
    shape = (1, m.in_channels, frames, size, size)
    x = torch.rand(*shape)
    params = sum(p.numel() for p in m.parameters())
    m.eval()
    flops, _ = count_flops(m, x)
    with torch.inference_mode():
        for _ in range(2):
            m(x)
        lat = []
        for _ in range(iters):
            t0 = time.perf_counter()
            m(x)
            lat.append(time.perf_counter() - t0)
    m.train()
    opt = torch.optim.Adam([p for p in m.parameters() if p.requires_grad], lr=1e-4)
    batch = _batch(m, torch.rand(2, *shape[1:]))
    step_t = []
    for i in range(steps + 1):
        t0 = time.perf_counter()
        loss = m.loss(m(batch["clip"]), batch)["loss"]
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if i:
            step_t.append(time.perf_counter() - t0)
    return {
        "model": name,
        "input_shape": list(shape),
        "params": int(params),
        "gflops": flops / 1e9,
        "latency_ms_median": 1e3 * statistics.median(lat),
        "train_step_s_median": statistics.median(step_t),
        "train_batch": 2,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--steps", type=int, default=2)
    ap.add_argument("--quick", action="store_true")
    ap.add_argument(
        "--out", "--results", dest="out", default=str(ROOT / "benchmarks" / "results" / "models.json")
    )
    a = ap.parse_args()
    if a.quick:
        a.size, a.iters, a.steps = 64, 1, 1
    torch.set_num_threads(a.threads)
    global LOAD0
    LOAD0 = list(os.getloadavg())
    rows = []
    for name in a.models.split(","):
        paper, frames = MODELS[name]
        t0 = time.time()
        r = {"paper": paper, **bench(name, frames, a.size, a.iters, a.steps)}
        rows.append(r)
        print(f"{name}: {r['params']:,} params, {r['gflops']:.2f} GFLOPs, {r['latency_ms_median']:.0f} ms, "
              f"train step {r['train_step_s_median']:.2f} s ({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
    out = {
        "what": "params, FLOPs (2 x MACs) and CPU cost of one 1 x C x T x S x S forward; train step at batch 2",
        "size": a.size,
        "threads": a.threads,
        "cpu": cpu_model(),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "loadavg_at_start": LOAD0,
        "loadavg_at_end": list(os.getloadavg()),
        "models": rows,
    }
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(out, indent=2) + "\n")
    print("\n| model | paper | params | GFLOPs | CPU latency (ms) | train step (s, batch 2) |")
    print("|---|---|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {r['paper']} | {r['params']:,} | {r['gflops']:.2f} | "
              f"{r['latency_ms_median']:.0f} | {r['train_step_s_median']:.2f} |")  # fmt: skip


if __name__ == "__main__":
    main()
