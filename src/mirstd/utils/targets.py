"""The one rule that turns a prediction into targets, used by ``predict``, overlays and the Evaluator.

- **Boxes present** (box models): every box whose score is ``>= thr``; its point is the box centre
  ``((x1 + x2)/2 - 0.5, (y1 + y2)/2 - 0.5)`` in pixel-index coordinates, its area ``w·h``.
- **Else a score map** (mask models): the 8-connected components of ``p > thr`` (strict, as the
  BasicIRSTD/DNANet code binarises); point = unweighted centroid, box = tight edge box, score = the
  component's peak probability, area = its pixel count.

Rows are ``x, y, x1, y1, x2, y2, score, area`` (float64), components in raster label order and boxes
in the given order.
"""

from __future__ import annotations

import math

import numpy as np

from mirstd.utils.components import component_boxes, component_max, component_stats, label8

COLUMNS = ("x", "y", "x1", "y1", "x2", "y2", "score", "area")


def box_targets(boxes: np.ndarray, thr: float) -> np.ndarray:
    """Target rows of scored edge boxes ``(N, >=5)`` with score ``>= thr``."""
    b = np.asarray(boxes, np.float64)
    b = b.reshape(-1, b.shape[-1]) if b.size else np.zeros((0, 5))
    b = b[b[:, 4] >= thr]
    cx, cy = (b[:, 0] + b[:, 2]) / 2 - 0.5, (b[:, 1] + b[:, 3]) / 2 - 0.5
    area = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    return np.stack([cx, cy, b[:, 0], b[:, 1], b[:, 2], b[:, 3], b[:, 4], area], axis=1).reshape(-1, 8)


def score_targets(scores: np.ndarray, thr: float) -> np.ndarray:
    """Target rows of the 8-connected components of ``scores > thr``."""
    p = np.asarray(scores)
    lab, n = label8(p > thr)
    if n == 0:
        return np.zeros((0, 8))
    areas, cent = component_stats(lab, n)
    boxes = component_boxes(lab, n).astype(np.float64)
    peak = component_max(p, lab, n)
    return np.column_stack([cent[:, 1], cent[:, 0], boxes, peak, areas.astype(np.float64)])


def prediction_targets(scores: np.ndarray | None, boxes: np.ndarray | None, thr: float) -> np.ndarray:
    """Targets of one frame's prediction: boxes if present, else components of the score map."""
    if boxes is not None:
        return box_targets(boxes, thr)
    if scores is None:
        raise ValueError("a prediction needs scores or boxes")
    return score_targets(scores, thr)


def box_pixels(lo: float, hi: float, size: int) -> slice:
    """Pixels ``i`` an edge-box side ``[lo, hi)`` covers: those whose centre ``i + 0.5`` lies inside
    (so integral boxes cover exactly ``lo .. hi-1``), clipped to ``[0, size)``. The one box -> pixel
    rule of mirstd (GT masks from boxes, boxes filled as masks for scoring)."""
    a = min(max(math.ceil(lo - 0.5), 0), size)
    b = min(max(math.ceil(hi - 0.5), 0), size)
    return slice(a, max(a, b))


def fill_boxes(boxes: np.ndarray, shape: tuple[int, int], values: np.ndarray | None = None) -> np.ndarray:
    """Boxes ``(N, >=4)`` filled into an ``shape`` array: uint8 1 where covered (``values=None``), else
    float32 with each pixel holding the largest value of the boxes covering it."""
    b = np.asarray(boxes, np.float64)
    b = b.reshape(-1, b.shape[-1]) if b.size else np.zeros((0, 4))
    if values is None:
        out = np.zeros(shape, np.uint8)
        for row in b:
            out[box_pixels(row[1], row[3], shape[0]), box_pixels(row[0], row[2], shape[1])] = 1
        return out
    v = np.asarray(values, np.float64).reshape(-1)
    out = np.zeros(shape, np.float32)
    for k in np.argsort(v, kind="stable"):  # ascending: the highest value is written last
        row = b[k]
        out[box_pixels(row[1], row[3], shape[0]), box_pixels(row[0], row[2], shape[1])] = v[k]
    return out
