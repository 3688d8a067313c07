"""Cost and accuracy of the classical baselines:
``.venv/bin/python benchmarks/bench_classical.py [--repeats N] [--score] [--frames-per-seq K]``.

1. Seconds per 256×256 frame of every registered classical method (a constructed scene: smooth
   low-rank background, three point targets, Gaussian noise σ = 2 on the 8-bit scale; multi-frame
   methods get their ``num_frames`` frames), median of ``--repeats`` runs (1 for the slow ones),
   with the ratio to the spec's cost table (``classical.md`` §4) and the issue's targets.
2. ``--score``: IoU / Pd / Fa of every method through the model wrapper (``mean_k_std`` rule, k = 5,
   p > 0.5) on ``synth:smoke`` (test split, mask protocols) and on
   ``../shared/data/airground-real`` (point protocol, ``--frames-per-seq`` frames per sequence,
   evenly spaced, each with its preceding frames), split by mSCR where the data declare it.

Writes ``benchmarks/results/classical.json`` (timing) and ``classical_scores.json`` (``--score``).
The CPU model and its ISA flags are read from ``/proc/cpuinfo``; BLAS runs single-threaded inside
the solvers (``mirstd.classical._common.blas_threads``).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mirstd.classical import MULTI_FRAME, SINGLE_FRAME  # noqa: E402
from mirstd.models.classical import frames_needed  # noqa: E402

#: spec classical.md §4, seconds per 256² frame as (low, high); None where the spec gives no number
SPEC_COST = {
    "tophat": (0.0025, 0.0025),
    "maxmedian": (0.05, 0.05),
    "lcm": (0.001, 0.01),  # "ms"
    "mpcm": (0.005, 0.005),
    "wslcm": (0.01, 0.1),  # "tens of ms"
    "ipi": (10.0, 60.0),
    "pstnn": (0.0, 1.0),  # "< 1 s"
    "ript": None,
    "stlcf": (0.001, 0.01),  # "ms"
    "stt": None,  # "≈ PSTNN × 3"
    "asttv_ntla": (1.0, 10.0),  # "seconds"
    "wsnm_stipt": (1.0, 10.0),  # "seconds"
    "imnn_lwec": None,
}
#: issue 12 targets (seconds per 256² frame on the 2-core CPU)
TARGET = {"ipi": 5.0, "pstnn": 0.5, "stt": 10.0, "asttv_ntla": 10.0, "wsnm_stipt": 10.0}
SLOW = {"ript", "ipi", "stt", "asttv_ntla", "wsnm_stipt", "imnn_lwec"}


def cpu_info() -> dict[str, object]:
    model, flags = platform.processor(), []
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and model in ("", platform.processor()):
                model = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line.split(":", 1)[1].split()
    except OSError:
        pass
    isa = [f for f in flags if f.startswith(("avx", "sse4", "fma", "amx"))]
    return {"model": model, "isa": isa, "cores": os.cpu_count(), "machine": platform.machine()}


def scene(n: int = 256, frames: int = 7, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    y = np.linspace(0, 1, n)[:, None]
    x = np.linspace(0, 1, n)[None, :]
    bg = 80 + 40 * np.cos(2 * np.pi * y) + 30 * np.sin(np.pi * x) + 20 * y * np.cos(np.pi * x)
    out = []
    for t in range(frames):
        f = bg + rng.normal(0, 2, (n, n))
        for r, c in ((70, 80), (180, 140), (120, 200)):
            f[r, c + 2 * t] += 60
            f[r + 1, c + 2 * t] += 48
        out.append(f)
    return np.array(out)


def bench_timing(repeats: int, only: set[str] | None = None, rows: dict | None = None) -> dict[str, object]:
    stack = scene()
    rows = dict(rows or {})
    for name, fn in {**SINGLE_FRAME, **MULTI_FRAME}.items():
        if only and name not in only:
            continue
        multi = name in MULTI_FRAME
        nf = frames_needed(fn, {}) if multi else 1
        arg = stack[-nf:] if multi else stack[-1]
        reps = 1 if name in SLOW else repeats
        times, cpu = [], []
        for _ in range(reps):
            t0, c0 = time.perf_counter(), time.process_time()
            fn(arg)
            times.append(time.perf_counter() - t0)
            cpu.append(time.process_time() - c0)
        # CPU seconds of this process: the cost on an idle machine (the solvers are single-threaded);
        # wall seconds depend on what else runs on the shared CPU (load average recorded below)
        sec = float(np.median(cpu))
        spec = SPEC_COST.get(name)
        if name == "stt" and "pstnn" in rows:
            spec = (3 * rows["pstnn"]["seconds"],) * 2
        row: dict[str, object] = {
            "seconds": round(sec, 4),
            "wall_seconds": round(float(np.median(times)), 4),
            "frames": nf,
            "repeats": reps,
        }
        if spec:
            row["spec_seconds"] = list(spec)
            row["ratio_to_spec_high"] = round(sec / spec[1], 3) if spec[1] else None
            row["ratio_to_spec_low"] = round(sec / spec[0], 3) if spec[0] else None
        if name in TARGET:
            row["target_seconds"] = TARGET[name]
            row["meets_target"] = sec <= TARGET[name]
        rows[name] = row
        print(f"{name:12s} cpu {sec:8.3f} s  wall {np.median(times):8.3f} s  ({nf} frames)", flush=True)
    return rows


# ----------------------------------------------------------------------------- scoring


def _airground(root: Path, per_seq: int):
    import cv2

    for seq_dir in sorted((root / "data").iterdir()):
        frames = sorted(seq_dir.glob("*.png"))
        pts = [
            ln.split() for ln in (root / "anno" / f"{seq_dir.name}.txt").read_text().split("\n") if ln.strip()
        ]
        idx = np.linspace(8, len(frames) - 1, per_seq).astype(int)
        for i in idx:
            stack = np.stack(
                [cv2.imread(str(f), cv2.IMREAD_GRAYSCALE) for f in frames[max(0, i - 7) : i + 1]]
            )
            x, y = float(pts[i][0]) - 1, float(pts[i][1]) - 1
            yield seq_dir.name, i, stack.astype(np.float64) / 255.0, np.array([[x, y]])


def score(per_seq: int, only: set[str] | None = None) -> dict[str, object]:
    import torch

    from mirstd.metrics import Evaluator
    from mirstd.models import create

    out: dict[str, object] = {}
    real = ROOT.parent / "shared" / "data" / "airground-real"
    samples = list(_airground(real, per_seq)) if real.exists() else []
    synth = []
    try:
        from mirstd.data import load_dataset

        ds = load_dataset("synth:smoke")
        for seq in ds.split("test"):
            for i in range(len(seq)):
                lo = max(0, i - 7)
                st = np.stack([seq.load_frame(j) for j in range(lo, i + 1)]).astype(np.float64)
                st = st / float(2 ** getattr(seq, "bit_depth", 8) - 1)  # synth frames are 14-bit
                if st.ndim == 4:
                    st = st.mean(axis=-1)
                synth.append((seq.name, i, st, seq.load_mask(i)))
    except Exception as e:  # noqa: BLE001 - report and continue with the real data
        out["synth_error"] = repr(e)
    for name in {**SINGLE_FRAME, **MULTI_FRAME}:
        if only and name not in only:
            continue
        m = create(name)
        nf = m.num_frames
        res: dict[str, object] = {}
        t0 = time.perf_counter()
        for label, items, protocols in (("synth_smoke", synth, None), ("airground_real", samples, ["point"])):
            ev = Evaluator(protocols=protocols)
            used = 0
            for seq, i, st, gt in items:
                if st.shape[0] < nf:
                    continue
                clip = torch.from_numpy(st[-nf:]).float()[None, None]
                p = m.predict(clip).scores[0, 0].numpy()
                if protocols:
                    ev.update(p, gt_points=gt, sequence=seq, frame=i)
                else:
                    ev.update(p, gt_mask=(np.asarray(gt) > 0).astype(np.uint8), sequence=seq, frame=i)
                used += 1
            if used:
                r = ev.compute()
                res[label] = {k: v for k, v in r.items() if isinstance(v, (int, float, dict))}
                res[label]["frames_scored"] = used
        res["seconds"] = round(time.perf_counter() - t0, 1)
        out[name] = res
        print(name, json.dumps(res)[:300], flush=True)
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--score", action="store_true")
    ap.add_argument("--no-timing", action="store_true")
    ap.add_argument("--frames-per-seq", type=int, default=3)
    ap.add_argument("--only", default="", help="comma list: time only these, merge into classical.json")
    args = ap.parse_args()
    res_dir = ROOT / "benchmarks" / "results"
    res_dir.mkdir(parents=True, exist_ok=True)
    meta = {
        "cpu": cpu_info(),
        "numpy": np.__version__,
        "blas_threads": int(os.environ.get("MIRSTD_BLAS_THREADS", "1")),
        "frame": "256x256, 8-bit scale, constructed scene + N(0, 2) noise",
        "seconds": "CPU seconds of the process (single-threaded solvers); wall_seconds beside",
        "load_average": list(os.getloadavg()),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    if not args.no_timing:
        only = {n for n in args.only.split(",") if n} or None
        old = {}
        if only and (res_dir / "classical.json").exists():
            old = json.loads((res_dir / "classical.json").read_text()).get("methods", {})
        rows = bench_timing(args.repeats, only, old)
        (res_dir / "classical.json").write_text(json.dumps({**meta, "methods": rows}, indent=1) + "\n")
    if args.score:
        only = {n for n in args.only.split(",") if n} or None
        sc = score(args.frames_per_seq, only)
        if only and (res_dir / "classical_scores.json").exists():
            sc = {**json.loads((res_dir / "classical_scores.json").read_text()).get("methods", {}), **sc}
        (res_dir / "classical_scores.json").write_text(
            json.dumps({**meta, "rule": "mean_k_std k=5, p>0.5", "methods": sc}, indent=1, default=str) + "\n"
        )


if __name__ == "__main__":
    main()
