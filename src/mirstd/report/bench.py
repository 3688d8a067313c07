"""``mirstd bench``: the papers' comparison — every method, one protocol, one report (docs/bench.md).

Protocols:

- ``table1`` (the PSTFNet paper's Table 1 shape): a synthetic bench (``synth:<preset>``, rendered
  once into ``<out>/table1/data``); every deep method trained with the budget's one recipe, model
  chosen on the validation split; every classical method run as is; all scored on the *test* split
  by the one evaluation runner, split by sequence mSCR (< 3 / >= 3).
- ``ablation`` (Tables 3-6): PSTFNet's switches (``ptam_levels``, ``p2d``, ``m3d``, ``msfm``, ``mc``,
  ``sa``) as the paper's variant rows, each variant trained on the table1 data with the budget's
  recipe (shorter: ``ablation_steps``) and scored like table1; one table per paper table, rows in
  the paper's order, the paper's own IoU / Pd / Fa beside ours.
- ``smfnet``: the SMFNet README's comparison on the box protocol — SMFNet against SSTNet trained
  on the table1 data with one box recipe, scored with COCO AP50 / AP, the lab's P / R / F1 and
  point-in-box Pd; PR curves; FLOPs and latency at the paper's 1x3x5x512x512 input (paper
  configurations) beside the trained (CPU-sized) networks' own.
- ``real``: the real test splits (``real:airground`` ``test``, every frame or every k-th at small
  budgets; ``real:drone-ir`` ``test_distant``, every k-th key frame); trainable methods use the
  package's shipped weights and are skipped (with the reason recorded) when there are none.

Each finished method writes ``<out>/<protocol>/methods/<method>.json`` atomically; ``resume=true``
keeps those whose protocol, budget, seed and recipe match, so a killed bench picks up where it
stopped; a method killed during training resumes from its run's ``last.pt`` (exact resume, the
trainer's) when its recipe is unchanged. At the end: ``results.csv`` (one row per method x group), ``env.json`` and ``report.html``.
"""

from __future__ import annotations

import csv
import io
import os
import platform
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mirstd._version import __version__
from mirstd.utils.config import ConfigError, closest, merge, parse_overrides, task_config
from mirstd.utils.io import atomic_write_text, write_json

BENCH_VERSION = 1
PROTOCOLS = ("table1", "ablation", "real", "smfnet")
BUDGETS = ("smoke", "cpu-quick", "cpu", "gpu")

# Default methods. Classical ones are those fast enough for every budget on a 2-core CPU (per 128 px
# frame, one thread: tophat 2 ms, mpcm 15, lcm 21, maxmedian 32, stlcf 8 (5-frame); ipi and pstnn
# take ~0.9 s, so they join only at budget=cpu/gpu).
DEEP = ["pstfnet", "dnanet_dtum", "resunet", "dnanet"]
BOX = ["smfnet", "sstnet"]
CLASSICAL_FAST = ["tophat", "maxmedian", "mpcm", "stlcf"]
CLASSICAL_SLOW = ["ipi", "pstnn"]

LABELS = {
    "pstfnet": "PSTFNet",
    "dnanet_dtum": "DNANet-DTUM",
    "dtum": "ResUNet-DTUM",
    "resunet": "ResUNet (single frame)",
    "dnanet": "DNANet",
    "smfnet": "SMFNet (boxes)",
    "sstnet": "SSTNet (boxes)",
    "tophat": "Top-Hat",
    "maxmedian": "Max-Median",
    "mpcm": "MPCM",
    "lcm": "LCM",
    "wslcm": "WSLCM",
    "stlcf": "STLCF",
    "ipi": "IPI",
    "pstnn": "PSTNN",
}

# ------------------------------------------------------------------------------------ budgets
# Data of the table1 protocol (synth preset + overrides), training length and sizes, real-data key
# frame strides, latency repeats. CPU budgets share one short recipe (the demo's, see
# mirstd.report.demo.TRAIN_COMMON: AdamW, cosine, flips, intensity jitter, mostly random crops) and
# the CPU-sized DNANet widths; ``gpu`` keeps each family's own optimiser and schedule
# (configs/<family>.yaml) and the papers' model sizes.
BUDGET_SPECS: dict[str, dict[str, Any]] = {
    "smoke": {
        "synth": {"preset": "smoke", "frames": 8, "size": 64, "splits": {"train": 2, "val": 1, "test": 2}},
        "train": {"steps": 3, "val_every": 3, "imgsz": 32, "batch": 2, "warmup_steps": 1, "val_stride": 4},
        "common": "cpu",
        "small_models": True,
        "real_stride": {"airground_test": 50, "drone_test_distant": 1000},
        "real_max_sequences": 1,
        "latency_iters": 2,
        "ablation": {"steps": 3, "val_every": 3},
        "box": {"steps": 3, "val_every": 3, "batch": 2, "imgsz": 32, "precise_bn": 2},
    },
    "cpu-quick": {
        "synth": {"preset": "demo"},
        "train": {"steps": 300, "val_every": 150, "imgsz": 64, "batch": 4, "warmup_steps": 20, "val_stride": 4},
        "common": "cpu",
        "small_models": True,
        "real_stride": {"airground_test": 5, "drone_test_distant": 25},
        "latency_iters": 5,
        "ablation": {"steps": 100, "val_every": 50},
        "box": {"steps": 150, "val_every": 75},
    },
    "cpu": {
        "synth": {"preset": "demo", "splits": {"train": 48, "val": 8, "test": 12}},
        "train": {"steps": 2000, "val_every": 500, "imgsz": 64, "batch": 4, "warmup_steps": 50, "val_stride": 2},
        "common": "cpu",
        "small_models": True,
        "slow_classical": True,
        "real_stride": {"airground_test": 1, "drone_test_distant": 10},
        "latency_iters": 10,
        "ablation": {"steps": 500, "val_every": 250},
        "box": {"steps": 1000, "val_every": 250},
    },
    "gpu": {
        "synth": {"preset": "large"},
        "train": {"steps": 20000, "val_every": 2000, "imgsz": 256, "batch": 16, "val_stride": 2},
        "common": "family",
        "small_models": False,
        "slow_classical": True,
        "real_stride": {"airground_test": 1, "drone_test_distant": 10},
        "latency_iters": 20,
        "ablation": {"steps": 10000, "val_every": 2000},
        "box": {"steps": 20000, "val_every": 2000},
    },
}  # fmt: skip

# Per-method training settings on top of the budget's recipe. ``small`` applies at CPU budgets.
METHOD_TRAIN: dict[str, dict[str, Any]] = {
    "pstfnet": {"grid_from_imgsz": True},
    "dnanet": {"small": {"channels": [4, 8, 16, 32, 64], "blocks": [1, 1, 1, 1]}},
    "dnanet_dtum": {"small": {"channels": [4, 8, 16, 32, 64], "blocks": [1, 1, 1, 1], "feat_channels": 8}},
}

# ------------------------------------------------------------------------------------ ablation
# PSTFNet's switches as the rows of the paper's Tables 3-6 (spec pstfnet.md §A12.3, SHU-MIRST "all":
# IoU %, Pd %, Fa x1e-6). One trained variant can be a row of several tables ("w/o PTAM" of Tables
# 4 and 5 is "Backbone + MSFM" of Table 3; "w/o MSFM" of Table 6 is "Backbone + PTAM").
ABLATION_VARIANTS: dict[str, dict[str, Any]] = {
    "backbone": {"label": "Backbone (ResUNet)", "args": {"ptam_levels": [], "msfm": False}},
    "ptam": {"label": "Backbone + PTAM (w/o MSFM)", "args": {"msfm": False}},
    "msfm": {"label": "Backbone + MSFM (w/o PTAM)", "args": {"ptam_levels": []}},
    "no_ptam_l123": {"label": "w/o PTAM L1-L3", "args": {"ptam_levels": [3]}},
    "no_ptam_l12": {"label": "w/o PTAM L1-L2", "args": {"ptam_levels": [2, 3]}},
    "no_ptam_l1": {"label": "w/o PTAM L1", "args": {"ptam_levels": [1, 2, 3]}},
    "no_m3d": {"label": "w/o M3DConv", "args": {"m3d": False}},
    "no_p2d": {"label": "w/o P2DConv", "args": {"p2d": False}},
    "no_mc": {"label": "w/o MC", "args": {"mc": False}},
    "no_sa": {"label": "w/o SA", "args": {"sa": False}},
    "pstfnet": {"label": "PSTFNet", "args": {}},
}
# table id -> (title, [(variant, row label as printed, (IoU, Pd, Fa x1e-6) of the paper)])
ABLATION_TABLES: dict[str, tuple[str, list[tuple[str, str, tuple[float, float, float]]]]] = {
    "table3": ("Table 3 — components", [
        ("backbone", "Backbone (ResUNet)", (37.17, 50.41, 24.89)),
        ("ptam", "Backbone + PTAM", (58.10, 76.23, 12.13)),
        ("msfm", "Backbone + MSFM", (40.58, 56.78, 11.08)),
        ("pstfnet", "PSTFNet", (64.19, 82.55, 7.97))]),
    "table4": ("Table 4 — PTAM at which levels", [
        ("msfm", "w/o PTAM", (40.58, 56.78, 11.08)),
        ("no_ptam_l123", "w/o PTAM L1-L3", (43.26, 58.95, 13.14)),
        ("no_ptam_l12", "w/o PTAM L1-L2", (49.04, 64.02, 9.95)),
        ("no_ptam_l1", "w/o PTAM L1", (55.33, 72.60, 10.29)),
        ("pstfnet", "PSTFNet", (64.19, 82.55, 7.97))]),
    "table5": ("Table 5 — PTAM composition", [
        ("msfm", "w/o PTAM", (40.58, 56.78, 11.08)),
        ("no_m3d", "w/o M3DConv", (58.74, 74.99, 7.17)),
        ("no_p2d", "w/o P2DConv", (53.83, 66.51, 13.23)),
        ("pstfnet", "PSTFNet", (64.19, 82.55, 7.97))]),
    "table6": ("Table 6 — MSFM composition", [
        ("ptam", "w/o MSFM", (58.10, 76.23, 12.13)),
        ("no_mc", "w/o MC", (60.52, 79.16, 9.25)),
        ("no_sa", "w/o SA", (62.47, 81.38, 17.18)),
        ("pstfnet", "PSTFNet", (64.19, 82.55, 7.97))]),
}  # fmt: skip
ABLATION_PAPER_COLUMNS = [("paper_iou", "paper IoU %", "num2"), ("paper_pd", "paper Pd %", "num2"),
                          ("paper_fa", "paper Fa ×1e-6", "num2")]  # fmt: skip

# Box protocol (protocol=smfnet): the paper-configuration input of the cost columns.
BOX_PAPER_INPUT = (512, 512)

REAL_TESTS: dict[str, dict[str, Any]] = {
    "airground_test": {"data": "real:airground", "split": "test", "label": "airground-real test (points)"},
    "drone_test_distant": {
        "data": "real:drone-ir",
        "split": "test_distant",
        "label": "drone-ir test_distant (boxes)",
    },
}
GROUPS_TABLE1 = {"low": "mSCR < 3", "high": "mSCR ≥ 3", "all": "all test sequences"}
PD_AT_FA = 1e-5  # the matched false-alarm rate of the Pd@Fa column (fraction of pixels)

# Table columns per protocol: (key in a group's row, header, kind). kinds: pct (x100), fa (x1e6),
# num (3 decimals), int, flops (G), ms.
COLUMNS: dict[str, list[tuple[str, str, str]]] = {
    "table1": [
        ("iou", "IoU %", "pct"),
        ("niou", "nIoU %", "pct"),
        ("pd", "Pd %", "pct"),
        ("fa", "Fa ×1e-6", "fa"),
        ("pd_at_fa", "Pd@Fa=1e-5 %", "pct"),
        ("auc", "AUC (pixel ROC)", "num"),
        ("ap50", "AP50 %", "pct"),
        ("params", "params", "int"),
        ("gflops", "GFLOPs/frame", "flops"),
        ("latency_ms", "latency ms", "ms"),
    ],
    "smfnet": [
        ("ap50", "AP50 %", "pct"),
        ("ap", "AP 50:95 %", "pct"),
        ("p_lab", "P (lab) %", "pct"),
        ("r_lab", "R (lab) %", "pct"),
        ("f1_lab", "F1 (lab) %", "pct"),
        ("pd_point", "Pd (box centre) %", "pct"),
        ("fa_per_frame", "FA / frame", "num"),
        ("params", "params (trained)", "int"),
        ("gflops", "GFLOPs/clip (trained)", "flops"),
        ("latency_ms", "latency ms (trained)", "ms"),
        ("paper_params", "params (paper)", "int"),
        ("paper_gflops", "GFLOPs 512² (paper)", "flops"),
        ("paper_latency_ms", "latency ms 512² (paper)", "ms"),
    ],
    "real": [
        ("pd_point", "Pd % (own thr)", "pct"),
        ("fa_per_frame", "FA / frame", "num"),
        ("pd_fapf0.1", "Pd@0.1 FA/frame %", "pct"),
        ("pd_fapf1", "Pd@1 FA/frame %", "pct"),
        ("ap50", "AP50 %", "pct"),
        ("frames", "frames", "int"),
        ("params", "params", "int"),
        ("gflops", "GFLOPs/frame", "flops"),
        ("latency_ms", "latency ms", "ms"),
    ],
}


COLUMNS["ablation"] = COLUMNS["table1"]
ABLATION_TABLE_COLUMNS = [c for c in COLUMNS["table1"] if c[0] in ("iou", "pd", "fa", "pd_at_fa", "params")]
ABLATION_TABLE_COLUMNS += ABLATION_PAPER_COLUMNS


def _log(msg: str) -> None:
    print(f"[bench] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------ methods
def default_methods(protocol: str, budget: str) -> list[str]:
    """table1 / real: every deep method and the classical ones fast enough for ``budget``; ablation:
    every variant of Tables 3-6; smfnet: the two box networks."""
    if protocol == "ablation":
        return list(ABLATION_VARIANTS)
    if protocol == "smfnet":
        return list(BOX)
    slow = CLASSICAL_SLOW if BUDGET_SPECS[budget].get("slow_classical") else []
    return DEEP + CLASSICAL_FAST + slow


def label(name: str) -> str:
    return LABELS.get(name, name)


def _listify(v: Any) -> list[str] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return [str(s) for s in v]


def check_choice(key: str, value: Any, valid: tuple[str, ...] | list[str]) -> str:
    if value in valid:
        return str(value)
    near = closest(str(value), list(valid))
    hint = f"did you mean {near}?" if near else f"valid: {', '.join(valid)}"
    raise ConfigError(f"{key}={value!r} is not known for mirstd bench; {hint}")


def resolve_methods(methods: Any, protocol: str, budget: str) -> list[str]:
    from mirstd.models.registry import list_models

    names = _listify(methods) or default_methods(protocol, budget)
    known = list(ABLATION_VARIANTS) if protocol == "ablation" else list(list_models())
    for n in names:
        check_choice("methods", n, known)
    return list(dict.fromkeys(names))


def is_trainable(name: str, protocol: str = "table1") -> bool:
    from mirstd.models.registry import create

    return protocol == "ablation" or bool(create(name).trainable)


def train_recipe(name: str, budget: str, data: str, seed: int, device: str | None) -> dict[str, Any]:
    """The ``train(...)`` keywords of method ``name`` at ``budget`` (paths filled in by the caller)."""
    from mirstd.report.demo import TRAIN_COMMON

    spec = BUDGET_SPECS[budget]
    base: dict[str, Any] = {}
    if spec["common"] == "cpu":
        base = dict(TRAIN_COMMON)
    else:  # the family's own optimiser / schedule / loss (configs/<family>.yaml) at paper scale
        base = {"flip": True, "target_crop_prob": TRAIN_COMMON["target_crop_prob"], "progress": True}
    cfg = merge(base, spec["train"])
    cfg.update(model=name, data=data, seed=int(seed), frames=None, plots=budget != "smoke")
    mt = METHOD_TRAIN.get(name, {})
    args: dict[str, Any] = {}
    if spec.get("small_models") and mt.get("small"):
        args.update(mt["small"])
    if mt.get("grid_from_imgsz"):
        args["grid_size"] = max(1, int(cfg["imgsz"]) // 16)
    if args:
        cfg["model_args"] = args
    if device:
        cfg["device"] = device
    return cfg


def ablation_recipe(variant: str, budget: str, data: str, seed: int, device: str | None) -> dict[str, Any]:
    """PSTFNet's table1 recipe with the variant's switches and the budget's ablation length."""
    cfg = merge(train_recipe("pstfnet", budget, data, seed, device), BUDGET_SPECS[budget]["ablation"])
    cfg["model_args"] = {**cfg.get("model_args", {}), **ABLATION_VARIANTS[variant]["args"]}
    return cfg


# One box recipe (protocol=smfnet) on top of the budget's: the demo's SMFNet settings — target-rich
# crops, no intensity jitter, precise BN, model chosen on val AP50 (see mirstd.report.demo.METHODS).
BOX_TRAIN: dict[str, Any] = {
    "target_crop_prob": 0.8,
    "intensity_jitter": 0.0,
    "batch": 8,
    "lr": 2.0e-3,
    "weight_decay": 5.0e-4,
    "warmup_steps": 10,
    "precise_bn": 20,
    "metric": "ap50",
}
# CPU-sized box networks: a quarter of the paper widths; both get the lab's 2x input enlargement
# (its letterbox to 512 px enlarges small frames) so their 8x8 boxes are seen on the stride-8 grid.
BOX_SMALL: dict[str, dict[str, Any]] = {
    "smfnet": {"width": 0.25, "input_scale": 2.0, "prior_prob": 0.01},
    "sstnet": {"width": 0.25, "input_scale": 2.0},
}


def box_recipe(name: str, budget: str, data: str, seed: int, device: str | None) -> dict[str, Any]:
    spec = BUDGET_SPECS[budget]
    cfg = train_recipe(name, budget, data, seed, device)
    if spec["common"] == "cpu":  # gpu: the family's own recipe (configs/<family>.yaml)
        cfg = merge(cfg, BOX_TRAIN)
    cfg = merge(cfg, spec["box"])
    if spec.get("small_models") and name in BOX_SMALL:
        cfg["model_args"] = {**cfg.get("model_args", {}), **BOX_SMALL[name]}
    return cfg


# ------------------------------------------------------------------------------------ scoring
def _curves_jsonable(curves: dict[str, dict[str, Any]]) -> dict[str, dict[str, list[float]]]:
    out: dict[str, dict[str, list[float]]] = {}
    for name, c in curves.items():
        out[name] = {k: np.asarray(v, dtype=float).round(8).tolist() for k, v in c.items()}
    return out


def _num(res: dict[str, Any] | None, *keys: str) -> float | None:
    """First finite number among ``keys`` (then their ``box_as_mask`` variants) of a results dict."""
    if not res:
        return None
    for k in keys:
        alts = [k, k.replace("]", ":box_as_mask]") if "[" in k else f"{k}[box_as_mask]"]
        for a in alts:
            v = res.get(a)
            if isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v):
                return float(v)
    return None


def table1_row(res: dict[str, Any], curves: dict[str, Any]) -> dict[str, Any]:
    from mirstd.metrics.report import pdfa_curve
    from mirstd.report.demo import pd_at_fa

    ap = _num(res, "ap50")
    paf = pd_at_fa(pdfa_curve(curves), PD_AT_FA) if curves else float("nan")
    return {
        "iou": _num(res, "iou"),
        "niou": _num(res, "niou"),
        "pd": _num(res, "pd[centroid]"),
        "fa": _num(res, "fa[centroid]"),
        "pd_at_fa": float(paf) if np.isfinite(paf) else None,
        "auc": _num(res, "auc[roc]"),
        "ap50": ap if ap is not None and ap >= 0 else None,
        "frames": res.get("frames"),
        "sequences": res.get("sequences"),
    }


def box_row(res: dict[str, Any], curves: dict[str, Any]) -> dict[str, Any]:
    """Box protocol: COCO AP50 / AP, the lab's P / R / F1 (mean interpolated precision up to the
    reached recall), point-in-box Pd at the model's threshold."""
    ap = _num(res, "ap50")
    return {
        "ap50": ap if ap is not None and ap >= 0 else None,
        "ap": _num(res, "ap"),
        "p_lab": _num(res, "p[lab]"),
        "r_lab": _num(res, "r[lab]"),
        "f1_lab": _num(res, "f1[lab]"),
        "pd_point": _num(res, "pd[point]"),
        "fa_per_frame": _num(res, "fa_per_frame[point]"),
        "frames": res.get("frames"),
        "sequences": res.get("sequences"),
    }


def real_row(res: dict[str, Any]) -> dict[str, Any]:
    ap = next((v for k, v in res.items() if k.startswith("ap50") and isinstance(v, float)), None)
    return {
        "pd_point": _num(res, "pd[point]"),
        "fa_per_frame": _num(res, "fa_per_frame[point]"),
        "pd_fapf0.1": _num(res, "pd@fapf0.1[point_curve]"),
        "pd_fapf1": _num(res, "pd@fapf1[point_curve]"),
        "ap50": ap if ap is not None and np.isfinite(ap) and ap >= 0 else None,
        "frames": res.get("frames"),
        "sequences": res.get("sequences"),
    }


def efficiency(model: torch.nn.Module, shape: tuple[int, int], device: str, iters: int) -> dict[str, Any]:
    """Params, FLOPs (networks only: classical filters run in NumPy, which FlopCounterMode cannot see)
    and median latency of one clip at the test frame size."""
    from mirstd.metrics.efficiency import count_flops, time_forward

    t = model.num_frames or 1
    h, w = shape
    div = int(model.size_divisor)
    h, w = h + (-h) % div, w + (-w) % div
    x = torch.rand(1, model.in_channels, t, h, w, generator=torch.Generator().manual_seed(0)).to(device)
    params = int(sum(p.numel() for p in model.parameters()))
    flops = None
    if params:
        try:
            flops = int(count_flops(model, x)[0])
        except Exception as e:  # noqa: BLE001 - a model FlopCounterMode cannot trace still gets a row
            _log(f"FLOPs not counted for {type(model).__name__}: {e}")
    lat = time_forward(model, x, torch.device(device), warmup=1, iters=max(1, iters))
    return {
        "params": params,
        "gflops": None if flops is None else flops / 1e9,
        "latency_ms": float(np.median(lat) * 1e3),
        "latency_input": [1, model.in_channels, t, h, w],
        "latency_device": str(device),
        "threads": torch.get_num_threads(),
    }


def thumbnails(
    model: torch.nn.Module,
    ds: Any,
    picks: list[tuple[str, int, str]],
    out_dir: Path,
    stem: str,
    device: str,
) -> list[dict[str, Any]]:
    """Detections of ``model`` on the picked ``(sequence, frame, caption)`` key frames of eval dataset
    ``ds``, drawn with hits / misses / false alarms (see :func:`mirstd.report.html.detection_image`)."""
    from mirstd.infer.predictor import infer_clip
    from mirstd.report.html import detection_image

    where = {(ds.sequences[si].name, i): k for k, (si, i) in enumerate(ds.index)}
    out = []
    with torch.no_grad():
        for n, (seq, frame, caption) in enumerate(picks):
            k = where.get((seq, frame))
            if k is None:
                continue
            sample = ds[k]
            pred = infer_clip(model, sample["clip"][None].to(device))[0]
            meta = sample.get("meta") or {}
            oh, ow = (int(v) for v in (meta.get("orig_size") or sample["mask"].shape[-2:]))
            img = sample["clip"][0, -1, :oh, :ow].cpu().numpy()
            scores = None if pred["scores"] is None else pred["scores"][:oh, :ow]
            gt = sample["points"].cpu().numpy().reshape(-1, 2)
            path = out_dir / f"{stem}_{n}.png"
            counts = detection_image(img, scores, pred.get("boxes"), gt, path)
            out.append({"sequence": seq, "frame": frame, "caption": caption, "file": path.name, **counts})
    return out


def pick_frames(sequences: list[Any], groups: dict[str, str], per_group: int) -> list[tuple[str, int, str]]:
    """The same test frames for every method: the middle frame of the first ``per_group`` sequences
    of each mSCR group (or of the split when there are no groups)."""
    from mirstd.infer.evaluate import sequence_mscr
    from mirstd.metrics.evaluator import scr_group

    picks: list[tuple[str, int, str]] = []
    used: dict[str, int] = {}
    for s in sequences:
        m = sequence_mscr(s)
        g = scr_group(m, (3.0,)) if m is not None else "all"
        if g is None or used.get(g, 0) >= per_group:
            continue
        used[g] = used.get(g, 0) + 1
        mid = len(s) // 2
        cap = f"{s.name} frame {mid}" + (f" (mSCR {m:.2f}, {groups.get(g, g)})" if m is not None else "")
        picks.append((s.name, mid, cap))
    return picks


# ------------------------------------------------------------------------------------ env
def cpu_info() -> dict[str, Any]:
    name, flags = platform.processor(), ""
    try:
        for ln in Path("/proc/cpuinfo").read_text().splitlines():
            if ln.startswith("model name") and name in ("", platform.processor()):
                name = ln.split(":", 1)[1].strip()
            if ln.startswith("flags") and not flags:
                flags = ln
    except OSError:
        pass
    isa = "avx512" if "avx512f" in flags else "avx2" if "avx2" in flags else "other"
    return {"cpu": name, "isa": isa, "cores": os.cpu_count(), "torch_threads": torch.get_num_threads()}


def git_commit() -> dict[str, Any]:
    """``git rev-parse HEAD`` of the source checkout (None outside one) and whether it has local changes."""
    root = Path(__file__).resolve().parents[3]
    if not (root / "src" / "mirstd").is_dir():  # an installed package, not a source checkout
        return {"commit": None, "dirty": None}
    try:
        head = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
        if head.returncode != 0:
            return {"commit": None, "dirty": None}
        st = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True,
            text=True,
            timeout=10,
        )
        return {"commit": head.stdout.strip(), "dirty": bool(st.stdout.strip())}
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None}


def environment(device: str) -> dict[str, Any]:
    import matplotlib
    import scipy

    env = {
        "mirstd": __version__,
        "torch": torch.__version__,
        "numpy": np.__version__,
        "scipy": scipy.__version__,
        "matplotlib": matplotlib.__version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "device": device,
        "cuda": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "time": time.strftime("%Y-%m-%d %H:%M:%S %z"),
        **cpu_info(),
        **git_commit(),
    }
    return env


# ------------------------------------------------------------------------------------ one method
def _fingerprint(protocol: str, budget: str, seed: int, spec: dict[str, Any], data: Any) -> dict[str, Any]:
    """What a kept result must match: protocol, budget, seed, the method's recipe and the data spec
    (not its path, so a moved bench folder still resumes; device and progress bars do not count)."""
    import json

    from mirstd.utils.io import to_jsonable

    drop = ("project", "name", "exist_ok", "progress", "device", "data")
    clean = {k: v for k, v in spec.items() if k not in drop}
    doc = {"bench": BENCH_VERSION, "protocol": protocol, "budget": budget, "seed": int(seed), "spec": clean,
           "data": data}  # fmt: skip
    return json.loads(json.dumps(to_jsonable(doc), sort_keys=True))


def load_result(path: Path, fingerprint: dict[str, Any]) -> dict[str, Any] | None:
    """A finished method's JSON when it matches ``fingerprint`` (else None: recompute)."""
    import json

    try:
        doc = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return doc if doc.get("fingerprint") == fingerprint else None


def _train(name: str, recipe: dict[str, Any], root: Path) -> Path:
    from mirstd.engine.trainer import train

    cfg = dict(recipe, project=str(root / "runs"), name=name, exist_ok=True)
    for old in (root / "runs").glob(f"*/{name}"):
        last = old / "weights" / "last.pt"
        if last.is_file():  # a killed bench: continue its run exactly (the trainer refuses a changed recipe)
            try:  # None = "the trainer's default", which the saved config holds resolved
                run = Path(train(**{k: v for k, v in cfg.items() if v is not None}, resume=str(last)))
                _log(f"train {name}: resumed {last}")
                return run
            except ConfigError as e:
                _log(f"train {name}: not resuming {last} ({e}); starting afresh")
        if old.is_dir():  # a run of an earlier (other-recipe) bench, or one killed before any checkpoint
            shutil.rmtree(old)
    _log(f"train {name}: {cfg['steps']} steps, batch {cfg['batch']}, crops {cfg['imgsz']} px")
    return Path(train(**cfg))


def _table1_method(
    name: str,
    ctx: dict[str, Any],
) -> dict[str, Any]:
    from mirstd.models.checkpoint import model_from_checkpoint
    from mirstd.models.registry import create
    from mirstd.report.demo import _evaluator, score

    root, dev, budget = ctx["root"], ctx["device"], ctx["budget"]
    timings: dict[str, float] = {}
    doc: dict[str, Any] = {"method": name, "label": ctx["labels"].get(name, label(name))}
    if ctx["trainable"][name]:
        t = time.perf_counter()
        run = _train(name, ctx["specs"][name], root)
        timings["train"] = time.perf_counter() - t
        model = model_from_checkpoint(run / "weights" / "best.pt", dev)[0]
        doc.update(kind="deep", run=str(run), weights=str(run / "weights" / "best.pt"))
    else:
        model = create(name).to(dev).eval()
        doc.update(kind="classical", run=None, weights=None)
    model.eval()
    t = time.perf_counter()
    evaluator = ctx.get("evaluator", _evaluator)()
    ev = score(model, ctx["test"], dev, desc=f"test {name}", evaluator=evaluator)
    timings["test"] = time.perf_counter() - t
    res = ev.compute()
    groups: dict[str, Any] = {}
    curves: dict[str, Any] = {}
    make_row = ctx.get("row", table1_row)
    for g in GROUPS_TABLE1:
        gres = res if g == "all" else res.get("by_scr", {}).get(g)
        if gres is None:
            continue
        c = ev.curves(None if g == "all" else g)
        groups[g] = make_row(gres, c)
        curves[g] = _curves_jsonable(c)
    iters = BUDGET_SPECS[budget]["latency_iters"]
    doc.update(efficiency(model, ctx["frame_shape"], dev, iters))
    if ctx.get("paper_cost"):  # the paper configuration at the paper input (random weights)
        paper = ctx["paper_cost"](name)
        cost = efficiency(paper, BOX_PAPER_INPUT, dev, max(1, iters // 2))
        doc.update({f"paper_{k}": v for k, v in cost.items()})
    if ctx["thumbs"]:
        from mirstd.infer.evaluate import eval_dataset_for

        ds = eval_dataset_for(model, ctx["test"], {"frames": model.num_frames or 5})
        doc["thumbs"] = thumbnails(model, ds, ctx["picks"], ctx["thumb_dir"], name, dev)
    res.pop("meta", None)
    doc.update(status="ok", groups=groups, curves=curves, results=res, seconds=timings)
    return doc


def _real_method(name: str, ctx: dict[str, Any]) -> dict[str, Any]:
    from mirstd.infer.evaluate import build_evaluator
    from mirstd.models.checkpoint import model_from_checkpoint
    from mirstd.models.pretrained import pretrained_path
    from mirstd.models.registry import create
    from mirstd.report.demo import score

    dev, budget = ctx["device"], ctx["budget"]
    doc: dict[str, Any] = {"method": name, "label": label(name)}
    if ctx["trainable"][name]:
        path = pretrained_path(name)
        if path is None:
            doc.update(kind="deep", status="skipped", reason=f"no shipped weights (mirstd/weights/{name}.pt)")
            return doc
        model = model_from_checkpoint(path, dev)[0]
        doc.update(kind="deep", weights=str(path))
    else:
        model = create(name).to(dev).eval()
        doc.update(kind="classical", weights=None)
    model.eval()
    groups, curves, results, timings = {}, {}, {}, {}
    for test, seqs in ctx["real"].items():
        t = time.perf_counter()
        stride = int(BUDGET_SPECS[budget]["real_stride"][test])
        ev = score(model, seqs, dev, f"{test} {name}", build_evaluator({}), key_stride=stride)
        res = ev.compute()
        timings[test] = time.perf_counter() - t
        res.pop("meta", None)
        res.pop("by_scr", None)
        groups[test] = real_row(res)
        curves[test] = _curves_jsonable(ev.curves())
        results[test] = res
    shape = ctx["frame_shape"]
    doc.update(efficiency(model, shape, dev, BUDGET_SPECS[budget]["latency_iters"]))
    doc.update(status="ok", groups=groups, curves=curves, results=results, seconds=timings)
    return doc


# ------------------------------------------------------------------------------------ tables
def results_rows(docs: list[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    """One row per method x group (skipped methods: one row with the reason)."""
    cols = [c[0] for c in COLUMNS[protocol]]
    rows = []
    for d in docs:
        base = {"method": d["method"], "label": d["label"], "kind": d.get("kind"), "status": d.get("status")}
        if d.get("status") != "ok":
            rows.append({**base, "group": "", "reason": d.get("reason", "")})
            continue
        for g, vals in d.get("groups", {}).items():
            row = {**base, "group": g}
            for c in cols:
                row[c] = vals.get(c, d.get(c))
            row["frames"] = vals.get("frames")
            row["reason"] = ""
            rows.append(row)
    return rows


def write_csv(path: Path, rows: list[dict[str, Any]], protocol: str, budget: str, seed: int) -> Path:
    cols = ["protocol", "budget", "seed", "method", "label", "kind", "status", "group"]
    cols += [c[0] for c in COLUMNS[protocol] if c[0] not in cols] + ["frames", "reason"]
    cols = list(dict.fromkeys(cols))
    buf = io.StringIO()
    w = csv.DictWriter(buf, fieldnames=cols, extrasaction="ignore", lineterminator="\n")
    w.writeheader()
    for r in rows:
        w.writerow(
            {"protocol": protocol, "budget": budget, "seed": seed, **{k: _csv(v) for k, v in r.items()}}
        )
    return atomic_write_text(path, buf.getvalue())


def _csv(v: Any) -> Any:
    if isinstance(v, float):
        return "" if not np.isfinite(v) else f"{v:.6g}"
    return "" if v is None else v


def report_sections(docs: list[dict[str, Any]], protocol: str) -> list[dict[str, Any]]:
    """The tables of a protocol's finished methods: the ablation's paper tables first, then one per
    group (mSCR group or real test split), rows in ``docs`` order; no plots."""
    names = {k: v["label"] for k, v in REAL_TESTS.items()} if protocol == "real" else GROUPS_TABLE1
    ok = [d for d in docs if d.get("status") == "ok"]
    sections = ablation_sections(ok) if protocol == "ablation" else []
    for g, title in names.items():
        rows = [{"method": d["label"], **{c: d["groups"][g].get(c, d.get(c)) for c, _, _ in COLUMNS[protocol]}}
                for d in ok if g in d.get("groups", {})]  # fmt: skip
        if rows:
            sections.append({"id": g, "title": title, "columns": COLUMNS[protocol], "rows": rows,
                             "plots": [], "first": "method"})  # fmt: skip
    return sections


def _report(root: Path, docs: list[dict[str, Any]], meta: dict[str, Any]) -> Path:
    from mirstd.report import html

    ok = [d for d in docs if d.get("status") == "ok"]
    sections = report_sections(docs, meta["protocol"])
    for sec in sections:
        g = sec["id"]
        if g in ABLATION_TABLES:
            continue
        curves = {d["label"]: d["curves"].get(g, {}) for d in ok if g in d.get("curves", {})}
        sec["plots"] = html.curve_plots(curves, root / "plots", prefix=f"{g}_", title=sec["title"])
    thumbs = {d["label"]: [(t["caption"], root / "thumbs" / t["file"], t) for t in d.get("thumbs", [])]
              for d in ok if d.get("thumbs")}  # fmt: skip
    skipped = [(d["label"], d.get("reason", "")) for d in docs if d.get("status") != "ok"]
    return html.write_report(root / "report.html", meta, sections, thumbs=thumbs, skipped=skipped)


def ablation_sections(docs: list[dict[str, Any]], group: str = "all") -> list[dict[str, Any]]:
    """One report section per paper table (3-6): its rows in the paper's order, ours (``group``) beside
    the paper's IoU / Pd / Fa; variants not run are left out."""
    by = {d["method"]: d for d in docs if group in d.get("groups", {})}
    out = []
    for tid, (title, rows) in ABLATION_TABLES.items():
        trs = []
        for variant, row_label, (iou, pd, fa) in rows:
            if variant not in by:
                continue
            d = by[variant]
            vals = {c: d["groups"][group].get(c, d.get(c)) for c, _, _ in ABLATION_TABLE_COLUMNS}
            trs.append({**vals, "variant": row_label, "paper_iou": iou, "paper_pd": pd, "paper_fa": fa})
        if trs:
            out.append({"id": tid, "title": f"{title} ({GROUPS_TABLE1[group]})", "columns": ABLATION_TABLE_COLUMNS,
                        "rows": trs, "plots": [], "first": "variant"})  # fmt: skip
    return out


def markdown_tables(root: str | Path) -> str:
    """The finished methods of a bench folder (``<out>/<protocol>``) as Markdown tables, one per
    report section (what docs/bench.md quotes)."""
    import json

    from mirstd.report.html import cell

    root = Path(root)
    docs = [json.loads(p.read_text()) for p in sorted((root / "methods").glob("*.json"))]
    fp = docs[0]["fingerprint"] if docs else {"protocol": "table1", "budget": "cpu-quick"}
    protocol = fp["protocol"]
    order = {n: i for i, n in enumerate(default_methods(protocol, fp["budget"]))}
    docs.sort(key=lambda d: order.get(d["method"], 99))
    sections = report_sections(docs, protocol)
    lines = []
    for sec in sections:
        cols = sec["columns"]
        lines += [f"**{sec['title']}**", "", "| " + " | ".join([sec["first"], *(h for _, h, _ in cols)]) + " |",
                  "|---" + "|---:" * len(cols) + "|"]  # fmt: skip
        for r in sec["rows"]:
            lines.append(
                "| "
                + " | ".join([str(r[sec["first"]]), *(cell(r.get(k), kind)[0] for k, _, kind in cols)])
                + " |"
            )
        lines.append("")
    return "\n".join(lines)


# ------------------------------------------------------------------------------------ main
def run_bench(
    protocol: str = "table1",
    budget: str = "cpu-quick",
    methods: list[str] | str | None = None,
    out: str | Path = "runs/bench",
    resume: bool = False,
    seed: int = 0,
    device: str | None = None,
    thumbs: int = 2,
) -> Path:
    """Run the bench; returns the path of ``report.html`` (``<out>/<protocol>/``)."""
    from mirstd.utils.device import resolve_device

    t0 = time.perf_counter()
    protocol = check_choice("protocol", protocol, PROTOCOLS)
    budget = check_choice("budget", budget, BUDGETS)
    names = resolve_methods(methods, protocol, budget)
    dev = str(resolve_device(device))
    root = Path(out) / protocol
    (root / "methods").mkdir(parents=True, exist_ok=True)
    spec = BUDGET_SPECS[budget]
    ctx: dict[str, Any] = {"root": root, "device": dev, "budget": budget, "seed": int(seed)}
    ctx["trainable"] = {n: is_trainable(n, protocol) for n in names}
    ctx["labels"] = {n: label(n) for n in names}
    if protocol == "real":
        data_desc, run_one = _setup_real(ctx, names, spec)
    else:
        data_desc, run_one = _setup_synth(ctx, names, protocol, budget, int(seed), device, int(thumbs))

    docs = []
    for n in names:
        fp = _fingerprint(protocol, budget, int(seed), ctx["specs"][n], ctx["data_key"])
        path = root / "methods" / f"{n}.json"
        doc = load_result(path, fp) if resume else None
        if doc is not None:
            _log(f"{n}: kept {path} (resume=true)")
        else:
            t = time.perf_counter()
            doc = run_one(n, ctx)
            doc["fingerprint"] = fp
            doc["wall_s"] = time.perf_counter() - t
            write_json(path, doc)
            _log(f"{n}: done in {doc['wall_s']:.1f} s -> {path}")
        docs.append(doc)

    env = environment(dev)
    write_json(root / "env.json", env)
    write_csv(root / "results.csv", results_rows(docs, protocol), protocol, budget, int(seed))
    meta = {
        "protocol": protocol,
        "budget": budget,
        "seed": int(seed),
        "methods": names,
        "data": data_desc,
        "env": env,
        "recipes": {n: ctx["specs"][n] for n in names if ctx["trainable"][n]},
        "wall_s": time.perf_counter() - t0,
    }
    report = _report(root, docs, meta)
    _log(f"report: {report} ({meta['wall_s']:.0f} s)")
    return report


def _setup_synth(
    ctx: dict[str, Any],
    names: list[str],
    protocol: str,
    budget: str,
    seed: int,
    device: str | None,
    thumbs: int,
) -> tuple[dict[str, Any], Any]:
    """table1 / ablation / smfnet: render the budget's synthetic bench data and set the recipes."""
    from mirstd.data.readers import load_dataset
    from mirstd.report.demo import synthesise

    spec = BUDGET_SPECS[budget]
    root = ctx["root"]
    synth = dict(spec["synth"])
    preset = synth.pop("preset")
    data = synthesise(root, preset, seed, synth)
    ctx["test"] = load_dataset(data).split("test")
    ctx["frame_shape"] = _frame_shape(ctx["test"][0])
    recipe = {"table1": train_recipe, "ablation": ablation_recipe, "smfnet": box_recipe}[protocol]
    ctx["specs"] = {
        n: recipe(n, budget, str(data), seed, device) if ctx["trainable"][n] else {"model": n} for n in names
    }
    if protocol == "ablation":
        ctx["labels"] = {n: ABLATION_VARIANTS[n]["label"] for n in names}
    if protocol == "smfnet":
        from mirstd.infer.evaluate import build_evaluator
        from mirstd.models.registry import create

        ctx["evaluator"] = lambda: build_evaluator({"protocols": ["coco", "point", "point_curve"]})
        ctx["row"] = box_row
        ctx["paper_cost"] = lambda n: create(n).eval()
    ctx["thumbs"] = thumbs
    ctx["thumb_dir"] = root / "thumbs"
    ctx["picks"] = pick_frames(ctx["test"], GROUPS_TABLE1, thumbs) if thumbs else []
    data_desc = {"synth": spec["synth"], "seed": seed, "path": str(data), "test_sequences": len(ctx["test"]),
                 "mscr": {s.name: _mscr(s) for s in ctx["test"]}}  # fmt: skip
    ctx["data_key"] = {"synth": spec["synth"]}
    return data_desc, _table1_method


def _setup_real(ctx: dict[str, Any], names: list[str], spec: dict[str, Any]) -> tuple[dict[str, Any], Any]:
    """real: the real test splits found in the data roots; shipped weights for trainable methods."""
    ctx["real"], missing = _real_tests(spec)
    if not ctx["real"]:
        raise FileNotFoundError(f"protocol=real: no real test data found ({'; '.join(missing)})")
    first = next(iter(ctx["real"].values()))[0]
    ctx["frame_shape"] = _frame_shape(first)
    ctx["specs"] = {n: {"model": n, "weights": "shipped" if ctx["trainable"][n] else None} for n in names}
    data_desc = {
        "tests": {
            k: {**REAL_TESTS[k], "key_stride": spec["real_stride"][k], "sequences": [s.name for s in v]}
            for k, v in ctx["real"].items()
        },
        "missing": missing,
    }
    ctx["data_key"] = {k: {**v, "sequences": [s.name for s in ctx["real"].get(k, [])],
                           "key_stride": spec["real_stride"][k]} for k, v in REAL_TESTS.items()}  # fmt: skip
    return data_desc, _real_method


def _frame_shape(seq: Any) -> tuple[int, int]:
    f = seq.load_frame(0)
    return int(f.shape[0]), int(f.shape[1])


def _mscr(seq: Any) -> float | None:
    from mirstd.infer.evaluate import sequence_mscr

    return sequence_mscr(seq)


def _real_tests(spec: dict[str, Any]) -> tuple[dict[str, list[Any]], list[str]]:
    from mirstd.data.readers import load_dataset

    found, missing = {}, []
    for test, t in REAL_TESTS.items():
        try:
            seqs = load_dataset(t["data"]).split(t["split"])
        except (FileNotFoundError, KeyError, ValueError) as e:
            missing.append(f"{test}: {e}")
            continue
        if spec.get("real_max_sequences"):
            seqs = seqs[: int(spec["real_max_sequences"])]
        found[test] = seqs
    return found, missing


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print(
            "keys: protocol=table1|ablation|real|smfnet budget=smoke|cpu-quick|cpu|gpu methods=[pstfnet,...] (null: the "
            "protocol's default) out=runs/bench resume=false seed=0 device=null thumbs=2"
        )
        return 0
    kw = task_config("bench", parse_overrides(argv))
    report = run_bench(**kw)
    print(report)
    return 0
