"""``mirstd eval`` and ``mirstd profile`` command-line handlers."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from mirstd.utils.config import parse_overrides

EVAL_USAGE = """usage: mirstd eval pred=DIR|FILE.json data=PATH [split=test] [format=auto|folder|coco] [out=DIR]
                   [thr=0.5] [protocols=iou,pdfa_centroid,...] [scr_thresholds=[3]] [dnanet_compat=false]
                   [shooting_variant=clipped|dtum_faithful] [point_distance=3] [conf=0.5] [plots=true]

Scores saved predictions: <pred>/<sequence>/<frame_id>.png (8-bit prob*255 or 16-bit) or .npy floats,
or a COCO results json (image_id = "<sequence>/<frame_id>" or 1-based frame number over the split).
Writes metrics.json, metrics.md, roc.png / pdfa.png / pr.png to out (default <pred>_eval)."""

PROFILE_USAGE = """usage: mirstd profile model=NAME [imgsz=384] [frames=5] [batch=1] [channels=auto] [device=cpu]
                      [dtype=float32] [warmup=10] [iters=20] [threads=N] [out=FILE.json] [key=value model kwargs]

Params (registered / used), FLOPs (= 2 x MACs, torch.utils.flop_counter), latency median and IQR,
FPS, peak memory, and the machine's fp32 GEMM rate."""

_EVAL_KEYS = {"pred", "data", "split", "format", "out", "thr", "protocols", "scr_thresholds", "dnanet_compat",
              "centroid_variant", "shooting_variant", "shooting_thresholds", "roc_bins", "niou_empty",
              "point_distance", "max_dist", "conf", "area_ranges", "plots", "progress"}  # fmt: skip


def _listify(v: Any) -> list[Any] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return list(v) if isinstance(v, (list, tuple)) else [v]


def build_evaluator(cfg: dict[str, Any]) -> Any:
    """Evaluator from ``mirstd eval`` keys (shared with validation configs)."""
    from mirstd.metrics.evaluator import Evaluator

    kw: dict[str, Any] = {}
    for key in ("dnanet_compat", "centroid_variant", "shooting_variant", "shooting_thresholds", "roc_bins",
                "niou_empty", "point_distance", "max_dist", "conf", "area_ranges"):  # fmt: skip
        if key in cfg:
            kw[key] = cfg[key]
    scr = _listify(cfg.get("scr_thresholds", [3.0]))
    return Evaluator(
        protocols=_listify(cfg.get("protocols")),
        scr_thresholds=tuple(float(s) for s in scr),
        threshold=float(cfg.get("thr", 0.5)),
        **kw,
    )


def eval_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(EVAL_USAGE)
        return 0
    cfg = parse_overrides(argv)
    unknown = sorted(set(cfg) - _EVAL_KEYS)
    if unknown:
        raise ValueError(f"unknown key(s) {unknown} for eval; valid keys: {', '.join(sorted(_EVAL_KEYS))}")
    for req in ("pred", "data"):
        if req not in cfg:
            raise ValueError(f"eval needs {req}=...\n{EVAL_USAGE}")
    ev = build_evaluator(cfg)  # validates convention names before any data is read
    from mirstd.data import load_dataset  # type: ignore[attr-defined]
    from mirstd.metrics.predictions import evaluate_predictions, markdown_table, write_report

    dataset = load_dataset(str(cfg["data"]))
    split = cfg.get("split", "test")
    ev = evaluate_predictions(
        dataset, cfg["pred"], split, str(cfg.get("format", "auto")), ev, bool(cfg.get("progress", True))
    )
    pred = Path(str(cfg["pred"]))
    out = Path(str(cfg.get("out", pred.with_name(pred.stem + "_eval"))))
    res = write_report(
        ev, out, title=f"{pred.name} on {dataset.name}:{split}", plots=bool(cfg.get("plots", True))
    )
    print(markdown_table(res, f"{pred.name} on {dataset.name}:{split}"))
    print(f"wrote {out / 'metrics.json'}, {out / 'metrics.md'}")
    return 0


def profile_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(PROFILE_USAGE)
        return 0
    cfg = parse_overrides(argv)
    if "model" not in cfg:
        raise ValueError(f"profile needs model=NAME\n{PROFILE_USAGE}")
    import torch

    from mirstd.metrics.efficiency import format_profile, profile_model
    from mirstd.models import create
    from mirstd.utils.io import atomic_write_text

    name = str(cfg.pop("model"))
    imgsz = cfg.pop("imgsz", 384)
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))
    frames, batch = int(cfg.pop("frames", 5)), int(cfg.pop("batch", 1))
    device, warmup, iters = (
        str(cfg.pop("device", "cpu")),
        int(cfg.pop("warmup", 10)),
        int(cfg.pop("iters", 20)),
    )
    threads = cfg.pop("threads", None)
    dtype_name = str(cfg.pop("dtype", "float32"))
    dtypes = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}
    if dtype_name not in dtypes:
        raise ValueError(f"unknown dtype {dtype_name!r}; valid: {', '.join(dtypes)}")
    out = cfg.pop("out", None)
    channels = cfg.pop("channels", None)
    model = create(name, **cfg)
    c = int(channels) if channels is not None else int(getattr(model, "in_channels", 3))
    rep = profile_model(model, (batch, c, frames, h, w), device=device, warmup=warmup, iters=iters,
                        dtype=dtypes[dtype_name], threads=threads)  # fmt: skip
    rep["model"], rep["model_kwargs"] = name, cfg
    print(f"# profile: {name}\n")
    print(format_profile(rep))
    if out:
        atomic_write_text(out, json.dumps(rep, indent=1, default=str))
        print(f"wrote {out}")
    return 0
