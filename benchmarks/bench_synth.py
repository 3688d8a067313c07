"""Throughput of the synthetic engine: time ``generate`` for presets and write
``benchmarks/results/synth.json``.

    .venv/bin/python benchmarks/bench_synth.py [smoke demo standard] [--out /tmp/bench_synth]

Targets (spec synth.md §10–11, 2-core CPU): smoke < 10 s, demo < 2 min, standard < 10 min. The
machine may be shared: the 1-minute load average before and after each run is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import time
from pathlib import Path

LIMITS_S = {"smoke": 10.0, "demo": 120.0, "standard": 600.0, "small": None, "large": None}


def bench(preset: str, out: Path, seed: int = 0) -> dict:
    from mirstd.synth import generate, resolve_config

    cfg = resolve_config(preset)
    root = out / preset
    shutil.rmtree(root, ignore_errors=True)
    load0 = os.getloadavg()[0]
    t0, c0 = time.perf_counter(), time.process_time()
    generate(preset, root, seed, progress=False)
    wall, cpu = time.perf_counter() - t0, time.process_time() - c0
    n_seq = sum(cfg["splits"].values()) + int(cfg.get("test_hard", 0))
    frames = n_seq * int(cfg["frames"])
    size_mb = sum(p.stat().st_size for p in root.rglob("*") if p.is_file()) / 2**20
    limit = LIMITS_S.get(preset)
    return {
        "preset": preset,
        "sequences": n_seq,
        "frames": frames,
        "size": cfg["size"],
        "wall_s": round(wall, 2),
        "cpu_s": round(cpu, 2),
        "ms_per_frame_wall": round(1000 * wall / frames, 2),
        "disk_MiB": round(size_mb, 1),
        "limit_s": limit,
        "within_limit": None if limit is None else wall < limit,
        "loadavg_1min_before": round(load0, 2),
        "loadavg_1min_after": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("presets", nargs="*", default=["smoke", "demo"])
    ap.add_argument("--out", default="/tmp/bench_synth")
    ap.add_argument("--results", default=str(Path(__file__).parent / "results" / "synth.json"))
    args = ap.parse_args()
    res_path = Path(args.results)
    doc = json.loads(res_path.read_text()) if res_path.is_file() else {}
    doc.setdefault("runs", {})
    doc["machine"] = {
        "cpus": os.cpu_count(),
        "platform": platform.platform(),
        "python": platform.python_version(),
    }
    for p in args.presets:
        r = bench(p, Path(args.out))
        print(json.dumps(r))
        doc["runs"][p] = r
        res_path.parent.mkdir(parents=True, exist_ok=True)
        from mirstd.utils.io import atomic_write_text

        atomic_write_text(res_path, json.dumps(doc, indent=1) + "\n")


if __name__ == "__main__":
    main()
