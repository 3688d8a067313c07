"""Box metrics: COCO AP through faster-coco-eval, the UESTC lab's P/R/F1, P/R/F1 at a fixed
confidence, PR curves, and the UESTC 101-point result-file format (spec ``metrics.md`` §9).

COCO AP (``coco``): iouType bbox, IoU 0.50:0.05:0.95, 101 recall points, maxDets 100, boxes xywh
without +1. ``ap50`` = mean of the 101 interpolated precisions at IoU 0.5 (stats[1]); ``ap`` =
AP@[.5:.95] (stats[0]). Tiny-object area preset ``irstd`` (pixel areas, inclusive bounds):
point [0, 9.5], tiny [9.5, 36.5], small [36.5, 81.5], larger [81.5, 1e10].

Lab P/R/F1 (``lab_prf``, UESTC-nnLab): with p the 101-point precision at IoU 0.5 (area all,
maxDets 100) and R the recall there, P = mean(p[0 : int(100 R)]) and F1 = 2PR/(P+R), evaluated only
on frames with at least one GT box.

``prf_conf``: detections with score >= conf are matched greedily (descending score, highest IoU
first, IoU >= 0.5, one-to-one per frame); P = TP/(TP+FP), R = TP/(TP+FN), F1 = 2PR/(P+R).
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence as _Seq
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.metrics._base import FrameData, Metric, safe_div
from mirstd.utils.io import atomic_write_text

IRSTD_AREA_RANGES: dict[str, list[float]] = {
    "point": [0.0, 9.5],
    "tiny": [9.5, 36.5],
    "small": [36.5, 81.5],
    "larger": [81.5, 1e10],
}
AREA_PRESETS: dict[str, dict[str, list[float]] | None] = {"irstd": IRSTD_AREA_RANGES, "coco": None}
RECALL_GRID = np.linspace(0.0, 1.0, 101)


def _xywh(boxes: np.ndarray) -> np.ndarray:
    b = np.asarray(boxes, np.float64)
    return (
        np.stack([b[:, 0], b[:, 1], b[:, 2] - b[:, 0], b[:, 3] - b[:, 1]], axis=1)
        if len(b)
        else np.zeros((0, 4))
    )


def coco_eval(
    frames: _Seq[tuple[np.ndarray, np.ndarray, tuple[int, int]]],
    area_ranges: dict[str, list[float]] | None = None,
    only_gt_frames: bool = False,
) -> Any:
    """Run ``COCOeval_faster`` (bbox) on per-frame ``(gt edge boxes (N,4), detections (M,>=5), (H, W))``.

    Single class (id 1). Returns the evaluated object (``.stats``, ``.eval["precision"]``, ...), or None
    when no frame has a GT box.
    """
    from faster_coco_eval import COCO, COCOeval_faster

    images, anns, dets = [], [], []
    for img_id, (gt, dt, (h, w)) in enumerate(frames, start=1):
        gt = np.asarray(gt, np.float64).reshape(-1, 4)
        if only_gt_frames and len(gt) == 0:
            continue
        images.append({"id": img_id, "width": int(w), "height": int(h)})
        for b in _xywh(gt):
            anns.append({"id": len(anns) + 1, "image_id": img_id, "category_id": 1, "bbox": b.tolist(),
                         "area": float(b[2] * b[3]), "iscrowd": 0})  # fmt: skip
        dt = np.asarray(dt, np.float64)
        dt = dt.reshape(-1, dt.shape[-1]) if dt.size else np.zeros((0, 5))
        for b, s in zip(_xywh(dt[:, :4]), dt[:, 4]):
            dets.append({"image_id": img_id, "category_id": 1, "bbox": b.tolist(), "score": float(s)})
    if not anns:
        return None
    if not dets:
        # No detection at all: one zero-score false positive keeps COCOeval running; AP is 0 either way.
        dets.append(
            {"image_id": images[0]["id"], "category_id": 1, "bbox": [-100.0, -100.0, 1.0, 1.0], "score": 0.0}
        )
    gt_coco = COCO({"images": images, "annotations": anns, "categories": [{"id": 1, "name": "target"}]})
    dt_coco = gt_coco.loadRes(dets)
    ev = COCOeval_faster(gt_coco, dt_coco, "bbox", ranges=area_ranges)
    with contextlib.redirect_stdout(io.StringIO()):
        ev.evaluate()
        ev.accumulate()
        ev.summarize()
    return ev


def precision_vector(ev: Any, iou_index: int = 0, area_index: int = 0) -> np.ndarray:
    """101-point interpolated precision at IoU index (0 = 0.5), class 0, area index, maxDets 100."""
    return np.asarray(ev.eval["precision"][iou_index, :, 0, area_index, -1], np.float64)


def lab_prf(p: np.ndarray, recall: float) -> tuple[float, float, float]:
    """UESTC lab P/R/F1: P = mean(p[: int(100 R)]), F1 = 2PR/(P+R). ``int`` truncation is faithful."""
    n = int(100 * recall)
    P = float(np.mean(p[:n])) if n > 0 else 0.0
    return P, float(recall), (2 * P * recall / (P + recall) if P + recall > 0 else 0.0)


def box_iou(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU matrix of edge boxes (no +1), (len(a), len(b))."""
    a, b = np.asarray(a, np.float64).reshape(-1, 4), np.asarray(b, np.float64).reshape(-1, 4)
    iw = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    ih = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = iw * ih
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.where(union > 0, union, 1), 0.0)


def match_boxes(gt: np.ndarray, dt: np.ndarray, iou_thr: float = 0.5) -> tuple[int, int, int]:
    """(TP, FP, FN) of one frame: detections in descending score take the best unmatched GT with IoU >= thr."""
    gt = np.asarray(gt, np.float64).reshape(-1, 4)
    dt = np.asarray(dt, np.float64)
    dt = dt.reshape(-1, dt.shape[-1]) if dt.size else np.zeros((0, 5))
    if len(dt) == 0 or len(gt) == 0:
        return 0, len(dt), len(gt)
    dt = dt[np.argsort(-dt[:, 4], kind="stable")]
    iou = box_iou(dt[:, :4], gt)
    free = np.ones(len(gt), bool)
    tp = 0
    for i in range(len(dt)):
        cand = np.where(free, iou[i], -1.0)
        j = int(np.argmax(cand))
        if cand[j] >= iou_thr:
            free[j] = False
            tp += 1
    return tp, len(dt) - tp, len(gt) - tp


# --------------------------------------------------------------------------- result files


def write_result_file(path: str | Path, p: np.ndarray) -> Path:
    """Write a UESTC result file: one line of 101 tab-separated precisions (atomic)."""
    p = np.asarray(p, np.float64).reshape(-1)
    if p.size != 101:
        raise ValueError(f"a result file holds 101 precisions, got {p.size}")
    return atomic_write_text(path, "\t".join(repr(float(v)) for v in p) + "\n")


def read_result_file(path: str | Path) -> dict[str, Any]:
    """Read a UESTC 101-point result file.

    Returns ``{"precision": (101,), "recall_grid": (101,), "ap50": mean(p), "recall_bin": last/100,
    "p": mean(p[:last]), "f1": ...}`` where ``last`` is the index of the last non-zero precision (R is
    recoverable only to its 0.01 bin).
    """
    path = Path(path)
    text = path.read_text().split()
    try:
        p = np.array([float(v) for v in text], np.float64)
    except ValueError as e:
        raise ValueError(f"{path}: not a list of numbers ({e})") from None
    if p.size != 101:
        raise ValueError(f"{path}: expected 101 precision values, found {p.size}")
    if np.any(~np.isfinite(p)):
        raise ValueError(f"{path}: non-finite precision values")
    nz = np.flatnonzero(p > 0)
    last = int(nz[-1]) if nz.size else 0
    P = float(np.mean(p[:last])) if last > 0 else 0.0
    R = last / 100.0
    return {"precision": p, "recall_grid": RECALL_GRID.copy(), "ap50": float(np.mean(np.clip(p, 0, None))),
            "recall_bin": R, "p": P, "f1": (2 * P * R / (P + R) if P + R > 0 else 0.0)}  # fmt: skip


# --------------------------------------------------------------------------- accumulating metric


class DetMetric(Metric):
    """COCO AP (all frames), lab P/R/F1 (GT frames only) and P/R/F1 at a fixed confidence.

    Stores per-frame boxes (a few numbers per frame) and evaluates in ``compute``.
    """

    protocol = "coco"
    needs = ("boxes", "gt_boxes")

    def __init__(self, area_ranges: str | dict[str, list[float]] | None = "irstd", conf: float = 0.5,
                 lab: bool = True, prf_conf: bool = True) -> None:  # fmt: skip
        if isinstance(area_ranges, str):
            if area_ranges not in AREA_PRESETS:
                raise ValueError(f"unknown area preset {area_ranges!r}; valid: {', '.join(AREA_PRESETS)}")
            area_ranges = AREA_PRESETS[area_ranges]
        self.area_ranges = area_ranges
        self.conf, self.lab, self.prf_conf = float(conf), lab, prf_conf
        self._cache: tuple[Any, int, Any] | None = None

    def describe(self) -> str:
        return (f"AP[COCO bbox via faster-coco-eval, 101-pt, maxDets 100, areas {self.area_ranges}]; "
                f"P/R/F1[lab: mean interpolated p up to R, GT frames only]; P/R/F1[conf>={self.conf}, IoU>=0.5]")  # fmt: skip

    def frame(self, fd: FrameData) -> dict[str, Any]:
        gt = np.asarray(fd.gt_boxes, np.float32).reshape(-1, 4)
        dt = np.asarray(fd.boxes, np.float32)
        dt = dt.reshape(-1, dt.shape[-1])[:, :5] if dt.size else np.zeros((0, 5), np.float32)
        shape = fd.shape if fd.shape is not None else (0, 0)
        return {"frames_list": [(gt, dt, tuple(int(v) for v in shape))]}

    def _evals(self, s: dict[str, Any]) -> tuple[Any, Any]:
        frames = s.get("frames_list", [])
        # Cache on the list object itself (kept alive by the cache, so identity cannot be reused).
        if self._cache is None or self._cache[0] is not frames or self._cache[1] != len(frames):
            full = coco_eval(frames, self.area_ranges)
            labv = coco_eval(frames, None, only_gt_frames=True) if self.lab else None
            self._cache = (frames, len(frames), (full, labv))
        return self._cache[2]

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        frames = s.get("frames_list", [])
        ev, labv = self._evals(s)
        nan = float("nan")
        out: dict[str, float] = {"ap50": nan, "ap": nan, "ap75": nan}
        if ev is not None:
            out.update(ap=float(ev.stats[0]), ap50=float(ev.stats[1]), ap75=float(ev.stats[2]))
            for a, lbl in enumerate(ev.params.areaRngLbl):
                if lbl == "all":
                    continue
                p = precision_vector(ev, 0, a)
                out[f"ap50[area:{lbl}]"] = float(p.mean()) if np.all(p > -1) else -1.0
        if self.lab:
            if labv is not None:
                P, R, F1 = lab_prf(precision_vector(labv), float(labv.eval["recall"][0, 0, 0, -1]))
            else:
                P = R = F1 = nan
            out.update({"p[lab]": P, "r[lab]": R, "f1[lab]": F1})
        if self.prf_conf:
            tp = fp = fn = 0
            for gt, dt, _ in frames:
                a, b, c = match_boxes(gt, dt[dt[:, 4] >= self.conf] if len(dt) else dt)
                tp, fp, fn = tp + a, fp + b, fn + c
            P, R = safe_div(tp, tp + fp), safe_div(tp, tp + fn)
            c = f"conf{self.conf:g}"
            out.update({f"p[{c}]": P, f"r[{c}]": R, f"f1[{c}]": safe_div(2 * P * R, P + R)})
        return out

    def curves(self, s: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        ev, _ = self._evals(s)
        if ev is None:
            return {}
        return {"pr": {"recall": RECALL_GRID.copy(), "precision": precision_vector(ev)}}
