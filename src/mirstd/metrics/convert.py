"""Conversions between the mask world and the box world (spec ``metrics.md`` §10).

- score map -> scored boxes: binarise (p > thr), 8-connected components, box = tight extent as an
  edge box (x1 = min col, y1 = min row, x2 = max col + 1, y2 = max row + 1), score = max probability
  in the component (``score="mean"`` optional).
- boxes -> centre points ``((x1 + x2)/2 - 0.5, (y1 + y2)/2 - 0.5)`` in pixel-index coordinates.
- boxes -> filled masks (approximate: a box over-covers a round target; any metric computed from
  them is flagged approximate by the Evaluator).
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

from mirstd.utils.components import component_boxes, label8
from mirstd.utils.targets import fill_boxes, score_targets


def scores_to_boxes(prob: np.ndarray, thr: float = 0.5, score: str = "max") -> np.ndarray:
    """Scored edge boxes ``(N, 5) = x1, y1, x2, y2, score`` from a probability map (components of
    ``p > thr``, the ``mirstd.utils.targets`` rule), in label order; ``score="mean"`` averages instead."""
    if score == "max":
        return score_targets(prob, thr)[:, 2:7].astype(np.float32)
    if score != "mean":
        raise ValueError(f"unknown box score {score!r}; valid: max, mean")
    prob = np.asarray(prob)
    lab, n = label8(prob > thr)
    if n == 0:
        return np.zeros((0, 5), np.float32)
    s = np.asarray(ndimage.mean(prob, lab, np.arange(1, n + 1)), np.float64).reshape(n)
    return np.concatenate([component_boxes(lab, n), s[:, None].astype(np.float32)], axis=1)


def mask_to_boxes(mask: np.ndarray) -> np.ndarray:
    """Edge boxes ``(N, 4)`` of the 8-connected components of ``mask > 0`` (label order)."""
    lab, n = label8(np.asarray(mask) > 0)
    return component_boxes(lab, n)


def boxes_to_points(boxes: np.ndarray) -> np.ndarray:
    """Centres ``(N, 2) = (x, y)`` of edge boxes in pixel-index coordinates."""
    b = np.asarray(boxes, np.float64).reshape(-1, np.shape(boxes)[-1] if np.ndim(boxes) == 2 else 4)[:, :4]
    return np.stack([(b[:, 0] + b[:, 2]) / 2 - 0.5, (b[:, 1] + b[:, 3]) / 2 - 0.5], axis=1)


def boxes_to_mask(boxes: np.ndarray, shape: tuple[int, int], thr: float | None = None) -> np.ndarray:
    """uint8 0/1 mask with every box (score >= ``thr`` when given and boxes carry a score) filled
    (pixel-centre rule of :func:`mirstd.utils.targets.box_pixels`)."""
    b = np.asarray(boxes, np.float64)
    b = b.reshape(-1, b.shape[-1]) if b.size else np.zeros((0, 4))
    if thr is not None and b.shape[1] > 4:
        b = b[b[:, 4] >= thr]
    return fill_boxes(b, shape)


def boxes_to_scores(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """float32 score map: each pixel holds the highest score of the boxes covering it (0 elsewhere).

    Lets box detectors be scored by the pixel conventions (``box_as_mask``, approximate).
    """
    b = np.asarray(boxes, np.float64)
    b = b.reshape(-1, b.shape[-1]) if b.size else np.zeros((0, 5))
    return fill_boxes(b, shape, b[:, 4])
