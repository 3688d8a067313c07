"""Saved predictions -> Evaluator: the code path of ``mirstd eval`` (and of validation and the demo,
which feed live model output to the same :func:`evaluate_sequences`).

Prediction layouts (``docs/metrics.md``):

- folder: ``<pred>/<sequence>/<frame_id>.png`` (8-bit: prob x 255; 16-bit: prob x 65535) or
  ``<frame_id>.npy`` (float probabilities in [0, 1]); ``frame_id`` = ``Sequence.frame_ids[i]``.
- COCO results json: a list of ``{"image_id", "bbox": [x, y, w, h], "score", "category_id"}``;
  ``image_id`` is either the string ``"<sequence>/<frame_id>"`` or the integer given by
  :func:`coco_image_ids` (sequences in split order, frames in order, numbered from 1).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.data.sequence import Sequence, SequenceDataset
from mirstd.metrics.evaluator import Evaluator, fa_scaled

PredictionFn = Callable[[Sequence, int], dict[str, Any]]


def read_prob_file(path: Path) -> np.ndarray:
    """Probability map from a PNG (8/16-bit) or .npy file; errors name the file."""
    if path.suffix == ".npy":
        try:
            a = np.load(path, allow_pickle=False)
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: cannot read ({e})") from None
        a = np.asarray(a, np.float32)
    else:
        import cv2

        raw = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
        if raw is None:
            raise ValueError(f"{path}: cannot read image")
        if raw.dtype == np.uint8:
            a = raw.astype(np.float32) / 255.0
        elif raw.dtype == np.uint16:
            a = raw.astype(np.float32) / 65535.0
        else:
            raise ValueError(f"{path}: unsupported PNG dtype {raw.dtype} (use 8- or 16-bit)")
    if a.ndim != 2:
        raise ValueError(f"{path}: expected a single-channel HxW map, got shape {a.shape}")
    if not np.isfinite(a).all():
        raise ValueError(f"{path}: contains NaN or inf scores")
    if a.min() < 0 or a.max() > 1:
        raise ValueError(f"{path}: scores outside [0, 1] ({a.min():g}..{a.max():g}); save probabilities")
    return a


def coco_image_ids(sequences: Iterable[Sequence]) -> dict[Any, tuple[str, int]]:
    """Image-id mapping for COCO results: ``"<seq>/<frame_id>"`` and 1-based integers -> (sequence, index)."""
    out: dict[Any, tuple[str, int]] = {}
    n = 0
    for seq in sequences:
        for i in range(len(seq)):
            n += 1
            out[seq.frame_name(i)] = out[n] = (seq.name, i)
    return out


class FolderPredictions:
    """``<root>/<sequence>/<frame_id>.png|.npy`` probability maps."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not self.root.is_dir():
            raise FileNotFoundError(f"prediction folder {self.root} does not exist")

    def __call__(self, seq: Sequence, i: int) -> dict[str, Any]:
        folder = self.root / seq.name
        if not folder.is_dir():
            raise FileNotFoundError(f"prediction folder for sequence {seq.name!r} is missing: {folder}")
        fid = seq.frame_ids[i]
        for ext in (".png", ".npy"):
            p = folder / f"{fid}{ext}"
            if p.is_file():
                return {"scores": read_prob_file(p), "source": str(p)}
        raise FileNotFoundError(
            f"missing prediction for frame {seq.frame_name(i)}: {folder / fid}.png (or .npy)"
        )


class CocoPredictions:
    """COCO-style detection results json mapped onto the dataset's frames."""

    def __init__(self, path: str | Path, sequences: Iterable[Sequence]) -> None:
        self.path = Path(path)
        try:
            dets = json.loads(self.path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{self.path}: not valid JSON ({e})") from None
        if isinstance(dets, dict) and "annotations" in dets:
            dets = dets["annotations"]
        if not isinstance(dets, list):
            raise ValueError(f"{self.path}: expected a list of detections")
        ids = coco_image_ids(sequences)
        self.by_frame: dict[tuple[str, int], list[list[float]]] = {}
        for k, d in enumerate(dets):
            try:
                key = ids[d["image_id"]]
                x, y, w, h = (float(v) for v in d["bbox"])
                s = float(d["score"])
            except KeyError as e:
                raise ValueError(
                    f"{self.path}: detection {k} has unknown image_id or misses key {e}"
                ) from None
            if not np.isfinite([x, y, w, h, s]).all():
                raise ValueError(f"{self.path}: detection {k} has NaN or inf values")
            self.by_frame.setdefault(key, []).append([x, y, x + w, y + h, s])

    def __call__(self, seq: Sequence, i: int) -> dict[str, Any]:
        b = np.asarray(self.by_frame.get((seq.name, i), []), np.float64).reshape(-1, 5)
        return {"boxes": b, "source": str(self.path)}


def sequence_mscr(seq: Sequence) -> float | None:
    """mSCR of a sequence: ``meta["mSCR"]`` when given, else the mean of per-frame label SCRs."""
    if seq.meta.get("mSCR") is not None:
        return float(seq.meta["mSCR"])
    vals = [float(np.nanmean(lab.scr)) for lab in seq.labels if np.isfinite(lab.scr).any()]
    return float(np.mean(vals)) if vals else None


def evaluate_sequences(
    sequences: Iterable[Sequence],
    predict: PredictionFn,
    evaluator: Evaluator | None = None,
    progress: bool = False,
) -> Evaluator:
    """Feed every frame's prediction (``predict(seq, i) -> {"scores"| "boxes", ...}``) and GT to an Evaluator."""
    ev = evaluator or Evaluator()
    sequences = list(sequences)
    total = sum(len(s) for s in sequences)
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=total, desc="eval", unit="frame")
    for seq in sequences:
        m = sequence_mscr(seq)
        if m is not None:
            ev.set_sequence_scr(seq.name, m)
        for i in range(len(seq)):
            pred = predict(seq, i)
            lab = seq.labels[i]
            gt_mask = seq.load_mask(i) if seq.has_masks else None
            scores = pred.get("scores")
            shape = None
            if gt_mask is None and scores is None:
                shape = tuple(seq.size) if seq.size else seq.load_frame(i).shape
            ref = gt_mask.shape if gt_mask is not None else (tuple(seq.size) if seq.size else None)
            if scores is not None and ref is not None and scores.shape != tuple(ref):
                raise ValueError(
                    f"{pred.get('source', seq.frame_name(i))}: prediction size {scores.shape} != frame size {tuple(ref)}"
                )
            ev.update(
                scores=scores,
                boxes=pred.get("boxes"),
                gt_mask=gt_mask,
                gt_boxes=lab.boxes if lab.has_boxes else None,
                gt_points=lab.points if lab.has_points and gt_mask is None and not lab.has_boxes else None,
                sequence=seq.name,
                frame=seq.frame_ids[i],
                shape=shape,
            )
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    return ev


def evaluate_predictions(
    dataset: SequenceDataset,
    pred: str | Path,
    split: str | None = "test",
    fmt: str = "auto",
    evaluator: Evaluator | None = None,
    progress: bool = False,
) -> Evaluator:
    """Score saved predictions (folder of maps or COCO json) against ``dataset``'s ``split``."""
    seqs = dataset.split(split)
    pred = Path(pred)
    if fmt == "auto":
        fmt = "coco" if pred.suffix == ".json" else "folder"
    if fmt == "folder":
        fn: PredictionFn = FolderPredictions(pred)
    elif fmt == "coco":
        fn = CocoPredictions(pred, seqs)
    else:
        raise ValueError(f"unknown prediction format {fmt!r}; valid: auto, folder, coco")
    return evaluate_sequences(seqs, fn, evaluator, progress)


# --------------------------------------------------------------------------- reports


def _is_fa(key: str) -> bool:
    return key.startswith("fa[") or key.startswith("fa_pix")


def markdown_table(results: dict[str, Any], title: str = "Evaluation") -> str:
    """Markdown table of a results dict: Fa shown x1e-6, others as fractions; conventions listed below."""
    approx = set(results.get("meta", {}).get("approximate", []))

    def rows(res: dict[str, Any]) -> list[str]:
        out = []
        for k, v in res.items():
            if not isinstance(v, (int, float)):
                continue
            if _is_fa(k):
                val, unit = f"{fa_scaled(v):.3f}", "x1e-6"
            elif isinstance(v, int):
                val, unit = str(v), "count"
            else:
                val, unit = f"{v:.6f}", "fraction" if not k.startswith("fa_per_frame") else "per frame"
            out.append(f"| {k}{' (approx.)' if k in approx else ''} | {val} | {unit} |")
        return out

    lines = [f"# {title}", "", "| metric | value | unit |", "|---|---|---|", *rows(results)]
    for g, res in results.get("by_scr", {}).items():
        lines += ["", f"## mSCR group `{g}`", "", "| metric | value | unit |", "|---|---|---|", *rows(res)]
    conv = results.get("meta", {}).get("conventions", {})
    if conv:
        lines += ["", "## Conventions", ""] + [f"- `{k}`: {v}" for k, v in conv.items()]
    return "\n".join(lines) + "\n"


def _to_json(o: Any) -> Any:
    if isinstance(o, dict):
        return {str(k): _to_json(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [_to_json(v) for v in o]
    if isinstance(o, np.ndarray):
        return _to_json(o.tolist())
    if isinstance(o, (np.floating, float)):
        f = float(o)
        return f if np.isfinite(f) else None
    if isinstance(o, np.integer):
        return int(o)
    return o


def _save_fig(fig: Any, path: Path) -> None:
    from mirstd.utils.io import atomic_write_bytes

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=120, bbox_inches="tight")
    atomic_write_bytes(path, buf.getvalue())


def write_plots(curves: dict[str, dict[str, np.ndarray]], out: Path) -> list[Path]:
    """ROC / Pd-Fa / PR plots (matplotlib Agg), written atomically. Returns the written paths."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written = []
    if "roc" in curves:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(curves["roc"]["fpr"], curves["roc"]["tpr"])
        ax.set(xlabel="FPR", ylabel="TPR", title="pixel ROC")
        _save_fig(fig, out / "roc.png")
        plt.close(fig)
        written.append(out / "roc.png")
    pdfa = {k: v for k, v in curves.items() if k.startswith("pdfa")}
    if pdfa:
        fig, ax = plt.subplots(figsize=(5, 4))
        for k, c in pdfa.items():
            fa = np.asarray(c["fa"], float)
            ok = fa > 0
            ax.plot(fa[ok], np.asarray(c["pd"], float)[ok], marker=".", label=k)
        ax.set_xscale("log")
        ax.set(xlabel="Fa (raw fraction of pixels)", ylabel="Pd", title="Pd-Fa")
        ax.legend(fontsize=7)
        _save_fig(fig, out / "pdfa.png")
        plt.close(fig)
        written.append(out / "pdfa.png")
    if "pr" in curves:
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot(curves["pr"]["recall"], np.clip(curves["pr"]["precision"], 0, None))
        ax.set(xlabel="recall", ylabel="precision (101-pt, IoU 0.5)", title="PR", ylim=(0, 1.05))
        _save_fig(fig, out / "pr.png")
        plt.close(fig)
        written.append(out / "pr.png")
    return written


def write_report(
    ev: Evaluator, out: str | Path, title: str = "Evaluation", plots: bool = True
) -> dict[str, Any]:
    """Write ``metrics.json``, ``metrics.md``, plots and (when a PR curve exists) a 101-point result file."""
    from mirstd.metrics.det import write_result_file
    from mirstd.utils.io import atomic_write_text

    out = Path(out)
    res = ev.compute()
    curves = ev.curves()
    payload = {"results": res, "curves": curves}
    atomic_write_text(out / "metrics.json", json.dumps(_to_json(payload), indent=1))
    atomic_write_text(out / "metrics.md", markdown_table(res, title))
    if "pr" in curves:
        write_result_file(out / "pr_101.txt", curves["pr"]["precision"])
    if plots:
        write_plots(curves, out)
    return res
