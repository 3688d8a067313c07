"""SCR gain, background suppression factor and contrast gain (spec ``metrics.md`` §8).

The figures TensorISTD reports for classical detectors, per target, on the same target mask and
background window before (``in`` = the input frame) and after (``out`` = the detector's map):

- ``SCRG = SCR_out / SCR_in`` with ``SCR = |μ_t − μ_b| / max(σ_b, 1)`` (the ``scr_clean``
  convention of ``mirstd.utils.scr``: background = target box enlarged by ``margin`` px, minus
  the target, minus the other targets dilated by 2 px);
- ``BSF = σ_b,in / σ_b,out`` (raw population stds, no floor, ``σ_b,out`` guarded by ``eps``);
- ``CG = CON_out / CON_in``, ``CON = |μ_t − μ_b|``.

With ``rescale=True`` (default, the spec's recommendation) input and output are first mapped
linearly to [0, 255] per frame (min–max), so maps of different methods and scales compare; with
``rescale=False`` the raw values are used (spec example E7). Targets are the 8-connected components
of a binary GT mask, or the instances of an instance-id mask. A target whose ``SCR_in`` or
``CON_in`` is 0 has no defined gain and is skipped (counted in ``skipped``). ``compute`` returns the
mean over targets (the TensorISTD convention) and the median (robust to near-zero ``σ_b,out``).

Inputs: the predicted map (``scores``; pass the raw saliency as ``scores`` if it is not a
probability — the figures are ratios, any scale works), the GT mask and the **input frame**
``image`` (``FrameData.image``; see :meth:`ClassicalFigures.update` for stand-alone use).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mirstd.metrics._base import FrameData, Metric, add_state
from mirstd.utils.components import label8
from mirstd.utils.scr import DEFAULT_MARGIN, SIGMA_FLOOR, background_ring


def _rescale(a: np.ndarray) -> np.ndarray:
    lo, hi = float(a.min()), float(a.max())
    return (a - lo) * (255.0 / (hi - lo)) if hi > lo else np.zeros_like(a)


def target_figures(
    image: np.ndarray,
    out: np.ndarray,
    mask: np.ndarray,
    others: np.ndarray | None = None,
    margin: int = DEFAULT_MARGIN,
    sigma_floor: float = SIGMA_FLOOR,
    eps: float = 1e-6,
) -> dict[str, float] | None:
    """(SCR_in, SCR_out, SCRG, BSF, CG, ...) of one target; None if the ring is empty."""
    ring = background_ring(mask, others, margin)
    if ring is None:
        return None
    rows, cols, bg = ring
    vin, vout = image[rows, cols][bg], out[rows, cols][bg]
    if vin.size == 0:
        return None
    m = np.asarray(mask).astype(bool)
    con_in = abs(float(image[m].mean()) - float(vin.mean()))
    con_out = abs(float(out[m].mean()) - float(vout.mean()))
    s_in, s_out = float(vin.std()), float(vout.std())
    scr_in = con_in / max(s_in, sigma_floor)
    scr_out = con_out / max(s_out, sigma_floor)
    return {
        "scr_in": scr_in,
        "scr_out": scr_out,
        "scrg": scr_out / scr_in if scr_in > 0 else float("nan"),
        "bsf": s_in / max(s_out, eps),
        "cg": con_out / con_in if con_in > 0 else float("nan"),
    }


class ClassicalFigures(Metric):
    """Protocol ``classical_figures``: per-target SCRG / BSF / CG, mean and median over targets."""

    protocol = "classical_figures"
    needs = ("scores", "gt_mask", "image")

    def __init__(
        self,
        margin: int = DEFAULT_MARGIN,
        rescale: bool = True,
        sigma_floor: float = SIGMA_FLOOR,
        eps: float = 1e-6,
    ) -> None:
        self.margin, self.rescale, self.sigma_floor, self.eps = int(margin), bool(rescale), sigma_floor, eps

    def describe(self) -> str:
        return (
            f"classical_figures[scr_clean margin={self.margin}, sigma floor {self.sigma_floor}, "
            f"{'min-max to [0,255]' if self.rescale else 'raw values'}, BSF eps {self.eps:g}]"
        )

    def frame(self, fd: FrameData) -> dict[str, Any]:
        image = getattr(fd, "image", None)
        if image is None or fd.scores is None or fd.gt_mask is None:
            raise ValueError(
                "classical_figures needs the input frame (image), the map (scores) and a GT mask"
            )
        img = np.asarray(image, dtype=np.float64)
        out = np.asarray(fd.scores, dtype=np.float64)
        if img.shape != out.shape or img.shape != np.asarray(fd.gt_mask).shape:
            raise ValueError(
                f"classical_figures: image {img.shape}, map {out.shape} and mask "
                f"{np.asarray(fd.gt_mask).shape} differ in size"
            )
        if self.rescale:
            img, out = _rescale(img), _rescale(out)
        gt = np.asarray(fd.gt_mask)
        if gt.dtype == bool or gt.max() <= 1:
            inst, n = label8(gt > 0)
        else:
            inst, n = gt.astype(np.int64), int(gt.max())
        st: dict[str, Any] = {"scrg": [], "bsf": [], "cg": [], "scr_in": [], "scr_out": [], "skipped": 0.0}
        ids = np.unique(inst[inst > 0]) if n else []
        for k in ids:
            this = inst == k
            f = target_figures(img, out, this, (inst > 0) & ~this, self.margin, self.sigma_floor, self.eps)
            if f is None or not (np.isfinite(f["scrg"]) and np.isfinite(f["cg"])):
                st["skipped"] += 1.0
                continue
            for key in ("scrg", "bsf", "cg", "scr_in", "scr_out"):
                st[key].append(f[key])
        return st

    def compute(self, state: dict[str, Any]) -> dict[str, float]:
        res: dict[str, float] = {}
        for key in ("scrg", "bsf", "cg", "scr_in", "scr_out"):
            v = np.asarray(state.get(key, []), dtype=np.float64)
            res[key] = float(v.mean()) if v.size else float("nan")
            res[f"{key}_median"] = float(np.median(v)) if v.size else float("nan")
        res["targets"] = float(len(state.get("scrg", [])))
        res["skipped"] = float(state.get("skipped", 0.0))
        return res

    def update(self, **inputs: Any) -> None:  # stand-alone: update(scores=, gt_mask=, image=)
        image = inputs.pop("image", None)
        fd = FrameData(**inputs)
        fd.image = image  # type: ignore[attr-defined]
        add_state(self.__dict__.setdefault("_state", {}), self.frame(fd))
