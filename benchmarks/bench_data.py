"""Data-layer throughput on the shared airground-real sequences: read all frames, sample every clip.

    python benchmarks/bench_data.py [--shared PATH] [--out benchmarks/results/data.json]

Target: under 10 s for 800 frames + 800 five-frame clips (256x256) on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import torch

from mirstd.data import ClipDataset, load_dataset
from mirstd.utils.io import atomic_write_text


def main() -> None:
    ap = argparse.ArgumentParser()
    default = Path(os.environ.get("MIRSTD_SHARED", Path(__file__).resolve().parents[1] / ".." / "shared"))
    ap.add_argument("--shared", type=Path, default=default)
    ap.add_argument("--out", type=Path, default=Path(__file__).resolve().parent / "results" / "data.json")
    args = ap.parse_args()
    torch.set_num_threads(1)
    root = (args.shared / "data" / "airground-real").resolve()
    t0 = time.perf_counter()
    ds = load_dataset(root)
    t_load = time.perf_counter() - t0
    t0 = time.perf_counter()
    n_frames = sum(seq.load_frame(i).size > 0 for seq in ds for i in range(len(seq)))
    t_frames = time.perf_counter() - t0
    res = {}
    for name, kw in (("eval", {}), ("train", {"train": True, "crop": 128, "rotate_deg": 10.0})):
        clips = ClipDataset(ds, num_frames=5, **kw)
        t0 = time.perf_counter()
        n_clips = sum(clips[k]["clip"].shape[1] == 5 for k in range(len(clips)))
        res[name] = {"clips": int(n_clips), "seconds": round(time.perf_counter() - t0, 3)}
    out = {
        "dataset": str(root),
        "sequences": len(ds),
        "frames": int(n_frames),
        "load_index_s": round(t_load, 4),
        "read_all_frames_s": round(t_frames, 3),
        "clips_eval_5x256x256": res["eval"],
        "clips_train_crop128_rot": res["train"],
        "total_s": round(t_load + t_frames + res["eval"]["seconds"] + res["train"]["seconds"], 3),
        "machine": {"python": platform.python_version(), "cpus": os.cpu_count(), "torch_threads": 1},
    }
    atomic_write_text(args.out, json.dumps(out, indent=1) + "\n")
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
