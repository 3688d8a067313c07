"""Segmentation metrics of infrared small target detection, each a named convention.

Spec: ``metrics.md`` §1-§6 (``docs/metrics.md``). Notation: P binary prediction, G binary ground
truth, p probability map, i frame index, |.| pixel count.

- ``iou`` (a.k.a. "mIoU" of BasicIRSTD/DNANet): IoU = sum_i |P_i n G_i| / sum_i |P_i u G_i|, plus
  nIoU = (1/N) sum_i |P_i n G_i| / (|P_i u G_i| + eps) (empty/empty frames score 0 under the
  reference ``zero`` policy), pixAcc = sum|P n G| / sum|G|, DR = fraction of frames with IoU > 0.5.
- ``pdfa_centroid``: 8-connected components; a target is matched by the first still-unmatched
  predicted component (label order) whose centroid is < 3 px away; Pd = matched / targets,
  Fa = unmatched predicted pixels / all pixels. Variant ``area_quirk`` (DNANet, deepmist, BasicIRSTD
  before 2023-07) drops an unmatched component whose area equals any matched component's area.
- ``pdfa_shooting`` (DTUM "shooting rules"): B = p >= tau; a target is hit when B has a pixel within
  +-1 px of any target pixel; false pixels = B outside the +-4 px guard of every target pixel.
  Variant ``dtum_faithful`` reproduces DTUM's negative-index slicing (windows of pixels near the top
  or left border vanish); ``clipped`` (default) clips windows to the image.
- ``roc_pixel``: TP/FP/TN/FN over all pixels at tau_k = k/bins with p > tau_k; AUC = trapezoid of
  TPR over FPR in threshold order.
- ``pdfa_curve``: the centroid convention at every threshold of a sweep (object-level ROC).
"""

from __future__ import annotations

from collections.abc import Sequence as _Seq
from typing import Any

import numpy as np

from mirstd.metrics._base import FrameData, Metric, safe_div
from mirstd.utils.components import component_stats, label8

CENTROID_VARIANTS = ("basicirstd", "area_quirk")
SHOOTING_VARIANTS = ("clipped", "dtum_faithful")
NIOU_POLICIES = ("zero", "skip", "one")


def _dtum_final_thresholds() -> np.ndarray:
    powers = [1e-30] + [float(f"1e-{k}") for k in range(20, 0, -1)]
    mid = [round(0.15 + 0.05 * i, 2) for i in range(17)]
    top = [0.975, 0.98, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.99999, 0.999999, 0.9999999, 1.0]
    return np.array([0.0, *powers, *mid, *top], dtype=np.float64)


#: DTUM final-evaluation sweep (50 values, spec §4.6).
DTUM_THRESHOLDS = _dtum_final_thresholds()
#: DTUM training-time sweep (16 values).
DTUM_TRAIN_THRESHOLDS = np.array(
    [0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.45, 0.5, 0.55, 0.6, 0.65, 0.7, 0.8, 0.9, 0.95, 1.0], dtype=np.float64
)
#: Default probability sweep of the centroid Pd-Fa curve. The tail up to 1 - 1e-7 is there because
#: a trained network's false alarms sit at probabilities above 0.99: a sweep that stops at 0.99 never
#: reaches Fa = 1e-5, so the matched-false-alarm comparison had no point to read.
CURVE_THRESHOLDS = np.round(
    np.concatenate(
        [
            [0.01, 0.02, 0.05],
            np.arange(0.1, 0.91, 0.05),
            [0.95, 0.98, 0.99, 0.995, 0.998, 0.999, 0.9995, 0.9999, 0.99999, 0.999999, 0.9999999],
        ]
    ),
    8,
)
#: The sweep continued through float64's range, to 1 - 1e-15 (logit 34.5): networks give float64
#: probabilities (``mirstd.models.base.probabilities``), and the demo's networks keep false alarms at
#: logits 28-32, which float32 rounds to 1 and a sweep to 1 - 1e-7 cannot reach below. Not rounded
#: (8 decimals would make them 1). The demo's curve uses it; the default stays ``CURVE_THRESHOLDS``.
#: Above 0.9 it steps in quarter decades of 1 - p (logit steps of ~0.58): with whole decades (logit
#: steps of 2.3) Pd@Fa=1e-5 was read by interpolating across one wide gap, and on the demo's val split
#: one PSTFNet's mSCR >= 3 cell read 93.3 % where the quarter-decade sweep measures 100 %.
CURVE_THRESHOLDS_DEEP = np.unique(
    np.concatenate([CURVE_THRESHOLDS, 1.0 - 10.0 ** -np.arange(1.0, 15.01, 0.25)])
)


def check_choice(kind: str, value: str, valid: _Seq[str]) -> str:
    """Return ``value`` if valid, else raise ValueError listing the valid names."""
    if value not in valid:
        raise ValueError(f"unknown {kind} {value!r}; valid: {', '.join(valid)}")
    return value


def resolve_thresholds(spec: str | _Seq[float] | np.ndarray) -> np.ndarray:
    """``"final"`` / ``"train"`` (DTUM lists) or an explicit ascending list of thresholds."""
    if isinstance(spec, str):
        table = {"final": DTUM_THRESHOLDS, "dtum": DTUM_THRESHOLDS, "train": DTUM_TRAIN_THRESHOLDS}
        return table[check_choice("threshold list", spec, tuple(table))].copy()
    t = np.asarray(spec, dtype=np.float64).reshape(-1)
    if t.size == 0 or np.any(np.diff(t) <= 0):
        raise ValueError("thresholds must be a non-empty strictly increasing list")
    return t


# --------------------------------------------------------------------------- pure per-frame functions


def iou_frame(pred: np.ndarray, gt: np.ndarray) -> tuple[int, int]:
    """(|P n G|, |P u G|) of one frame (both binarised as > 0)."""
    p, g = np.asarray(pred) > 0, np.asarray(gt) > 0
    inter = int(np.count_nonzero(p & g))
    return inter, int(np.count_nonzero(p)) + int(np.count_nonzero(g)) - inter


def match_centroids(gt_cent: np.ndarray, pred_cent: np.ndarray, max_dist: float = 3.0) -> np.ndarray:
    """Greedy reference matching: for each target in label order, the first unmatched predicted
    component (label order) whose centroid lies at Euclidean distance < ``max_dist``.

    Returns, per target, the index of its matched prediction or -1.
    """
    out = np.full(len(gt_cent), -1, dtype=np.int64)
    if len(gt_cent) == 0 or len(pred_cent) == 0:
        return out
    d = np.sqrt(((gt_cent[:, None, :] - pred_cent[None, :, :]) ** 2).sum(-1))
    close = d < max_dist
    used = np.zeros(len(pred_cent), dtype=bool)
    for t in np.flatnonzero(close.any(axis=1)):
        cand = np.flatnonzero(close[t] & ~used)
        if cand.size:
            out[t] = cand[0]
            used[cand[0]] = True
    return out


def _centroid_counts(
    gt_cent: np.ndarray, pred_areas: np.ndarray, pred_cent: np.ndarray, variant: str, max_dist: float
) -> tuple[int, int, int]:
    m = match_centroids(gt_cent, pred_cent, max_dist)
    matched = m[m >= 0]
    unmatched = np.ones(len(pred_areas), dtype=bool)
    unmatched[matched] = False
    if variant == "area_quirk":
        # Reference bug: the unmatched list is built by area *value*, so any unmatched component whose
        # area equals a matched component's area is dropped from the false-alarm count.
        unmatched &= ~np.isin(pred_areas, pred_areas[matched])
    return len(gt_cent), int(matched.size), int(pred_areas[unmatched].sum())


def pdfa_centroid_frame(
    pred: np.ndarray, gt: np.ndarray, variant: str = "basicirstd", max_dist: float = 3.0
) -> tuple[int, int, int]:
    """(targets, matched targets, false-alarm pixels) of one binary frame, centroid convention."""
    check_choice("centroid variant", variant, CENTROID_VARIANTS)
    gl, gn = label8(np.asarray(gt) > 0)
    pl, pn = label8(np.asarray(pred) > 0)
    _, gc = component_stats(gl, gn)
    pa, pc = component_stats(pl, pn)
    return _centroid_counts(gc, pa, pc, variant, max_dist)


def _window(i: int, k: int, variant: str) -> slice:
    # dtum_faithful: plain slicing a[i-k : i+k+1]; a negative start wraps (Python semantics) and the
    # slice is then usually empty, exactly as in DTUM's ShootingRules.py.
    return slice(i - k, i + k + 1) if variant == "dtum_faithful" else slice(max(i - k, 0), i + k + 1)


def count_at_least(values: np.ndarray, thresholds: np.ndarray, strict: bool = False) -> np.ndarray:
    """Per threshold t_k: number of values >= t_k (``strict``: > t_k). Thresholds ascending."""
    side = "left" if strict else "right"
    idx = np.searchsorted(thresholds, np.asarray(values).ravel(), side=side)
    counts = np.bincount(idx, minlength=len(thresholds) + 1)
    tail = np.cumsum(counts[::-1])[::-1]  # tail[j] = number of values with idx >= j
    return tail[1:].astype(np.int64)


def shooting_frame(
    prob: np.ndarray,
    gt: np.ndarray,
    thresholds: np.ndarray,
    variant: str = "clipped",
    hit_radius: int = 1,
    guard_radius: int = 4,
) -> tuple[int, np.ndarray, np.ndarray]:
    """DTUM shooting rules on one frame for every threshold (B = p >= tau).

    Returns ``(targets, hits[K], false_pixels[K])``.
    """
    check_choice("shooting variant", variant, SHOOTING_VARIANTS)
    prob = np.asarray(prob)
    gl, n = label8(np.asarray(gt) > 0)
    guard = np.ones(prob.shape, dtype=bool)
    hitmax = np.full(n, -np.inf)
    rr, cc = np.nonzero(gl)
    for r, c, lab in zip(rr.tolist(), cc.tolist(), gl[rr, cc].tolist()):
        guard[_window(r, guard_radius, variant), _window(c, guard_radius, variant)] = False
        win = prob[_window(r, hit_radius, variant), _window(c, hit_radius, variant)]
        if win.size:
            hitmax[lab - 1] = max(hitmax[lab - 1], float(win.max()))
    hits = count_at_least(hitmax, thresholds) if n else np.zeros(len(thresholds), np.int64)
    return n, hits, count_at_least(prob[guard], thresholds)


def roc_frame(
    prob: np.ndarray, gt: np.ndarray, thresholds: np.ndarray
) -> tuple[np.ndarray, np.ndarray, int, int]:
    """(TP[K], FP[K], positives, negatives) of one frame with p > tau_k (strict, as the reference)."""
    prob = np.asarray(prob)
    g = np.asarray(gt) > 0
    pos = prob[g]
    tp = count_at_least(pos, thresholds, strict=True)
    allc = count_at_least(prob, thresholds, strict=True)
    return tp, allc - tp, int(pos.size), int(prob.size - pos.size)


def trapezoid(y: np.ndarray, x: np.ndarray) -> float:
    """|trapezoid area| of y over x with points in the given order (``sklearn.metrics.auc``)."""
    y, x = np.asarray(y, np.float64), np.asarray(x, np.float64)
    return float(abs(np.sum((x[1:] - x[:-1]) * (y[1:] + y[:-1]) / 2.0))) if len(x) > 1 else 0.0


def partial_auc(fa: np.ndarray, pd: np.ndarray, fa_max: float = 1e-4) -> float:
    """Normalised partial AUC: (1/fa_max) * integral_0^fa_max Pd dFa (curve sorted by Fa)."""
    fa, pd = np.asarray(fa, np.float64), np.asarray(pd, np.float64)
    ok = np.isfinite(fa) & np.isfinite(pd)
    if not ok.any():
        return float("nan")
    order = np.lexsort((pd[ok], fa[ok]))
    f, p = fa[ok][order], pd[ok][order]
    grid_x = np.concatenate([[0.0], f[(f > 0) & (f < fa_max)], [fa_max]])
    grid_y = np.interp(grid_x, f, p)
    return trapezoid(grid_y, grid_x) / fa_max


# --------------------------------------------------------------------------- accumulating metrics


class IoUMetric(Metric):
    """``iou`` (dataset-accumulated), ``niou`` (per-frame mean), ``pixacc``, ``dr`` at one threshold."""

    protocol = "iou"
    needs = ("scores", "gt_mask")

    def __init__(self, threshold: float = 0.5, empty_policy: str = "zero") -> None:
        self.threshold = float(threshold)
        self.empty_policy = check_choice("nIoU empty policy", empty_policy, NIOU_POLICIES)

    def describe(self) -> str:
        return f"IoU/nIoU[tau={self.threshold} prob, >, nIoU empty={self.empty_policy}]"

    def frame(self, fd: FrameData) -> dict[str, Any]:
        p, g = fd.pred_bin(self.threshold), fd.gt_bin
        inter = int(np.count_nonzero(p & g))
        gpx = int(np.count_nonzero(g))
        union = int(np.count_nonzero(p)) + gpx - inter
        iou = inter / (union + np.finfo(np.float64).eps)
        return {"inter": inter, "union": union, "gt_px": gpx, "niou_sum": iou, "frames": 1,
                "empty": int(union == 0), "dr": int(iou > 0.5)}  # fmt: skip

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        n, empty = s.get("frames", 0), s.get("empty", 0)
        niou = {
            "zero": safe_div(s.get("niou_sum", 0), n),
            "skip": safe_div(s.get("niou_sum", 0), n - empty),
            "one": safe_div(s.get("niou_sum", 0) + empty, n),
        }[self.empty_policy]
        key = "niou" if self.empty_policy == "zero" else f"niou[{self.empty_policy}]"
        return {
            "iou": safe_div(s.get("inter", 0), s.get("union", 0)),
            key: niou,
            "pixacc": safe_div(s.get("inter", 0), s.get("gt_px", 0)),
            "dr": safe_div(s.get("dr", 0), n),
        }


class PdFaCentroid(Metric):
    """Pd/Fa under the centroid convention (BasicIRSTD ``PD_FA``) at one probability threshold."""

    protocol = "pdfa_centroid"
    needs = ("scores", "gt_mask")

    def __init__(
        self,
        threshold: float = 0.5,
        variant: str = "basicirstd",
        max_dist: float = 3.0,
        dnanet_compat: bool = False,
    ) -> None:
        self.threshold = float(threshold)
        self.variant = (
            "area_quirk" if dnanet_compat else check_choice("centroid variant", variant, CENTROID_VARIANTS)
        )
        self.max_dist = float(max_dist)

    def tag(self) -> str:
        return "centroid" if self.variant == "basicirstd" else f"centroid:{self.variant}"

    def describe(self) -> str:
        return f"Pd/Fa[centroid:{self.variant}, tau={self.threshold} prob, >, 8-conn, d<{self.max_dist:g}px, Fa raw fraction]"

    def frame(self, fd: FrameData) -> dict[str, Any]:
        _, _, pa, pc = fd.pred_components(self.threshold)
        _, _, _, gc = fd.gt_components()
        t, m, f = _centroid_counts(gc, pa, pc, self.variant, self.max_dist)
        return {"targets": t, "matched": m, "false_px": f, "pixels": fd.num_pixels}

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        tag = self.tag()
        return {
            f"pd[{tag}]": safe_div(s.get("matched", 0), s.get("targets", 0)),
            f"fa[{tag}]": safe_div(s.get("false_px", 0), s.get("pixels", 0)),
        }


class PdFaShooting(Metric):
    """DTUM shooting rules over a threshold sweep; headline at ``threshold`` (p >= tau)."""

    protocol = "pdfa_shooting"
    needs = ("scores", "gt_mask")

    def __init__(
        self,
        threshold: float = 0.5,
        variant: str = "clipped",
        thresholds: str | _Seq[float] = "final",
        hit_radius: int = 1,
        guard_radius: int = 4,
        pauc_fa: float = 1e-4,
    ) -> None:
        self.variant = check_choice("shooting variant", variant, SHOOTING_VARIANTS)
        self.sweep = resolve_thresholds(thresholds)
        self.threshold = float(threshold)
        # The headline threshold joins the internal list but is excluded from the AUC if not in the sweep.
        self.internal = np.union1d(self.sweep, [self.threshold])
        self.sweep_idx = np.searchsorted(self.internal, self.sweep)
        self.head_idx = int(np.searchsorted(self.internal, self.threshold))
        self.hit_radius, self.guard_radius, self.pauc_fa = int(hit_radius), int(guard_radius), float(pauc_fa)

    def tag(self) -> str:
        return "shooting" if self.variant == "clipped" else f"shooting:{self.variant}"

    def describe(self) -> str:
        return (f"Pd/Fa[shooting:{self.variant}, tau={self.threshold} prob, >=, hit +-{self.hit_radius}px, "
                f"guard +-{self.guard_radius}px, Fa raw fraction; AUC over {len(self.sweep)} thresholds, raw Fa]")  # fmt: skip

    def frame(self, fd: FrameData) -> dict[str, Any]:
        n, hits, false = shooting_frame(
            fd.scores, fd.gt_bin, self.internal, self.variant, self.hit_radius, self.guard_radius
        )
        return {"targets": n, "hits": hits, "false_px": false, "pixels": fd.num_pixels}

    def _curve(self, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.internal)
        t, px = s.get("targets", 0), s.get("pixels", 0)
        pd = np.asarray(s.get("hits", np.zeros(k)), np.float64) / t if t else np.full(k, np.nan)
        fa = np.asarray(s.get("false_px", np.zeros(k)), np.float64) / px if px else np.full(k, np.nan)
        return pd, fa

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        pd, fa = self._curve(s)
        tag = self.tag()
        sp, sf = pd[self.sweep_idx], fa[self.sweep_idx]
        return {
            f"pd[{tag}]": float(pd[self.head_idx]),
            f"fa[{tag}]": float(fa[self.head_idx]),
            f"auc[{tag}]": trapezoid(sp, sf) if np.isfinite(sp).all() else float("nan"),
            f"pauc{self.pauc_fa:g}[{tag}]": partial_auc(sf, sp, self.pauc_fa),
        }

    def curves(self, s: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        pd, fa = self._curve(s)
        return {
            f"pdfa[{self.tag()}]": {
                "thresholds": self.sweep,
                "pd": pd[self.sweep_idx],
                "fa": fa[self.sweep_idx],
            }
        }


class RocPixel(Metric):
    """Pixel-level ROC at tau_k = k/bins (p > tau_k); AUC = trapezoid of TPR over FPR."""

    protocol = "roc_pixel"
    needs = ("scores", "gt_mask")

    def __init__(self, bins: int = 200) -> None:
        self.bins = int(bins)
        self.thresholds = np.arange(self.bins + 1, dtype=np.float64) / self.bins

    def describe(self) -> str:
        return f"ROC[pixel, tau=k/{self.bins}, >]"

    def frame(self, fd: FrameData) -> dict[str, Any]:
        tp, fp, pos, neg = roc_frame(fd.scores, fd.gt_bin, self.thresholds)
        return {"tp": tp, "fp": fp, "pos": pos, "neg": neg}

    def table(self, s: dict[str, Any]) -> dict[str, np.ndarray]:
        k = len(self.thresholds)
        tp = np.asarray(s.get("tp", np.zeros(k)), np.float64)
        fp = np.asarray(s.get("fp", np.zeros(k)), np.float64)
        pos, neg = s.get("pos", 0), s.get("neg", 0)
        with np.errstate(invalid="ignore", divide="ignore"):
            tpr, fpr, prec = tp / pos, fp / neg, tp / (tp + fp)
        return {"thresholds": self.thresholds, "tp": tp, "fp": fp, "fn": pos - tp, "tn": neg - fp,
                "tpr": tpr, "fpr": fpr, "precision": prec}  # fmt: skip

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        t = self.table(s)
        ok = np.isfinite(t["tpr"]) & np.isfinite(t["fpr"])
        return {"auc[roc]": trapezoid(t["tpr"][ok], t["fpr"][ok]) if ok.all() else float("nan")}

    def curves(self, s: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        t = self.table(s)
        return {"roc": {k: t[k] for k in ("thresholds", "fpr", "tpr", "precision")}}


class PdFaCurve(Metric):
    """Centroid-convention Pd/Fa at every threshold of a probability sweep (object-level ROC)."""

    protocol = "pdfa_curve"
    needs = ("scores", "gt_mask")

    def __init__(
        self, thresholds: str | _Seq[float] | None = None, variant: str = "basicirstd", max_dist: float = 3.0,
        pauc_fa: float = 1e-4,
    ) -> None:  # fmt: skip
        self.thresholds = CURVE_THRESHOLDS.copy() if thresholds is None else resolve_thresholds(thresholds)
        self.variant = check_choice("centroid variant", variant, CENTROID_VARIANTS)
        self.max_dist, self.pauc_fa = float(max_dist), float(pauc_fa)

    def tag(self) -> str:
        return "centroid" if self.variant == "basicirstd" else f"centroid:{self.variant}"

    def describe(self) -> str:
        return f"Pd-Fa curve[centroid:{self.variant}, {len(self.thresholds)} thresholds, >, d<{self.max_dist:g}px]"

    def frame(self, fd: FrameData) -> dict[str, Any]:
        _, _, _, gc = fd.gt_components()
        matched, false = np.zeros(len(self.thresholds)), np.zeros(len(self.thresholds))
        for k, thr in enumerate(self.thresholds):
            _, _, pa, pc = fd.pred_components(float(thr))
            _, matched[k], false[k] = _centroid_counts(gc, pa, pc, self.variant, self.max_dist)
        return {"targets": len(gc), "matched": matched, "false_px": false, "pixels": fd.num_pixels}

    def _curve(self, s: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
        k = len(self.thresholds)
        t, px = s.get("targets", 0), s.get("pixels", 0)
        pd = np.asarray(s.get("matched", np.zeros(k))) / t if t else np.full(k, np.nan)
        fa = np.asarray(s.get("false_px", np.zeros(k))) / px if px else np.full(k, np.nan)
        return pd, fa

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        pd, fa = self._curve(s)
        return {f"pauc{self.pauc_fa:g}[curve:{self.tag()}]": partial_auc(fa, pd, self.pauc_fa)}

    def curves(self, s: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        pd, fa = self._curve(s)
        return {f"pdfa[{self.tag()}]": {"thresholds": self.thresholds, "pd": pd, "fa": fa}}
