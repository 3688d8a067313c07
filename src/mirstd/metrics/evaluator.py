"""The uniform evaluator used by ``mirstd eval``, validation during training and the demo.

``Evaluator.update`` takes one frame (prediction + ground truth), computes each protocol's per-frame
sufficient statistics (a few counters) and adds them to that sequence's state; ``compute`` merges the
states over all sequences (and over each mSCR group) and finalises. Nothing per-pixel is kept, so a
40,000-frame test set never sits in memory.

Default suite, chosen per frame by the inputs seen (spec ``metrics.md`` §13):

- scores + GT mask: ``iou`` (IoU, nIoU, pixAcc, DR), ``pdfa_centroid``, ``pdfa_shooting``, ``roc_pixel``;
- boxes + GT mask: ``iou`` and ``pdfa_centroid`` on the boxes filled as a mask (``box_as_mask``,
  approximate), ``coco`` with GT boxes from the mask components, ``point``;
- boxes or scores + GT boxes (no mask): ``coco`` (score maps converted to scored boxes) and ``point``;
- points only: ``point``.

Metrics computed from converted inputs (boxes filled as masks, box centres) are listed in
``results["meta"]["approximate"]``.
"""

from __future__ import annotations

from collections.abc import Iterable
from collections.abc import Sequence as _Seq
from typing import Any

import numpy as np

from mirstd.metrics._base import FrameData, Metric, add_state
from mirstd.metrics.classical_figures import ClassicalFigures
from mirstd.metrics.convert import boxes_to_scores, mask_to_boxes, scores_to_boxes
from mirstd.metrics.det import DetMetric
from mirstd.metrics.points import PointCurve, PointPdFa
from mirstd.metrics.seg import (
    CENTROID_VARIANTS,
    SHOOTING_VARIANTS,
    IoUMetric,
    PdFaCentroid,
    PdFaCurve,
    PdFaShooting,
    RocPixel,
)

SEG_PROTOCOLS = ("iou", "pdfa_centroid", "pdfa_shooting", "roc_pixel", "pdfa_curve")
PROTOCOLS = (*SEG_PROTOCOLS, "point", "point_curve", "coco", "classical_figures")
_VARIANTS = {
    "pdfa_centroid": CENTROID_VARIANTS,
    "pdfa_shooting": SHOOTING_VARIANTS,
    "pdfa_curve": CENTROID_VARIANTS,
}
_ALIASES = {"niou": "iou", "centroid": "pdfa_centroid", "shooting": "pdfa_shooting", "roc": "roc_pixel",
            "det": "coco", "ap": "coco", "lab_prf": "coco", "points": "point"}  # fmt: skip


def valid_protocols() -> list[str]:
    """Every accepted protocol name, with variants (``name:variant``)."""
    out = []
    for p in PROTOCOLS:
        out.append(p)
        out += [f"{p}:{v}" for v in _VARIANTS.get(p, ())]
    return out


def parse_protocol(spec: str) -> tuple[str, str | None]:
    """``"pdfa_shooting:dtum_faithful"`` -> (``"pdfa_shooting"``, ``"dtum_faithful"``). Unknown names list the valid ones."""
    name, _, variant = str(spec).partition(":")
    name = _ALIASES.get(name, name)
    if name not in PROTOCOLS or (variant and variant not in _VARIANTS.get(name, ())):
        raise ValueError(f"unknown metric convention {spec!r}; valid: {', '.join(valid_protocols())}")
    return name, (variant or None)


def fa_scaled(fa: float, scale: float = 1e-6) -> float:
    """Fa as quoted in papers: ``fa_scaled(2.5e-5) == 25.0`` (x1e-6); DTUM quotes x1e-5 (``scale=1e-5``)."""
    return float(fa) / scale


def scr_group(value: float | str, thresholds: _Seq[float] = (3.0,)) -> str | None:
    """Group label of an mSCR value: ``low``/``high`` for one threshold (low <=> mSCR < t); with several
    thresholds ``scr<t1``, ``t1<=scr<t2``, ..., ``scr>=tk``. Strings pass through; NaN -> None."""
    if isinstance(value, str):
        return value
    v = float(value)
    if not np.isfinite(v):
        return None
    t = sorted(float(x) for x in thresholds)
    k = int(np.searchsorted(t, v, side="right"))
    if len(t) == 1:
        return "low" if k == 0 else "high"
    if k == 0:
        return f"scr<{t[0]:g}"
    if k == len(t):
        return f"scr>={t[-1]:g}"
    return f"{t[k - 1]:g}<=scr<{t[k]:g}"


def _retag(key: str, suffix: str) -> str:
    # "iou" -> "iou[box_as_mask]"; "pd[centroid]" -> "pd[centroid:box_as_mask]"
    return f"{key[:-1]}:{suffix}]" if key.endswith("]") else f"{key}[{suffix}]"


class Evaluator:
    """Accumulate every requested convention frame by frame; ``compute()`` at the end.

    Args:
        protocols: None (default suite for the inputs seen) or names from :func:`valid_protocols`,
            e.g. ``["iou", "pdfa_centroid:area_quirk", "pdfa_shooting:dtum_faithful", "coco"]``.
        scr_thresholds: mSCR split points for ``by_scr`` (``(3.0,)`` -> low < 3 <= high).
        threshold: probability threshold of the headline numbers (``>`` for IoU/centroid, ``>=`` for
            shooting rules, ``>=`` on box scores).
        dnanet_compat: use the ``area_quirk`` variant for the default centroid protocol.
        options: per-protocol keyword overrides, e.g. ``options={"pdfa_shooting": {"thresholds": "train"}}``.
    """

    def __init__(
        self,
        protocols: Iterable[str] | None = None,
        scr_thresholds: _Seq[float] = (3.0,),
        threshold: float = 0.5,
        *,
        centroid_variant: str = "basicirstd",
        dnanet_compat: bool = False,
        shooting_variant: str = "clipped",
        shooting_thresholds: str | _Seq[float] = "final",
        roc_bins: int = 200,
        niou_empty: str = "zero",
        max_dist: float = 3.0,
        point_distance: float = 3.0,
        conf: float = 0.5,
        area_ranges: str | dict[str, list[float]] | None = "irstd",
        curve_thresholds: str | _Seq[float] | None = None,
        options: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.threshold = float(threshold)
        self.scr_thresholds = tuple(float(t) for t in scr_thresholds)
        centroid_variant = "area_quirk" if dnanet_compat else centroid_variant
        self._defaults: dict[str, dict[str, Any]] = {
            "iou": {"threshold": threshold, "empty_policy": niou_empty},
            "pdfa_centroid": {"threshold": threshold, "variant": centroid_variant, "max_dist": max_dist},
            "pdfa_shooting": {
                "threshold": threshold,
                "variant": shooting_variant,
                "thresholds": shooting_thresholds,
            },
            "roc_pixel": {"bins": roc_bins},
            "pdfa_curve": {"thresholds": curve_thresholds, "variant": centroid_variant, "max_dist": max_dist},
            "point": {"threshold": threshold, "distance": point_distance},
            "point_curve": {"distance": point_distance, "box_margin": 2.0},
            "coco": {"area_ranges": area_ranges, "conf": conf},
            "classical_figures": {"margin": 20, "rescale": True},
        }
        for name, kw in (options or {}).items():
            self._defaults[parse_protocol(name)[0]].update(kw)
        self.protocols = None if protocols is None else [parse_protocol(p) for p in protocols]
        self._metrics: dict[str, tuple[Metric, str]] = {}
        self._states: dict[str, dict[str, dict[str, Any]]] = {}
        self._seq_scr: dict[str, float | str] = {}
        self._frames: dict[str, int] = {}
        # Validate option values now (unknown variants, threshold lists) rather than at the first frame.
        for name, variant in self.protocols or []:
            self._metric(name, variant, "direct")

    # ------------------------------------------------------------------ protocol bookkeeping
    def _metric(self, name: str, variant: str | None, mode: str) -> str:
        key = name + (f":{variant}" if variant else "") + ("" if mode == "direct" else f"@{mode}")
        if key not in self._metrics:
            kw = dict(self._defaults[name])
            if variant:
                kw["variant"] = variant
            cls = {"iou": IoUMetric, "pdfa_centroid": PdFaCentroid, "pdfa_shooting": PdFaShooting,
                   "roc_pixel": RocPixel, "pdfa_curve": PdFaCurve, "point": PointPdFa, "point_curve": PointCurve, "coco": DetMetric,
                   "classical_figures": ClassicalFigures}[name]  # fmt: skip
            self._metrics[key] = (cls(**kw), mode)
        return key

    def _plan(self, fd: FrameData, where: str) -> list[str]:
        """Metric keys to update for this frame."""
        has_s, has_b = fd.scores is not None, fd.boxes is not None
        has_m = fd.gt_mask is not None
        has_gt_obj = has_m or fd.gt_boxes is not None or fd.gt_points is not None
        keys: list[str] = []
        if self.protocols is None:
            if has_m and has_s:
                keys += [
                    self._metric(n, None, "direct")
                    for n in ("iou", "pdfa_centroid", "pdfa_shooting", "roc_pixel")
                ]
            elif has_m and has_b:
                keys += [self._metric(n, None, "box_as_mask") for n in ("iou", "pdfa_centroid")]
            if (has_b or (has_s and not has_m)) and (has_m or fd.gt_boxes is not None):
                keys.append(self._metric("coco", None, "direct"))
            if (has_b or (has_s and not has_m)) and has_gt_obj:
                keys.append(self._metric("point", None, "box_centre" if has_b else "direct"))
            if (has_b or has_s) and has_gt_obj:  # Pd at a false-alarm budget per frame: every model
                keys.append(self._metric("point_curve", None, "direct"))
            return keys
        for name, variant in self.protocols:
            if name in SEG_PROTOCOLS:
                if not has_m or not (has_s or has_b):
                    raise ValueError(f"{where}: protocol {name!r} needs a GT mask and scores (or boxes)")
                keys.append(self._metric(name, variant, "direct" if has_s else "box_as_mask"))
            elif name == "classical_figures":
                if not has_m or not has_s or getattr(fd, "image", None) is None:
                    raise ValueError(
                        f"{where}: protocol 'classical_figures' needs the input frame (image=), scores and a GT mask"
                    )
                keys.append(self._metric(name, None, "direct"))
            elif name == "coco":
                if not (has_s or has_b) or not (has_m or fd.gt_boxes is not None):
                    raise ValueError(
                        f"{where}: protocol 'coco' needs boxes or scores and GT boxes or a GT mask"
                    )
                keys.append(self._metric(name, None, "direct"))
            else:
                if not (has_s or has_b) or not has_gt_obj:
                    raise ValueError(
                        f"{where}: protocol 'point' needs predictions and GT points, boxes or mask"
                    )
                keys.append(self._metric(name, None, "box_centre" if has_b and name == "point" else "direct"))
        return keys

    def _for_mode(self, fd: FrameData, metric: Metric, mode: str) -> FrameData:
        if mode == "box_as_mask":
            if "bam" not in fd._cache:
                fd._cache["bam"] = FrameData(scores=boxes_to_scores(fd.boxes, fd.shape), gt_mask=fd.gt_mask)
            return fd._cache["bam"]
        if isinstance(metric, DetMetric) and (fd.boxes is None or fd.gt_boxes is None):
            if "det" not in fd._cache:
                # Mask model -> boxes (spec §10): components of p > tau, score = max probability.
                boxes = fd.boxes if fd.boxes is not None else scores_to_boxes(fd.scores, self.threshold)
                gtb = fd.gt_boxes if fd.gt_boxes is not None else mask_to_boxes(fd.gt_mask)
                fd._cache["det"] = FrameData(boxes=boxes, gt_boxes=gtb, shape=fd.shape)
            return fd._cache["det"]
        return fd

    # ------------------------------------------------------------------ public API
    def set_sequence_scr(self, sequence: str, mscr: float | str) -> None:
        """Declare a sequence's mSCR (or group label); may be called before or after its frames."""
        self._seq_scr[sequence] = mscr

    def update(
        self,
        scores: np.ndarray | None = None,
        *,
        boxes: np.ndarray | None = None,
        gt_mask: np.ndarray | None = None,
        gt_boxes: np.ndarray | None = None,
        gt_points: np.ndarray | None = None,
        sequence: str = "",
        frame: int | str = 0,
        scr: float | str | None = None,
        shape: tuple[int, int] | None = None,
        image: np.ndarray | None = None,
    ) -> None:
        """Add one frame. ``scores``: HxW probabilities in [0, 1]; ``boxes``: (N, >=5) edge box + score;
        ``gt_mask``: HxW 0/1 or instance ids; ``gt_boxes``: (N, 4) edge boxes; ``gt_points``: (N, 2) (x, y);
        ``scr``: the sequence's mSCR or group label; ``shape``: (H, W) when neither scores nor mask is given; ``image``: the input key frame (HxW),
        needed only by ``classical_figures``."""
        where = f"frame {sequence}/{frame}"
        if scores is not None:
            scores = np.asarray(scores)
            if scores.ndim != 2:
                raise ValueError(f"{where}: scores must be HxW, got shape {scores.shape}")
            lo, hi = scores.min(), scores.max()
            if not (lo >= 0 and hi <= 1):  # NaN fails both comparisons
                bad = "NaN" if np.isnan(lo) or np.isnan(hi) else f"values outside [0, 1] ({lo:g}..{hi:g})"
                raise ValueError(f"{where}: scores contain {bad}")
        if gt_mask is not None:
            gt_mask = np.asarray(gt_mask)
            if scores is not None and gt_mask.shape != scores.shape:
                raise ValueError(f"{where}: prediction size {scores.shape} != GT mask size {gt_mask.shape}")
        if boxes is not None:
            boxes = np.asarray(boxes, np.float64)
            boxes = boxes.reshape(-1, boxes.shape[-1] if boxes.size else 5)
            if boxes.shape[1] < 5:
                raise ValueError(f"{where}: boxes must be (N, 5+) edge box + score, got {boxes.shape}")
            if not np.isfinite(boxes[:, :5]).all():
                raise ValueError(f"{where}: boxes contain NaN or inf")
        if gt_boxes is not None:
            gt_boxes = np.asarray(gt_boxes, np.float64).reshape(-1, 4)
        if gt_points is not None:
            gt_points = np.asarray(gt_points, np.float64).reshape(-1, 2)
        fd = FrameData(scores, boxes, gt_mask, gt_boxes, gt_points, shape)
        fd.image = None if image is None else np.asarray(image, np.float64)
        if fd.shape is None:
            raise ValueError(f"{where}: frame size unknown; pass shape=(H, W)")
        if scr is not None:
            self._seq_scr[sequence] = scr
        states = self._states.setdefault(sequence, {})
        for key in self._plan(fd, where):
            metric, mode = self._metrics[key]
            add_state(states.setdefault(key, {}), metric.frame(self._for_mode(fd, metric, mode)))
        self._frames[sequence] = self._frames.get(sequence, 0) + 1

    def reset(self) -> None:
        self._states.clear()
        self._frames.clear()
        self._seq_scr.clear()

    def _merged(self, sequences: Iterable[str]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        for s in sequences:
            for key, st in self._states.get(s, {}).items():
                # Copy arrays/lists on first use so the per-sequence states stay untouched.
                tgt = out.setdefault(key, {})
                for k, v in st.items():
                    if k not in tgt:
                        tgt[k] = list(v) if isinstance(v, list) else (np.array(v) if np.ndim(v) else v)
                    else:
                        add_state(tgt, {k: v})
        return out

    def _finalise(
        self, merged: dict[str, dict[str, Any]], sequences: list[str]
    ) -> tuple[dict[str, Any], list[str]]:
        res: dict[str, Any] = {}
        approx: list[str] = []
        for key, st in merged.items():
            metric, mode = self._metrics[key]
            for k, v in metric.compute(st).items():
                name = k if mode in ("direct", "box_centre") else _retag(k, mode)
                res[name] = v
                if mode != "direct":
                    approx.append(name)
        res["frames"] = sum(self._frames.get(s, 0) for s in sequences)
        res["sequences"] = len(sequences)
        return res, approx

    def groups(self) -> dict[str, list[str]]:
        """mSCR group -> sequences (only sequences whose mSCR or label is known)."""
        out: dict[str, list[str]] = {}
        for s in self._states:
            if s in self._seq_scr:
                g = scr_group(self._seq_scr[s], self.scr_thresholds)
                if g is not None:
                    out.setdefault(g, []).append(s)
        return out

    def compute(self) -> dict[str, Any]:
        """Flat dict of convention-tagged numbers (Fa as raw fractions), plus ``by_scr`` groups and ``meta``."""
        seqs = list(self._states)
        res, approx = self._finalise(self._merged(seqs), seqs)
        groups = self.groups()
        if groups:
            res["by_scr"] = {g: self._finalise(self._merged(ss), ss)[0] for g, ss in sorted(groups.items())}
        res["meta"] = {
            "conventions": {
                k: m.describe() + (f" [from {mode}, approximate]" if mode != "direct" else "")
                for k, (m, mode) in self._metrics.items()
            },  # fmt: skip
            "approximate": approx,
            "scr_thresholds": list(self.scr_thresholds),
            "mscr": {s: v for s, v in self._seq_scr.items() if s in self._states},
        }
        return res

    def curves(self, group: str | None = None) -> dict[str, dict[str, np.ndarray]]:
        """ROC (``roc``), Pd-Fa (``pdfa[...]``) and PR (``pr``) arrays for plotting; ``group`` = an mSCR group."""
        seqs = self.groups().get(group, []) if group is not None else list(self._states)
        out: dict[str, dict[str, np.ndarray]] = {}
        for key, st in self._merged(seqs).items():
            metric, mode = self._metrics[key]
            for name, c in metric.curves(st).items():
                out[name if mode in ("direct", "box_centre") else _retag(name, mode)] = c
        return out
