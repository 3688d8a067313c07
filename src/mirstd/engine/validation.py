"""Evaluation of a model on whole frames through ``mirstd.metrics.Evaluator`` (training and ``mirstd val``)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mirstd.utils.io import atomic_write_text


def make_evaluator() -> Any:
    """The uniform evaluator (default suite for the inputs seen). Tests may swap this function."""
    from mirstd.metrics import Evaluator  # lazy: mirstd.metrics

    return Evaluator()


def _np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


@torch.no_grad()
def run_evaluator(
    model: nn.Module,
    dataset: Any,
    device: torch.device | str = "cpu",
    progress: bool = False,
    evaluator: Any = None,
    desc: str = "val",
) -> Any:
    """Predict every sample of ``dataset`` (contract sample dicts, full frames) into an Evaluator.

    Frames are run one at a time because validation sequences may differ in size. Returns the
    evaluator, so callers can read ``compute()`` and ``curves()``.
    """
    from mirstd.infer.predictor import infer_clip

    model.eval()
    ev = evaluator if evaluator is not None else make_evaluator()
    it = range(len(dataset))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=desc, leave=False)
    for i in it:
        s = dataset[i]
        r = infer_clip(model, s["clip"][None].to(device))[0]
        meta = s.get("meta") or {}
        # Score the un-padded frame: padded borders must not count in Fa's pixel total.
        oh, ow = (int(v) for v in (meta.get("orig_size") or s["clip"].shape[-2:]))
        scores = None if r["scores"] is None else r["scores"][:oh, :ow]
        ev.update(
            scores=scores,
            boxes=r["boxes"],
            gt_mask=_np(s["mask"][0, :oh, :ow]) if bool(s.get("has_mask")) else None,
            shape=(oh, ow),
            gt_boxes=_np(s.get("boxes")) if meta.get("has_boxes", True) else None,
            gt_points=_np(s.get("points")),
            sequence=str(meta.get("sequence", "seq")),
            frame=int(meta.get("index", meta.get("frame", i))),
            scr=meta.get("mscr"),
        )
    return ev


def evaluate(
    model: nn.Module, dataset: Any, device: torch.device | str = "cpu", progress: bool = False
) -> dict[str, Any]:
    """Score ``model`` on ``dataset`` with the default suite; see :func:`run_evaluator`."""
    return run_evaluator(model, dataset, device, progress).compute()


def pick_metric(results: dict[str, Any], name: str) -> float:
    """The value named ``name``: exact key, else the first key starting with ``name`` and a separator."""
    low = {k.lower(): k for k in results if isinstance(results[k], (int, float))}
    key = low.get(name.lower())
    if key is None:
        cands = sorted(
            k
            for lk, k in low.items()
            if lk.startswith(name.lower()) and lk[len(name) : len(name) + 1] in "_@./[("
        )
        if not cands:
            raise KeyError(f"metric {name!r} is not among the evaluator's results: {sorted(low.values())}")
        key = cands[0]
    return float(results[key])


def flat_numbers(results: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


def write_metrics(out: Path, results: dict[str, Any], header: dict[str, Any]) -> tuple[Path, Path]:
    """``metrics.json`` (all results + header) and ``metrics.md`` (a table of the flat numbers)."""
    doc = {**header, "metrics": results}
    j = atomic_write_text(out / "metrics.json", json.dumps(doc, indent=1, default=_jsonable))
    lines = [
        f"# {header.get('model', 'model')} on {header.get('data', '?')} [{header.get('split', '?')}]",
        "",
    ]
    lines += ["| metric | value |", "|---|---|"]
    lines += [f"| {k} | {v:.6g} |" for k, v in flat_numbers(results).items()]
    m = atomic_write_text(out / "metrics.md", "\n".join(lines) + "\n")
    return j, m


def _jsonable(o: Any) -> Any:
    if isinstance(o, np.generic):
        return o.item()
    if isinstance(o, (np.ndarray, torch.Tensor)):
        return o.tolist()
    return str(o)


def validate(
    weights: str | Path | None = None,
    data: Any = None,
    split: str = "val",
    out: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    model: str | None = None,
    model_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Score a checkpoint — or a parameter-free registered method (``model="tophat"``) — on ``split``.

    ``data`` defaults to the data the checkpoint was trained on. Writes ``metrics.json`` and
    ``metrics.md`` to ``out`` (default: the checkpoint's run folder, or ``runs/val/<model>``).
    """
    from mirstd.engine.checkpoint import model_from_checkpoint
    from mirstd.engine.data import clip_dataset, load_sequences

    dev = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
    if (weights is None) == (model is None):
        raise ValueError("give exactly one of weights=PATH (a checkpoint) or model=NAME (a classical method)")
    if weights is not None:
        net, ckpt = model_from_checkpoint(weights, dev)
        cfg, name, step = dict(ckpt.get("config") or {}), ckpt["model_name"], int(ckpt.get("step", 0))
    else:
        from mirstd.models import create

        net = create(str(model), **(model_args or {})).to(dev).eval()
        if any(p.requires_grad for p in net.parameters()):
            raise ValueError(
                f"model={model!r} has trainable parameters: validate a checkpoint with weights=PATH"
            )
        cfg, name, step = {}, str(model), 0
    data = data if data is not None else cfg.get("data")
    if data is None:
        raise ValueError("data= is required (the checkpoint does not name its training data)")
    cfg.setdefault("frames", 5), cfg.setdefault("pad", "repeat")
    seqs, _ = load_sequences(data, split)
    ds = clip_dataset(
        seqs, cfg, int(getattr(net, "in_channels", 1)), train=False, pad_to=getattr(net, "size_divisor", None)
    )
    results = evaluate(net, ds, dev, progress=progress)
    if out:
        out_dir = Path(out)
    elif weights is not None:
        out_dir = Path(weights).resolve().parent.parent
    else:
        out_dir = Path("runs") / "val" / name
    header = {
        "weights": str(weights) if weights else None,
        "model": name,
        "data": str(data),
        "split": split,
        "step": step,
    }
    write_metrics(out_dir, results, header)
    return results
