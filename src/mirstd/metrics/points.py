"""Point-level Pd / false alarms for datasets labelled with points only (airground-real, DAUB).

Convention ``point`` (spec ``metrics.md`` §10): predictions are component centroids of ``p > tau``
(score = max probability, area = component pixels) or centres of boxes with score >= tau (area = box
area). Predictions are processed in descending score; each takes the nearest still-unmatched target
whose centre lies at distance < d (default 3 px), one-to-one.

Pd = matched targets / targets; ``fa_per_frame`` = unmatched predictions / frames;
``fa`` = unmatched prediction pixels / all pixels (unit-compatible with the centroid convention).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mirstd.metrics._base import FrameData, Metric, safe_div
from mirstd.utils.targets import prediction_targets


def match_points(
    gt_xy: np.ndarray, pred_xy: np.ndarray, pred_score: np.ndarray, max_dist: float = 3.0
) -> np.ndarray:
    """Per prediction, the index of the target it matched (or -1); predictions in descending score."""
    out = np.full(len(pred_xy), -1, dtype=np.int64)
    if len(gt_xy) == 0 or len(pred_xy) == 0:
        return out
    d = np.sqrt(((pred_xy[:, None, :] - gt_xy[None, :, :]) ** 2).sum(-1))
    free = np.ones(len(gt_xy), dtype=bool)
    for i in np.argsort(-np.asarray(pred_score), kind="stable"):
        cand = np.flatnonzero((d[i] < max_dist) & free)
        if cand.size:
            j = cand[np.argmin(d[i, cand])]
            out[i], free[j] = j, False
    return out


class PointPdFa(Metric):
    """Distance-based Pd / false alarms (``point`` convention)."""

    protocol = "point"
    needs = ("gt_centres",)

    def __init__(self, threshold: float = 0.5, distance: float = 3.0) -> None:
        self.threshold, self.distance = float(threshold), float(distance)

    def tag(self) -> str:
        return "point"

    def describe(self) -> str:
        return (f"Pd/Fa[point, tau={self.threshold} (p > tau components or box score >= tau), "
                f"centre distance < {self.distance:g}px, one-to-one by score; fa raw pixel fraction]")  # fmt: skip

    def predictions(self, fd: FrameData) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(centres xy, scores, areas) of the frame's targets (``mirstd.utils.targets`` rule)."""
        t = prediction_targets(fd.scores, fd.boxes, self.threshold)
        return t[:, 0:2], t[:, 6], t[:, 7]

    def frame(self, fd: FrameData) -> dict[str, Any]:
        xy, score, area = self.predictions(fd)
        gt = fd.gt_centres_xy()
        m = match_points(gt, xy, score, self.distance)
        un = m < 0
        return {"targets": len(gt), "matched": int((~un).sum()), "false": int(un.sum()),
                "false_px": float(area[un].sum()), "pixels": fd.num_pixels, "frames": 1}  # fmt: skip

    def compute(self, s: dict[str, Any]) -> dict[str, float]:
        t = self.tag()
        return {
            f"pd[{t}]": safe_div(s.get("matched", 0), s.get("targets", 0)),
            f"fa[{t}]": safe_div(s.get("false_px", 0), s.get("pixels", 0)),
            f"fa_per_frame[{t}]": safe_div(s.get("false", 0), s.get("frames", 0)),
        }
