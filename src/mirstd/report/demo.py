"""``mirstd demo`` (= ``make demo``): the first whole path a user walks.

1. synthesise the ``demo`` preset (native layout, cached in ``<out>/data``);
2. train PSTFNet, the single-frame ResUNet (and SMFNet) on the CPU, each choosing ``best.pt`` on
   the validation split;
3. score every method — the trained networks and the Top-Hat filter — on the *test* split with the
   same Evaluator, split by sequence mSCR (< 3 / >= 3) as in the PSTFNet paper's Table 1;
4. score them zero-shot on the real ``airground-real`` sequences when present (point protocol);
5. write ``<out>/report.md`` and ``<out>/report.html`` (the static page of ``mirstd bench``,
   :mod:`mirstd.report.html`) with the tables, the ROC / Pd-Fa plots and the run's meta.
"""

from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mirstd._version import __version__
from mirstd.data.readers import load_dataset
from mirstd.engine.trainer import train
from mirstd.infer.evaluate import eval_dataset_for, run_evaluation
from mirstd.metrics import Evaluator
from mirstd.metrics.report import pdfa_curve, plot_curves
from mirstd.metrics.seg import CURVE_THRESHOLDS_DEEP
from mirstd.models.checkpoint import model_from_checkpoint
from mirstd.models.registry import create
from mirstd.report import bench
from mirstd.report import html as html_report
from mirstd.synth import generate
from mirstd.utils.config import merge, parse_overrides, task_config
from mirstd.utils.io import atomic_write_text, write_json

# Training settings sized so the whole demo fits in 15 minutes on a 2-core CPU. The networks are the
# registered models; only their training length is short. ``quick=true`` shrinks everything (tests).
TRAIN_COMMON: dict[str, Any] = {
    "frames": 5,
    "imgsz": 64,
    "batch": 4,
    "optimizer": "adamw",
    "lr": 2.0e-3,
    "weight_decay": 1.0e-4,
    "scheduler": "cosine",
    "warmup_steps": 20,
    "milestones": [0.7, 0.9],
    "flip": True,
    "val_stride": 2,
    # Mostly random crops: with 80 % target crops short runs learn "every bright edge is a target"
    # (ResUNet, 400 steps: val Fa 0.10 at 0.3 vs 0.24 at 0.8; 800 steps at 0.3: IoU 0.40, Fa 1.4e-4).
    "target_crop_prob": 0.3,
    # A 700-step PSTFNet without it labelled a whole dark ground test scene (level 50 DN vs ~100 in
    # training) as target (Fa 0.997 on that sequence); brightness/contrast jitter covers such scenes.
    "intensity_jitter": 0.4,
    "progress": True,
    "plots": True,
}
# One SoftIoU ratio over the batch (DTUM's fullySup form), not the mean of per-crop ratios: on a
# target-free crop the per-crop ratio 1/(sum p + 1) pulls every pixel down with gradient ~1, which
# with 70 % such crops outweighs the ~1/|target| pull up on the few target pixels. Per crop, the
# demo's PSTFNet found nothing (val IoU 0, test Pd 0, seed 0, ATen avx2); over the batch, val IoU
# 0.28 and test Pd 64 % (seed 0). Used by both mask models below (SMFNet has its own loss).
BATCH_SOFTIOU = {"per_sample": False}
# The mask models' share of target crops (TRAIN_COMMON, shared with the bench, keeps 0.3). At 0.3 a
# batch of 4 holds no target one step in four (0.7^4); those steps push every pixel down, and the
# 700-step runs sank into SoftIoU's empty minimum on some kernel sets (ResUNet natively, PSTFNet
# with ATEN_CPU_CAPABILITY=default or avx2: val IoU 0 at both checks). At 0.6: one step in 39.
MASK_TARGET_CROPS = 0.6
METHODS: dict[str, dict[str, Any]] = {
    # MSFM's fixed token grid is the spec's resolution-free mode; 4x4 = the 64 px training crops / 16,
    # the paper's proportion (384 px / 16 = 24). Larger test frames are pooled onto the same grid.
    "pstfnet": {
        "label": "PSTFNet",
        # PSTFNet holds ResUNet's encoder, decoder and input norm under the same names; it starts from
        # the demo's trained ResUNet (trained first, even when not asked for) and learns its temporal
        # and fusion modules on top. From scratch, 700 CPU steps left it unstable across kernel sets.
        "start_from": "resunet",
        "train": {
            "model": "pstfnet",
            "model_args": {"grid_size": 4},
            "steps": 700,
            "val_every": 350,
            # SoftIoU + BCE: the fresh MSFM gates replace the features ResUNet's decoder was trained
            # on, so PSTFNet starts at logits of about -11 everywhere, where SoftIoU's gradient
            # vanishes (sigmoid' ~ 2e-5). With SoftIoU alone it never left that state with
            # ATEN_CPU_CAPABILITY=avx2 (val IoU 0 at steps 100-700, also at lr 5e-4); BCE's gradient
            # on a target pixel is ~1 and it learned with avx2, default and AVX-512 kernels.
            "loss": "softiou_bce",
            "loss_args": BATCH_SOFTIOU,
            "target_crop_prob": MASK_TARGET_CROPS,
            # A quarter of the common lr: the encoder and decoder arrive trained. At 2e-3 the val
            # split's mSCR < 3 Pd@Fa=1e-5 was 10.8 / 31.7 / 17.4 % (native / avx2 / default kernels,
            # one thread, seed 0) against ResUNet's 11.8 / 11.8 / 4.6; at 5e-4 it is 33.4 / 36.8 /
            # 32.6, and mSCR >= 3 100 / 98.3 / 100 against 97.5 / 97.5 / 98.7.
            "lr": 5.0e-4,
        },
    },
    "resunet": {
        "label": "ResUNet (single frame)",
        "train": {
            "model": "resunet",
            "steps": 700,
            "val_every": 350,
            "loss_args": BATCH_SOFTIOU,
            "target_crop_prob": MASK_TARGET_CROPS,
        },
    },
    # Box model: the lab's input resize (input_scale) and precise BN make 150-300 CPU steps enough
    # (see tests/engine/test_detect_pipeline.py); its mask metrics are approximate (boxes as masks).
    "smfnet": {
        "label": "SMFNet (boxes)",
        "train": {
            "model": "smfnet",
            "model_args": {"width": 0.25, "input_scale": 2.0, "prior_prob": 0.01},
            "steps": 300,
            "val_every": 150,
            # Box training needs target-rich crops: with 70 % random crops and intensity jitter its
            # objectness stayed below 0.5 after 200 steps (no box survives the 0.5 threshold).
            "target_crop_prob": 0.8,
            "intensity_jitter": 0.0,
            "batch": 8,
            "imgsz": 64,
            "lr": 2.0e-3,
            "weight_decay": 5.0e-4,
            "warmup_steps": 10,
            "precise_bn": 20,
            "metric": "ap50",
        },
    },
    "tophat": {"label": "Top-Hat", "model": "tophat", "model_args": {"size": 7, "k": 5.0}},
}
DEFAULT_METHODS = ["pstfnet", "resunet", "smfnet", "tophat"]
QUICK = {"steps": 6, "val_every": 3, "imgsz": 32, "batch": 2, "warmup_steps": 1}


def _shared_real() -> Path | None:
    """``airground-real`` beside the checkout (``../shared``) or under ``$MIRSTD_SHARED``."""
    cands = []
    if os.environ.get("MIRSTD_SHARED"):
        cands.append(Path(os.environ["MIRSTD_SHARED"]) / "data" / "airground-real")
    cands.append(Path.cwd().parent / "shared" / "data" / "airground-real")
    cands.append(Path(__file__).resolve().parents[3].parent / "shared" / "data" / "airground-real")
    return next((c for c in cands if c.is_dir()), None)


def _log(msg: str) -> None:
    print(f"[demo] {msg}", file=sys.stderr, flush=True)


# ------------------------------------------------------------------------------------------ stages
def synthesise(out: Path, preset: str, seed: int, overrides: dict[str, Any]) -> Path:
    data = out / "data"
    stamp = data / ".demo-config.json"
    want = json.dumps({"preset": preset, "seed": seed, "overrides": overrides}, sort_keys=True)
    if (data / "dataset.yaml").is_file() and stamp.is_file() and stamp.read_text() == want:
        _log(f"data: reusing {data}")
        return data
    _log(f"data: rendering preset={preset} into {data}")
    generate(preset, data, seed=seed, progress=True, exist_ok=True, **overrides)
    atomic_write_text(stamp, want)
    return data


def recipe(key: str, quick: bool) -> dict[str, Any]:
    """The ``train(...)`` settings of trainable method ``key`` (paths, seed and device filled in later)."""
    return merge(merge(TRAIN_COMMON, METHODS[key]["train"]), QUICK if quick else {})


def training_order(methods: list[str]) -> list[str]:
    """The methods to train or score, each after the method it starts from (added when not asked for)."""
    order: list[str] = []
    for key in methods:
        source = METHODS[key].get("start_from")
        if source and source not in order:
            order.append(source)
        if key not in order:
            order.append(key)
    return order


def train_method(
    key: str,
    spec: dict[str, Any],
    data: Path,
    out: Path,
    seed: int,
    quick: bool,
    device: str | None,
    pretrained: Path | None = None,
) -> Path:
    cfg = recipe(key, quick)
    cfg.update(data=str(data), project=str(out / "runs"), name=key, exist_ok=True, seed=seed)
    if device:
        cfg["device"] = device
    if pretrained is not None:
        cfg["pretrained"] = str(pretrained)
    start = f", starting from {pretrained}" if pretrained is not None else ""
    _log(f"train {spec['label']}: {cfg['steps']} steps, batch {cfg['batch']}, crops {cfg['imgsz']} px{start}")
    run_dir = train(**cfg)
    return Path(run_dir)


def _evaluator() -> Any:
    # coco: mask models' score maps become scored boxes (and GT boxes come from the GT masks), so box
    # and mask models share the AP50 column.
    # The Pd-Fa curve runs to 1 - 1e-15: the networks' false alarms sit at logits 28-32 (float64 scores).
    protocols = ["iou", "pdfa_centroid", "pdfa_shooting", "roc_pixel", "pdfa_curve", "coco"]
    return Evaluator(protocols=protocols, curve_thresholds=CURVE_THRESHOLDS_DEEP)


def score(
    model: torch.nn.Module,
    sequences: list[Any],
    device: str,
    desc: str,
    evaluator: Any = None,
    key_stride: int = 1,
) -> Any:
    """Score ``model`` on full frames of ``sequences`` through the evaluation runner (as ``mirstd val``).

    ``key_stride`` > 1 scores every k-th key frame only (each clip still has its full history).
    """
    ds = eval_dataset_for(model, sequences, {"frames": model.num_frames or 5, "key_stride": key_stride})
    return run_evaluation(model, ds, evaluator or _evaluator(), device, progress=True, desc=desc)


def load_method(key: str, spec: dict[str, Any], run_dir: Path | None, device: str) -> torch.nn.Module:
    if run_dir is None:
        return create(spec["model"], **spec.get("model_args", {})).to(device).eval()
    return model_from_checkpoint(run_dir / "weights" / "best.pt", device)[0]


# ------------------------------------------------------------------------------------------ report
def pd_at_fa(curve: dict[str, np.ndarray] | None, fa: float) -> float:
    """Pd of a Pd-Fa curve at false-alarm rate ``fa``; nan when no measured point has Fa <= ``fa``.

    Between two measured points with Fa > 0 the curve is interpolated linearly in log10(Fa) (the curve
    as drawn on a log axis). Below the lowest positive Fa the value is the best point with Fa = 0: a
    segment from Fa = 0 has no log-axis length to interpolate along, and any interpolation there would
    depend on an arbitrary floor (Pd could come out above what the sweep measured at that Fa).
    """
    if not curve:
        return float("nan")
    f, p = np.asarray(curve["fa"], float), np.asarray(curve["pd"], float)
    order = np.argsort(f, kind="stable")
    f, p = f[order], np.maximum.accumulate(p[order])
    if f.size == 0 or fa < f[0]:
        return float("nan")
    i = int(np.searchsorted(f, fa, side="right")) - 1  # last measured point with Fa <= fa
    if f[i] <= 0 or i + 1 >= f.size or f[i] == fa:
        return float(p[i])
    w = (np.log10(fa) - np.log10(f[i])) / (np.log10(f[i + 1]) - np.log10(f[i]))
    return float(p[i] + w * (p[i + 1] - p[i]))


def _cell(res: dict[str, Any] | None, key: str, scale: float = 100.0, fmt: str = "{:.2f}") -> str:
    if not res:
        return "–"
    for k in (key, key.replace("]", ":box_as_mask]") if "[" in key else f"{key}[box_as_mask]"):
        if k in res and res[k] is not None and np.isfinite(res[k]):
            approx = "≈" if k != key else ""
            return approx + fmt.format(res[k] * scale)
    return "–"


def table1(rows: list[dict[str, Any]]) -> str:
    """Markdown table shaped like the PSTFNet paper's Table 1 (IoU %, Pd %, Fa x1e-6 by mSCR group)."""
    head = (
        "| method | params | mSCR<3 IoU | Pd | Fa | mSCR≥3 IoU | Pd | Fa | all IoU | Pd | Fa "
        "| Pd@Fa=1e-5 mSCR<3 | mSCR≥3 | AP50 (all) |\n"
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"
    )
    lines = [head]
    for r in rows:
        res = r["results"]
        groups = res.get("by_scr", {})
        cells = []
        for g in (groups.get("low"), groups.get("high"), res):
            cells += [_cell(g, "iou"), _cell(g, "pd[centroid]"), _cell(g, "fa[centroid]", 1e6)]
        for g in ("low", "high"):
            paf = r.get(f"pd_at_fa_{g}", float("nan"))
            cells.append("–" if paf is None or not np.isfinite(paf) else f"{100 * paf:.2f}")
        ap = res.get("ap50")
        ap_txt = "–" if ap is None or not np.isfinite(ap) or ap < 0 else f"{100 * ap:.2f}"
        lines.append(f"| {r['label']} | {r['params']:,} | " + " | ".join(cells) + f" | {ap_txt} |")
    return "\n".join(lines)


def real_table(rows: list[dict[str, Any]]) -> str:
    head = "| method | Pd % (point, d<3 px) | false alarms / frame | Fa ×1e-6 (pixels) | frames |\n|---|---:|---:|---:|---:|"
    lines = [head]
    for r in rows:
        res = r["results"]
        pd = res.get("pd[point]")
        fa_frame = res.get("fa_per_frame[point]")
        fa_pix = res.get("fa[point]")
        f = lambda v, s, fmt: "–" if v is None else fmt.format(v * s)  # noqa: E731
        lines.append(
            f"| {r['label']} | {f(pd, 100, '{:.2f}')} | {f(fa_frame, 1, '{:.3f}')} | {f(fa_pix, 1e6, '{:.2f}')} | {res.get('frames', '–')} |"
        )
    return "\n".join(lines)


# The HTML report reuses ``mirstd bench``'s row builders and columns (mirstd.report.bench imports
# from this module only inside functions, so importing it at module level here makes no cycle).
# Table 1: the bench's columns less the efficiency ones the demo does not measure.
HTML_TABLE1_COLUMNS = [c for c in bench.COLUMNS["table1"] if c[0] not in ("gflops", "latency_ms")]
HTML_REAL_COLUMNS = [
    ("pd_point", "Pd % (point, d<3 px)", "pct"),
    ("fa_per_frame", "false alarms / frame", "num"),
    ("fa_pixels", "Fa ×1e-6 (pixels)", "fa"),
    ("frames", "frames", "int"),
]
CONVENTIONS = (
    "Conventions: IoU accumulated over the split; Pd/Fa `centroid:basicirstd` (8-connected components, "
    "centroid distance < 3 px, Fa = unmatched component pixels / all pixels) at probability > 0.5; "
    "mSCR groups by `scr_clean` (low ⇔ mSCR < 3); `Pd@Fa=1e-5` read off each group's centroid Pd–Fa "
    "curve (threshold sweep up to 1 - 1e-15, on float64 network scores) — the matched-false-alarm "
    "comparison; `–`: no threshold of "
    "the sweep brings Fa down to 1e-5. "
    "`≈`: box model scored with its boxes filled as masks (approximate). AP50: COCO AP at IoU 0.5 "
    "(faster-coco-eval, 101-point), GT boxes from the 8-connected GT mask components, mask models' "
    "score maps turned into boxes (component extent, score = peak probability)."
)
REAL_NOTE = (
    "Point protocol: a target is detected when a predicted component centroid (or box centre) "
    "lies within 3 px of the labelled point; false alarms are unmatched components."
)


def html_sections(
    rows: list[dict[str, Any]],
    real_rows: list[dict[str, Any]],
    real_path: Path | None,
    real_stride: int,
    plots: list[Path],
    timings: dict[str, float],
) -> list[dict[str, Any]]:
    """The sections of ``report.html`` (see :func:`mirstd.report.html.write_report`): one Table-1
    table per mSCR group (rows from :func:`mirstd.report.bench.table1_row`), the real-data table
    (:func:`mirstd.report.bench.real_row`), run folders and timings. Plots named ``low_*`` (the
    mSCR < 3 curves of :func:`run_demo`) go with the mSCR < 3 table, the others with "all"."""
    low = [p for p in plots if Path(p).name.startswith("low_")]
    group_plots = {"low": low, "all": [p for p in plots if p not in low]}
    sections: list[dict[str, Any]] = []
    for g, title in bench.GROUPS_TABLE1.items():
        trs = []
        for r in rows:
            res = r["results"]
            gres = res if g == "all" else res.get("by_scr", {}).get(g)
            if gres is None:
                continue
            vals = bench.table1_row(gres, {})  # no curves here: Pd@Fa comes from the row, per group
            if g in ("low", "high"):
                paf = r.get(f"pd_at_fa_{g}")
                vals["pd_at_fa"] = float(paf) if paf is not None and np.isfinite(paf) else None
            trs.append({"method": r["label"], **vals, "params": r.get("params")})
        if trs:
            sections.append(
                {
                    "id": g,
                    "title": f"Test split, {title}",
                    "columns": HTML_TABLE1_COLUMNS,
                    "rows": trs,
                    "plots": group_plots.get(g, []),
                }
            )
    if real_rows:
        name = real_path.name if real_path is not None else "real"
        trs = [
            {"method": r["label"], **bench.real_row(r["results"]), "fa_pixels": r["results"].get("fa[point]")}
            for r in real_rows
        ]
        sections.append(
            {
                "id": "real",
                "title": f"Zero-shot on real sequences ({name}, every {real_stride}th key frame)",
                "columns": HTML_REAL_COLUMNS,
                "rows": trs,
            }
        )
    runs = [{"method": r["label"], "run": r["run"]} for r in rows if r.get("run")]
    if runs:
        sections.append(
            {"id": "runs", "title": "Runs", "columns": [("run", "run folder", "text")], "rows": runs}
        )
    sections.append(
        {
            "id": "time",
            "title": "Time (s)",
            "first": "stage",
            "columns": [("seconds", "seconds", "s")],
            "rows": [{"stage": k, "seconds": v} for k, v in timings.items()],
        }
    )
    return sections


# ------------------------------------------------------------------------------------------ main
def run_demo(
    out: str | Path = "runs/demo",
    preset: str = "demo",
    seed: int = 0,
    methods: list[str] | None = None,
    quick: bool = False,
    device: str | None = None,
    real: str | Path | None = "auto",
    real_stride: int = 10,
    synth: dict[str, Any] | None = None,
) -> Path:
    """Run the whole demo; returns the path of ``report.md``."""
    t0 = time.perf_counter()
    methods = list(methods or DEFAULT_METHODS)
    unknown = [m for m in methods if m not in METHODS]
    if unknown:  # before anything is created: a refused command leaves no empty out= folder behind
        raise ValueError(f"demo: unknown method(s) {unknown}; valid: {', '.join(METHODS)}")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    timings: dict[str, float] = {}

    t = time.perf_counter()
    data = synthesise(out, preset, seed, synth or {})
    timings["synthesise"] = time.perf_counter() - t
    ds = load_dataset(data)
    test = ds.split("test")

    real_path = _shared_real() if real == "auto" else (Path(real) if real else None)
    real_seqs = None
    if real_path is not None:
        rds = load_dataset(real_path)
        real_seqs = list(rds)

    rows, real_rows, curves_all, curves_low = [], [], {}, {}
    run_dirs: dict[str, Path] = {}
    for key in training_order(methods):
        spec = METHODS[key]
        run_dir = None
        if "train" in spec:
            t = time.perf_counter()
            source = spec.get("start_from")
            start = run_dirs[source] / "weights" / "best.pt" if source else None
            run_dir = run_dirs[key] = train_method(key, spec, data, out, seed, quick, device, start)
            timings[f"train {key}"] = time.perf_counter() - t
        if key not in methods:  # trained only as another method's starting point
            continue
        model = load_method(key, spec, run_dir, dev)
        t = time.perf_counter()
        ev = score(model, test, dev, desc=f"test {key}")
        res = ev.compute()
        timings[f"test {key}"] = time.perf_counter() - t
        label = spec["label"]
        curves_all[label] = ev.curves()
        by_group = {g: ev.curves(g) if g in ev.groups() else {} for g in ("low", "high")}
        curves_low[label] = by_group["low"]
        n_params = sum(p.numel() for p in model.parameters())
        rows.append(
            {
                "key": key,
                "label": label,
                "params": n_params,
                "results": res,
                **{f"pd_at_fa_{g}": pd_at_fa(pdfa_curve(c), bench.PD_AT_FA) for g, c in by_group.items()},
                "run": str(run_dir) if run_dir else None,
                "started_from": spec.get("start_from") if run_dir else None,
            }
        )
        if real_seqs is not None:
            t = time.perf_counter()
            rev = score(
                model, real_seqs, dev, f"real {key}", Evaluator(protocols=["point"]), key_stride=real_stride
            )
            timings[f"airground {key}"] = time.perf_counter() - t
            real_rows.append({"key": key, "label": label, "results": rev.compute()})
        del model
    rows.sort(key=lambda r: methods.index(r["key"]))  # the table in the order asked for
    real_rows.sort(key=lambda r: methods.index(r["key"]))

    plots = plot_curves(curves_all, out, title="all") + (
        plot_curves(curves_low, out, "low_", "mSCR < 3") if any(curves_low.values()) else []
    )
    timings["total"] = time.perf_counter() - t0
    report = write_report(
        out, rows, real_rows, real_path, real_stride, plots, timings, ds, preset, quick, seed=seed, device=dev
    )
    _log(f"report: {report} and {report.with_name('report.html')} ({timings['total']:.0f} s)")
    return report


def write_report(
    out: Path,
    rows: list[dict[str, Any]],
    real_rows: list[dict[str, Any]],
    real_path: Path | None,
    real_stride: int,
    plots: list[Path],
    timings: dict[str, float],
    ds: Any,
    preset: str,
    quick: bool,
    *,
    seed: int | None = None,
    device: str | None = None,
) -> Path:
    """Write ``<out>/report.md``, ``<out>/report.html`` (same tables and plots, plus the run's meta)
    and ``<out>/report.json``; returns the path of ``report.md``."""
    mscr = {s.name: s.meta.get("mSCR") for s in ds.split("test")}
    n_low = sum(1 for v in mscr.values() if v is not None and v < 3)
    data_line = (
        f"Data: synthetic preset `{preset}` ({len(ds)} sequences, {ds.num_frames} frames; test split "
        f"{len(mscr)} sequences: {n_low} with mSCR < 3, {len(mscr) - n_low} with mSCR ≥ 3). "
        "Models chosen on the validation split; every number below is on the test split."
    )
    lines = [
        "# mirstd demo report",
        "",
        f"mirstd {__version__}, torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"device {'cuda' if torch.cuda.is_available() else 'cpu'}{' — QUICK MODE (smoke-sized, numbers meaningless)' if quick else ''}.",
        "",
        data_line,
        "",
        "## Table 1 shape: test split by mSCR (IoU %, Pd %, Fa ×10⁻⁶)",
        "",
        table1(rows),
        "",
        CONVENTIONS,
    ]
    if real_rows:
        lines += [
            "",
            f"## Zero-shot on real sequences (`{real_path.name}`, every {real_stride}th key frame)",
            "",
            real_table(real_rows),
            "",
            REAL_NOTE,
        ]
    lines += ["", "## Plots", ""] + [f"![{p.stem}]({p.name})" for p in plots]
    lines += ["", "## Runs", ""] + [
        f"- {r['label']}: `{r['run']}`"
        + (f" (started from the demo's {r['started_from']})" if r.get("started_from") else "")
        for r in rows
        if r["run"]
    ]
    lines += ["", "## Time (s)", "", "| stage | seconds |", "|---|---:|"]
    lines += [f"| {k} | {v:.1f} |" for k, v in timings.items()]
    path = out / "report.md"
    atomic_write_text(path, "\n".join(lines) + "\n")
    payload = {"rows": rows, "real": real_rows, "timings": timings}
    write_json(out / "report.json", payload)

    dev = device or ("cuda" if torch.cuda.is_available() else "cpu")
    approx = [r["label"] for r in rows if any("box_as_mask" in k for k in r["results"])]
    notes = [data_line, CONVENTIONS] + ([REAL_NOTE] if real_rows else [])
    if approx:
        notes.append(
            f"Box models scored with their boxes filled as masks (IoU, Pd, Fa approximate): {', '.join(approx)}."
        )
    meta = {
        "seed": seed,
        "methods": [r["label"] for r in rows],
        "env": bench.environment(dev),
        "data": {
            "preset": preset,
            "sequences": len(ds),
            "frames": ds.num_frames,
            "test_mscr": mscr,
            "real": str(real_path) if real_rows and real_path else None,
            "real_key_stride": real_stride if real_rows else None,
        },
        "recipes": {
            r["key"]: {
                **recipe(r["key"], quick),
                **({"start_from": r["started_from"]} if r.get("started_from") else {}),
            }
            for r in rows
            if "train" in METHODS.get(r.get("key"), {})
        },
        "wall_s": timings.get("total", float("nan")),
        "wall_label": "demo wall time",
        "warning": "quick=true: smoke-sized training, the numbers mean nothing." if quick else None,
        "notes": [n.replace("`", "") for n in notes],
    }
    title = f"mirstd demo report — preset {preset}{' (quick)' if quick else ''}"
    sections = html_sections(rows, real_rows, real_path, real_stride, plots, timings)
    html_report.write_report(out / "report.html", meta, sections, title=title)
    return path


def main(argv: list[str]) -> int:
    if argv and argv[0] in ("-h", "--help"):
        print(__doc__)
        print(
            "keys: out=runs/demo preset=demo seed=0 methods=[pstfnet,resunet,smfnet,tophat] quick=false "
            "device=null real=auto real_stride=10"
        )
        return 0
    kw = task_config("demo", parse_overrides(argv))
    report = run_demo(**kw)
    print(report.read_text())
    return 0
