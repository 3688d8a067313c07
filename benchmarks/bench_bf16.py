"""bf16 inference (``mirstd predict dtype=bfloat16``) against float32 on real drone-ir frames.

    .venv/bin/python benchmarks/bench_bf16.py [--videos 4] [--frames 10] [--size 256] [--threads 1]

For pstfnet, resunet and smfnet (shipped weights) and dtum (random weights, seed 0), at 256x256
(a centre crop of the 320x256 drone-ir frames): the same ``Predictor`` (streamed with cached
features where the model offers it, as ``mirstd predict`` runs) once with ``dtype=float32`` and
once with ``dtype=bfloat16``, frame by frame over the first ``--frames`` frames of ``--videos``
videos. Score maps: max / mean abs difference, pixels whose ``score > 0.5`` decision flips, and
frames whose target count changes. Boxes (smfnet): the per-cell scores and boxes of the raw head
(``export_forward``, before the conf cut and NMS) and the number of final detections. Latency:
median per-frame ``Predictor.step`` and full-clip ``predict``, float32 vs bf16.

On a CPU without native bf16 (no avx512_bf16 / amx_bf16) the Predictor would fall back to float32;
the bench forces bf16 there (emulated: the accuracy comparison holds, the latency is not
representative) and says so in the JSON. Writes benchmarks/results/bf16.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from pathlib import Path

import av
import numpy as np
import torch

import mirstd.infer.predictor as predictor_mod
from mirstd.infer.predictor import Predictor, bf16_forward, bf16_support, cpu_flags
from mirstd.models.checkpoint import model_from_checkpoint
from mirstd.models.pretrained import pretrained_path
from mirstd.models.registry import create

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MIRSTD_DRONE_IR", "/work/shared/data/drone-ir"))
MODELS = {"pstfnet": "shipped", "resunet": "shipped", "dtum": "random", "smfnet": "shipped"}


def load(name: str) -> torch.nn.Module:
    if MODELS[name] == "shipped":
        model, _ = model_from_checkpoint(pretrained_path(name), "cpu")
        return model.eval()
    torch.manual_seed(0)
    return create(name).eval()


def video_frames(path: Path, n: int, size: int) -> list[np.ndarray]:
    out = []
    with av.open(str(path)) as c:
        for fr in c.decode(video=0):
            g = fr.to_ndarray(format="gray").astype(np.float32) / 255.0
            h, w = g.shape
            y0, x0 = max(0, (h - size) // 2), max(0, (w - size) // 2)
            out.append(np.ascontiguousarray(g[y0 : y0 + size, x0 : x0 + size]))
            if len(out) == n:
                break
    return out


def pick_videos(k: int) -> list[Path]:
    """``k`` videos spread over the classes / distance bins of videos.csv (sorted, deterministic)."""
    import csv

    rows = list(csv.DictReader((DATA / "videos.csv").open()))
    by: dict[tuple[str, str], list[str]] = {}
    for r in rows:
        by.setdefault((r["class"], r["distance_bin"]), []).append(r["video"])
    groups = [sorted(v) for _, v in sorted(by.items())]
    names, i = [], 0
    while len(names) < k and any(groups):
        g = groups[i % len(groups)]
        if g:
            names.append(g.pop(0))
        i += 1
    return [DATA / "videos" / f"{n}.mp4" for n in names]


def _med(ts: list[float]) -> float:
    return round(statistics.median(ts), 4)


def compare_predictors(name: str, model: torch.nn.Module, seqs: list[list[np.ndarray]]) -> dict:
    p32 = Predictor(model, device="cpu", dtype="float32")
    p16 = Predictor(model, device="cpu", dtype="bfloat16")
    assert p16.dtype == "bfloat16"
    diffs_max, diffs_mean, flips, above, count_changes, n_frames = [], [], 0, 0, 0, 0
    dets32 = dets16 = 0
    t32, t16 = [], []
    for frames in seqs:
        p32.reset()
        p16.reset()
        for i, f in enumerate(frames):
            a = time.perf_counter()
            r32 = p32.step(f)
            b = time.perf_counter()
            r16 = p16.step(f)
            c = time.perf_counter()
            if i >= 2:  # the first steps fill the caches (and warm up)
                t32.append(b - a)
                t16.append(c - b)
            n_frames += 1
            if r32["scores"] is not None:
                d = np.abs(r16["scores"].astype(np.float64) - r32["scores"])
                diffs_max.append(float(d.max()))
                diffs_mean.append(float(d.mean()))
                flips += int(((r16["scores"] > 0.5) != (r32["scores"] > 0.5)).sum())
                above += int((r32["scores"] > 0.5).sum())
            count_changes += int(len(r16["targets"]) != len(r32["targets"]))
            dets32 += len(r32["targets"])
            dets16 += len(r16["targets"])
    row: dict = {
        "model": name,
        "weights": MODELS[name],
        "cached_stream": p32.cached,
        "frames_compared": n_frames,
        "targets_fp32": dets32,
        "targets_bf16": dets16,
        "frames_with_target_count_change": count_changes,
        "step_latency_s": {
            "fp32": _med(t32),
            "bf16": _med(t16),
            "bf16_over_fp32": round(_med(t16) / _med(t32), 3),
        },
    }
    if diffs_max:
        row["scores"] = {
            "max_abs_diff": round(max(diffs_max), 6),
            "mean_abs_diff": round(float(np.mean(diffs_mean)), 7),
            "pixels_above_0.5_fp32": above,
            "pixels_flipping_at_0.5": flips,
            "pixels_total": n_frames * seqs[0][0].size,
        }
    return row


def compare_clip(model: torch.nn.Module, clips: list[torch.Tensor], iters: int) -> dict:
    """Full-clip ``predict`` latency, and for box models the raw head (before conf cut / NMS)."""
    net = model.fuse().eval()
    out: dict = {}
    if net.task == "detect":
        worst_s = worst_b = 0.0
        mean_s = []
        flips = above = 0
        n32 = n16 = 0
        with torch.no_grad():
            for clip in clips:
                b32, s32, _ = net.export_forward(clip)
                with bf16_forward(net, "cpu"):
                    b16, s16, _ = net.export_forward(clip)
                worst_s = max(worst_s, float((s16 - s32).abs().max()))
                worst_b = max(worst_b, float((b16 - b32).abs().max()))
                mean_s.append(float((s16 - s32).abs().mean()))
                flips += int(((s16 > 0.5) != (s32 > 0.5)).sum())
                above += int((s32 > 0.5).sum())
                n32 += len(net.predict(clip).boxes[0])
                with bf16_forward(net, "cpu"):
                    n16 += len(net.predict(clip).boxes[0])
        out["raw_head"] = {
            "cells": int(s32.numel()) * len(clips),
            "score_max_abs_diff": round(worst_s, 6),
            "score_mean_abs_diff": round(float(np.mean(mean_s)), 7),
            "cells_above_0.5_fp32": above,
            "cells_flipping_at_0.5": flips,
            "box_max_abs_diff_px": round(worst_b, 4),
            "detections_fp32": n32,
            "detections_bf16": n16,
            "note": "detections: after the model's own conf cut (default 0.001) and NMS",
        }
    ts32, ts16 = [], []
    with torch.no_grad():
        net.predict(clips[0])
        with bf16_forward(net, "cpu"):
            net.predict(clips[0])
        for k in range(iters):
            clip = clips[k % len(clips)]
            a = time.perf_counter()
            net.predict(clip)
            b = time.perf_counter()
            with bf16_forward(net, "cpu"):
                net.predict(clip)
            c = time.perf_counter()
            ts32.append(b - a)
            ts16.append(c - b)
    out["clip_latency_s"] = {
        "fp32": _med(ts32),
        "bf16": _med(ts16),
        "bf16_over_fp32": round(_med(ts16) / _med(ts32), 3),
    }
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--videos", type=int, default=4)
    ap.add_argument("--frames", type=int, default=10)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--iters", type=int, default=5)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "bf16.json"))
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    native, why = bf16_support(torch.device("cpu"))
    if not native:  # the accuracy comparison still holds; the Predictor itself would fall back
        predictor_mod.bf16_support = lambda device: (True, f"forced by bench_bf16 ({why})")
    vids = pick_videos(a.videos)
    seqs = [video_frames(v, a.frames, a.size) for v in vids]
    rows = []
    for name in a.models:
        model = load(name)
        row = compare_predictors(name, model, seqs)
        t = int(model.num_frames or 1)
        clips = []
        for frames in seqs:
            frames = [frames[0]] * max(0, t - len(frames)) + list(frames)  # pad=repeat, as predict
            x = torch.from_numpy(np.stack(frames[-t:]))[None, None].expand(1, model.in_channels, -1, -1, -1)
            clips.append(x.contiguous())
        row.update(compare_clip(model, clips, a.iters))
        print(json.dumps(row), flush=True)
        rows.append(row)
    flags = cpu_flags()
    res = {
        "cpu": next(
            (
                ln.split(":", 1)[1].strip()
                for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")
            ),
            "unknown",
        ),  # fmt: skip
        "bf16_isa_flags": sorted(f for f in flags if "bf16" in f or f.startswith("amx")),
        "aten_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "native_bf16": native,
        "native_bf16_reason": why,
        "emulated": not native,
        "threads": a.threads,
        "torch": torch.__version__,
        "size": a.size,
        "videos": [v.stem for v in vids],
        "frames_per_video": a.frames,
        "rows": rows,
        "note": "bf16 = torch.autocast('cpu', torch.bfloat16) around the network (Predictor dtype=bfloat16); "
        "outputs back to float32 before the sigmoid / box decoding / NMS. Latencies: medians, one "
        "thread, on a 2-core CPU shared with other jobs (fp32 and bf16 timed interleaved). "
        + (
            ""
            if native
            else "This CPU has no native bf16: bf16 was emulated, its latency is not representative."
        ),
    }
    out = Path(a.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(res, indent=1) + "\n")
    os.replace(tmp, out)
    print(json.dumps({k: v for k, v in res.items() if k != "rows"}, indent=1))


if __name__ == "__main__":
    main()
