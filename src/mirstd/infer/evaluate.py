"""The one evaluation runner: training validation, ``mirstd val``, ``mirstd eval`` and the demo all
score through :func:`run_evaluation`, with ground truth from one builder (:func:`eval_dataset`).

A *source* gives the prediction of one item: a model (its clip is built by the same
``ClipDataset`` the training data uses — clip length and padding from the model/checkpoint) or saved
predictions (what ``mirstd predict`` writes: ``scores/<seq>/<frame_id>.png|.npy`` and/or a COCO
results json with ``"<seq>/<frame_id>"`` image ids). So a checkpoint scored by ``mirstd val`` and its
``mirstd predict`` output scored by ``mirstd eval`` meet the same ground truth, frame for frame.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mirstd.data.clips import ClipDataset
from mirstd.data.readers import load_dataset
from mirstd.data.sequence import Sequence, SequenceDataset
from mirstd.infer.predictor import infer_clip, load_model
from mirstd.metrics.evaluator import Evaluator
from mirstd.metrics.report import write_results
from mirstd.models.base import Method
from mirstd.models.registry import create
from mirstd.utils.config import ConfigError
from mirstd.utils.device import resolve_device
from mirstd.utils.io import check_out_dir

# Keys of the val/eval config sections that configure the Evaluator (docs/metrics.md).
EVALUATOR_KEYS = ("dnanet_compat", "centroid_variant", "shooting_variant", "shooting_thresholds", "roc_bins",
                  "niou_empty", "point_distance", "max_dist", "conf", "area_ranges")  # fmt: skip


def _listify(v: Any) -> list[Any] | None:
    if v is None:
        return None
    if isinstance(v, str):
        return [s.strip() for s in v.split(",") if s.strip()]
    return list(v) if isinstance(v, (list, tuple)) else [v]


def build_evaluator(cfg: dict[str, Any] | None = None) -> Evaluator:
    """Evaluator from val/eval keys (``protocols``, ``thr``, ``scr_thresholds`` and the variants);
    keys left at None keep the Evaluator's defaults."""
    cfg = cfg or {}
    kw = {k: cfg[k] for k in EVALUATOR_KEYS if cfg.get(k) is not None}
    scr = _listify(cfg.get("scr_thresholds")) or [3.0]
    return Evaluator(
        protocols=_listify(cfg.get("protocols")),
        scr_thresholds=tuple(float(s) for s in scr),
        threshold=float(cfg.get("thr", 0.5) if cfg.get("thr") is not None else 0.5),
        **kw,
    )


def sequence_mscr(seq: Sequence) -> float | None:
    """mSCR of a sequence: ``meta["mSCR"]`` when given, else the mean of per-frame label SCRs."""
    if seq.meta.get("mSCR") is not None:
        return float(seq.meta["mSCR"])
    vals = [float(np.nanmean(lab.scr)) for lab in seq.labels if np.isfinite(lab.scr).any()]
    return float(np.mean(vals)) if vals else None


def eval_dataset(
    sequences: Iterable[Sequence],
    frames: int,
    pad: str = "repeat",
    channels: int = 1,
    size_divisor: int = 1,
    key_stride: int = 1,
    mask_from: str | None = None,
    mask_radius: int = 0,
    point_box: float | None = None,
    max_keys: int | None = None,
    point_mask: str = "square",
) -> ClipDataset:
    """Full-frame evaluation clips (zero-padded to ``size_divisor``), every ``key_stride``-th key frame;
    ``max_keys``: at most that many key frames per sequence, evenly spaced (long videos in validation)."""
    ds = ClipDataset(
        list(sequences),
        num_frames=int(frames),
        pad=str(pad),
        channels=int(channels),
        pad_to=int(size_divisor) if size_divisor > 1 else None,
        mask_from=mask_from,
        mask_radius=int(mask_radius or 0),
        point_box=point_box,
        point_mask=str(point_mask or "square"),
    )
    if key_stride > 1:  # each clip still has its full history
        ds.index = [(si, i) for si, i in ds.index if i % key_stride == 0]
    if max_keys:
        per: dict[int, list[tuple[int, int]]] = {}
        for si, i in ds.index:
            per.setdefault(si, []).append((si, i))
        ds.index = []
        for items in per.values():
            pick = np.unique(
                np.linspace(0, len(items) - 1, min(int(max_keys), len(items))).round().astype(int)
            )
            ds.index += [items[k] for k in pick]
    return ds


def eval_dataset_for(model: Method, sequences: Iterable[Sequence], cfg: dict[str, Any]) -> ClipDataset:
    """:func:`eval_dataset` with clip length, padding and channels from the model and ``cfg``."""
    frames = cfg.get("frames") or model.num_frames or 1
    return eval_dataset(
        sequences,
        frames=int(frames),
        pad=str(cfg.get("pad") or "repeat"),
        channels=model.in_channels,
        size_divisor=model.size_divisor,
        key_stride=int(cfg.get("key_stride") or 1),
        mask_from=cfg.get("mask_from"),
        mask_radius=int(cfg.get("mask_radius") or 0),
        point_box=cfg.get("point_box"),
        max_keys=cfg.get("max_keys"),
        point_mask=str(cfg.get("point_mask") or "square"),
    )


def _np(x: Any) -> np.ndarray | None:
    if x is None:
        return None
    return x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)


def update_frame(ev: Evaluator, pred: dict[str, Any], sample: dict[str, Any], i: int = 0) -> None:
    """Add one item (prediction + the ground truth of a sample dict) to the Evaluator: the one GT path."""
    meta = sample.get("meta") or {}
    # Score the un-padded frame: padded borders must not count in Fa's pixel total.
    oh, ow = (int(v) for v in (meta.get("orig_size") or sample["mask"].shape[-2:]))
    scores = pred.get("scores")
    if scores is not None:
        scores = np.asarray(scores)
        if scores.shape[0] < oh or scores.shape[1] < ow:
            where = pred.get("source") or f"{meta.get('sequence')}/{meta.get('frame')}"
            raise ValueError(f"{where}: prediction size {scores.shape} != frame size {(oh, ow)}")
        scores = scores[:oh, :ow]
    ev.update(
        scores=scores,
        boxes=pred.get("boxes"),
        gt_mask=_np(sample["mask"][0, :oh, :ow]) if bool(sample.get("has_mask")) else None,
        shape=(oh, ow),
        gt_boxes=_np(sample.get("boxes")) if meta.get("has_boxes", True) else None,
        gt_points=_np(sample.get("points")),
        sequence=str(meta.get("sequence", "seq")),
        frame=int(meta.get("index", meta.get("frame", i))),
        scr=meta.get("mscr"),
        image=_np(sample["clip"][0, -1, :oh, :ow]) if "clip" in sample else None,
    )


class SavedPredictions:
    """Predictions written by ``mirstd predict`` (or by hand), looked up by (sequence, frame index).

    ``path`` is a predict output folder (``scores/`` and/or ``predictions.json``), a bare folder of
    ``<seq>/<frame_id>.png|.npy`` score maps, or a COCO results json. When score maps exist they are
    used (as ``mirstd val`` uses a mask model's maps); boxes come from the json only without them.
    """

    needs_clip = False

    def __init__(self, path: str | Path, sequences: Iterable[Sequence], fmt: str = "auto") -> None:
        path = Path(path)
        if not path.exists():
            raise FileNotFoundError(f"predictions {path} do not exist")
        self.scores_root: Path | None = None
        self.boxes: dict[tuple[str, int], list[list[float]]] | None = None
        if fmt not in ("auto", "folder", "coco"):
            raise ConfigError(f"format={fmt!r}; valid: auto, folder, coco")
        if path.is_file() or fmt == "coco":
            self._read_coco(path if path.is_file() else path / "predictions.json", sequences)
        elif (path / "scores").is_dir():
            self.scores_root = path / "scores"
        elif (path / "predictions.json").is_file() and fmt == "auto":
            self._read_coco(path / "predictions.json", sequences)
        else:
            self.scores_root = path

    def _read_coco(self, path: Path, sequences: Iterable[Sequence]) -> None:
        try:
            dets = json.loads(path.read_text())
        except (json.JSONDecodeError, OSError) as e:
            raise ValueError(f"{path}: not a readable JSON file ({e})") from None
        if isinstance(dets, dict) and "annotations" in dets:
            dets = dets["annotations"]
        if not isinstance(dets, list):
            raise ValueError(f"{path}: expected a list of detections")
        ids = coco_image_ids(sequences)
        self.boxes = {}
        self.source = str(path)
        for k, d in enumerate(dets):
            try:
                key = ids[d["image_id"]]
                x, y, w, h = (float(v) for v in d["bbox"])
                s = float(d["score"])
            except (KeyError, TypeError, ValueError) as e:
                raise ValueError(
                    f"{path}: detection {k} has an unknown image_id or a bad/missing key ({e})"
                ) from None
            if not np.isfinite([x, y, w, h, s]).all():
                raise ValueError(f"{path}: detection {k} has NaN or inf values")
            if w < 0 or h < 0:
                raise ValueError(f"{path}: detection {k} has a negative width or height")
            if not 0.0 <= s <= 1.0:
                raise ValueError(f"{path}: detection {k} has score {s:g} outside [0, 1]")
            self.boxes.setdefault(key, []).append([x, y, x + w, y + h, s])

    def __call__(self, seq: Sequence, i: int) -> dict[str, Any]:
        if self.scores_root is not None:
            fid = str(seq.frame_ids[i])
            return {
                "scores": read_score_map(self.scores_root, seq, i),
                "source": str(score_file(self.scores_root, seq.name, fid, ".png")),
            }
        b = np.asarray((self.boxes or {}).get((seq.name, i), []), np.float64).reshape(-1, 5)
        return {"boxes": b}


def score_file(root: Path, seq_name: str, frame_id: str, ext: str) -> Path:
    """``<root>/<seq>/<frame_id><ext>``, the layout predict writes and eval reads."""
    return root / seq_name / f"{frame_id}{ext}"


def read_score_map(root: Path, seq: Sequence, i: int) -> np.ndarray:
    fid = str(seq.frame_ids[i])
    for ext in (".npy", ".png"):
        p = score_file(root, seq.name, fid, ext)
        if p.is_file():
            a = read_prob_file(p)
            if seq.size and a.shape != tuple(seq.size):
                raise ValueError(f"{p}: prediction size {a.shape} != frame size {tuple(seq.size)}")
            return a
    raise FileNotFoundError(
        f"missing prediction for frame {seq.frame_name(i)}: {score_file(root, seq.name, fid, '.png')} (or .npy)"
    )


def read_prob_file(path: Path) -> np.ndarray:
    """Probability map from a PNG (8/16-bit) or .npy file; errors name the file."""
    if path.suffix == ".npy":
        try:
            a = np.asarray(np.load(path, allow_pickle=False), np.float32)
        except (ValueError, OSError) as e:
            raise ValueError(f"{path}: cannot read ({e})") from None
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
    """Image ids of COCO results: ``"<seq>/<frame_id>"`` and 1-based integers -> (sequence, index)."""
    out: dict[Any, tuple[str, int]] = {}
    n = 0
    for seq in sequences:
        for i in range(len(seq)):
            n += 1
            out[seq.frame_name(i)] = out[n] = (seq.name, i)
    return out


def run_evaluation(
    source: Method | Callable[[Sequence, int], dict[str, Any]],
    dataset: Any,
    evaluator: Evaluator | None = None,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "val",
    by_part: dict[Any, Evaluator] | None = None,
) -> Evaluator:
    """Score ``source`` on ``dataset`` (an :func:`eval_dataset` or any dataset of contract sample
    dicts with full frames) into an Evaluator, which is returned for ``compute()`` and ``curves()``.

    ``source`` is a model (each item's clip through :func:`infer_clip`) or a saved-prediction lookup
    ``(sequence, frame index) -> {"scores" | "boxes"}`` (then only the ground truth is read).
    ``by_part``: evaluators keyed by a merged dataset's source index (``sequence.meta["part"]``);
    each frame is also scored into its source's evaluator (filled in place), at no extra inference.
    """
    ev = evaluator if evaluator is not None else Evaluator()
    seqs = getattr(dataset, "sequences", []) or []

    def sinks(seq: Sequence) -> list[Evaluator]:  # the pooled evaluator, and the sequence's source's
        part = (by_part or {}).get(seq.meta.get("part", 0))
        return [ev] if part is None else [ev, part]

    for seq in seqs:
        m = sequence_mscr(seq)
        if m is not None:
            for e in sinks(seq):
                e.set_sequence_scr(seq.name, m)
    is_model = isinstance(source, torch.nn.Module)
    if is_model:
        source.eval()
    it: Iterable[int] = range(len(dataset))
    if progress:
        from tqdm import tqdm

        it = tqdm(it, desc=desc, leave=False, unit="frame")
    with torch.no_grad():
        for idx in it:
            if is_model:
                sample = dataset[idx]
                pred = infer_clip(source, sample["clip"][None].to(device))[0]
            else:
                sample = dataset.target(idx)
                si, i = dataset.index[idx]
                pred = source(dataset.sequences[si], i)
            for e in sinks(seqs[dataset.index[idx][0]]) if by_part else [ev]:
                update_frame(e, pred, sample, idx)
    return ev


def flat_numbers(results: dict[str, Any]) -> dict[str, float]:
    return {
        k: float(v) for k, v in results.items() if isinstance(v, (int, float)) and not isinstance(v, bool)
    }


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
            raise ConfigError(f"metric={name!r} is not among the evaluator's results: {sorted(low.values())}")
        key = cands[0]
    return float(results[key])


def _sequences(data: Any, split: str | None) -> tuple[list[Sequence], str]:
    ds = (
        data
        if isinstance(data, SequenceDataset)
        else load_dataset(data if isinstance(data, (list, tuple)) else str(data))
    )
    return ds.split(split), getattr(ds, "name", str(data))


def validate(
    weights: str | Path | None = None,
    model: str | None = None,
    model_args: dict[str, Any] | None = None,
    data: Any = None,
    split: str = "val",
    out: str | Path | None = None,
    device: str | None = None,
    progress: bool = True,
    plots: bool = True,
    **cfg: Any,
) -> dict[str, Any]:
    """``mirstd val``: score a checkpoint, or a parameter-free registered method (``model="tophat"``),
    on ``split``. ``data`` defaults to the data the checkpoint was trained on; ``cfg`` holds the
    clip (frames, pad, key_stride, mask_from, ...) and Evaluator keys of the ``val`` config section.
    Writes ``metrics_<split>.json`` / ``.md`` (and plots) to ``out`` — default: the checkpoint's run
    folder, or ``runs/val/<model>``. A non-empty ``out`` given here is refused unless ``exist_ok``."""
    if out:
        check_out_dir(Path(out), bool(cfg.get("exist_ok")), "out")
    dev = resolve_device(device)
    if (weights is None) == (model is None):
        raise ConfigError(
            "mirstd val needs exactly one of weights=PATH (a checkpoint) or model=NAME (a classical method)"
        )
    if weights is not None:
        net, train_cfg = load_model(weights, dev)
        name = str(train_cfg.get("model") or type(net).__name__)
    else:
        net = create(str(model), **(model_args or {})).to(dev).eval()
        if net.trainable:
            raise ConfigError(
                f"model={model!r} has trainable parameters: validate a checkpoint with weights=PATH"
            )
        train_cfg, name = {}, str(model)
    data = data if data is not None else train_cfg.get("data")
    if data is None:
        raise ConfigError("data= is required (the checkpoint does not name its training data)")
    clip_cfg = {
        k: (cfg.get(k) if cfg.get(k) is not None else train_cfg.get(k))
        for k in ("frames", "pad", "mask_from", "mask_radius", "point_box", "point_mask")
    }
    clip_cfg["key_stride"] = cfg.get("key_stride", 1)
    seqs, data_name = _sequences(data, split)
    ds = eval_dataset_for(net, seqs, clip_cfg)
    ev = run_evaluation(net, ds, build_evaluator(cfg), dev, progress=progress, desc=f"val {split}")
    if out:
        out_dir = Path(out)
    elif weights is not None:
        out_dir = Path(weights).resolve().parent.parent
    else:
        out_dir = Path("runs") / "val" / name
    header = {"weights": str(weights) if weights else None, "model": name, "data": str(data), "split": split}
    return write_results(
        ev, out_dir, f"metrics_{split}", header, title=f"{name} on {data_name}:{split}", plots=plots
    )


def evaluate_saved(
    pred: str | Path,
    data: Any,
    split: str | None = "test",
    format: str = "auto",
    out: str | Path | None = None,
    progress: bool = True,
    plots: bool = True,
    **cfg: Any,
) -> dict[str, Any]:
    """``mirstd eval``: score saved predictions against ``data``'s ``split`` through the same runner
    and ground truth as ``mirstd val``. Writes ``metrics_<split>.json`` / ``.md`` to ``out``
    (default ``<pred>_eval``). A non-empty ``out`` given here is refused unless ``exist_ok``."""
    if out:
        check_out_dir(Path(out), bool(cfg.get("exist_ok")), "out")
    if cfg.get("thr") is not None and not np.isfinite(float(cfg["thr"])):
        raise ConfigError(f"thr={cfg['thr']!r} is not a finite number")
    seqs, data_name = _sequences(data, split)
    source = SavedPredictions(pred, seqs, format)
    ds = eval_dataset(
        seqs,
        frames=1,
        key_stride=int(cfg.get("key_stride") or 1),
        mask_from=cfg.get("mask_from"),
        mask_radius=int(cfg.get("mask_radius") or 0),
        point_box=cfg.get("point_box"),
    )
    ev = run_evaluation(source, ds, build_evaluator(cfg), progress=progress, desc="eval")
    p = Path(pred)
    out_dir = Path(out) if out else p.with_name(p.stem + "_eval")
    header = {"pred": str(pred), "data": str(data), "split": split}
    return write_results(
        ev, out_dir, f"metrics_{split}", header, title=f"{p.name} on {data_name}:{split}", plots=plots
    )
