"""Label conversions: masks -> instances -> edge boxes / points / centroids; points -> boxes or masks;
boxes -> masks.

Conventions (docs/design.md): 0-based pixel indices, x = column, y = row; edge boxes
``(x1, y1, x2, y2)`` with ``x2 = last column + 1``. Instances are 8-connected components numbered in
raster order of their first pixel (the order ``scipy.ndimage.label`` and
``skimage.measure.label(connectivity=2)`` produce), so every converter agrees on target order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Sequence as _Seq

import numpy as np
from scipy import ndimage

from mirstd.data.sequence import FrameLabels
from mirstd.utils.targets import fill_boxes

_EIGHT = np.ones((3, 3), dtype=bool)
DAUB_BOX = 8  # UESTC DAUB lists: 8x8 boxes around the point label, clipped at the border


def mask_to_instances(mask: np.ndarray) -> tuple[np.ndarray, int]:
    """8-connected instance ids (int32, 0 = background) of a binary (or 0/255) mask, and their count."""
    lab, n = ndimage.label(np.asarray(mask) > 0, structure=_EIGHT)
    return lab.astype(np.int32), int(n)


def instance_boxes(inst: np.ndarray, n: int | None = None) -> np.ndarray:
    """Tight edge boxes (n, 4) float32 of instances 1..n."""
    n = int(inst.max(initial=0)) if n is None else n
    out = np.zeros((n, 4), np.float32)
    for k, sl in enumerate(ndimage.find_objects(inst, max_label=n)):
        if sl is not None:
            out[k] = (sl[1].start, sl[0].start, sl[1].stop, sl[0].stop)
    return out


def instance_centroids(inst: np.ndarray, n: int | None = None) -> np.ndarray:
    """Unweighted centroids (n, 2) float32 as 0-based ``(x, y)`` of instances 1..n."""
    n = int(inst.max(initial=0)) if n is None else n
    if n == 0:
        return np.zeros((0, 2), np.float32)
    rr, cc = np.nonzero(inst)
    ll = inst[rr, cc]
    area = np.bincount(ll, minlength=n + 1)[1:].astype(np.float64)
    area[area == 0] = np.nan
    cy = np.bincount(ll, weights=rr, minlength=n + 1)[1:] / area
    cx = np.bincount(ll, weights=cc, minlength=n + 1)[1:] / area
    return np.stack([cx, cy], axis=1).astype(np.float32)


def mask_to_labels(mask: np.ndarray, instance: bool = False) -> FrameLabels:
    """FrameLabels (edge boxes + centroid points) of a mask, targets in component order.

    ``instance=True`` takes the values as instance ids (kept as target ids); otherwise 8-connected
    components are used and ids are -1 (a component number is no identity across frames).
    """
    m = np.asarray(mask)
    if instance:
        inst, n = m.astype(np.int32), int(m.max(initial=0))
        ids = [k for k in range(1, n + 1) if np.any(inst == k)]
        remap = np.zeros(n + 1, np.int32)
        remap[ids] = np.arange(1, len(ids) + 1)
        inst, n = remap[inst], len(ids)
    else:
        inst, n = mask_to_instances(m)
        ids = [-1] * n
    boxes, points = instance_boxes(inst, n), instance_centroids(inst, n)
    return FrameLabels(boxes, points, np.asarray(ids, np.int64), has_boxes=True, has_points=True)


def points_to_boxes(
    points: np.ndarray, size: float = DAUB_BOX, shape: tuple[int, int] | None = None
) -> np.ndarray:
    """Fixed-size integer edge boxes around points, clipped to ``shape`` = (H, W) when given.

    ``x1 = floor(x + 0.5 - size/2)``, ``x2 = x1 + size`` (same for y): an integer point x gets
    ``[x - 4, x + 4)`` for size 8, the rule of the DAUB lists (list box 96,77,104,85 for the point
    (100, 81)); the box centre is within half a pixel of the point for even sizes.
    """
    p = np.asarray(points, np.float32).reshape(-1, 2)
    lo = np.floor(p + 0.5 - size / 2.0)
    b = np.concatenate([lo, lo + size], axis=1)
    if shape is not None:
        b = clip_boxes(b, shape)
    return b.astype(np.float32)


def clip_boxes(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    H, W = shape
    b = np.asarray(boxes, np.float32).reshape(-1, 4).copy()
    b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, W)
    b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, H)
    return b


def box_centers(boxes: np.ndarray) -> np.ndarray:
    """Box centres as pixel-index points ``((x1 + x2)/2 - 0.5, (y1 + y2)/2 - 0.5)``."""
    b = np.asarray(boxes, np.float32).reshape(-1, 4)
    return np.stack([(b[:, 0] + b[:, 2]) / 2 - 0.5, (b[:, 1] + b[:, 3]) / 2 - 0.5], axis=1)


def points_to_mask(points: np.ndarray, shape: tuple[int, int], radius: int = 0) -> np.ndarray:
    """uint8 0/1 mask with a (2r+1)x(2r+1) square at each rounded point (r = 0: one pixel per point)."""
    H, W = shape
    m = np.zeros((H, W), np.uint8)
    for x, y in np.asarray(points, np.float32).reshape(-1, 2):
        cx, cy = int(round(float(x))), int(round(float(y)))
        m[max(cy - radius, 0) : max(cy + radius + 1, 0), max(cx - radius, 0) : max(cx + radius + 1, 0)] = 1
    return m


def _window(cy: int, cx: int, half: int, H: int, W: int) -> tuple[slice, slice]:
    """Slices of the ``(2*half+1)^2`` window around ``(cy, cx)``, clipped to an ``H x W`` frame."""
    return (slice(max(cy - half, 0), min(cy + half + 1, H)), slice(max(cx - half, 0), min(cx + half + 1, W)))


def points_to_peak_mask(
    points: np.ndarray,
    frame: np.ndarray,
    radius: int = 0,
    search: int = 3,
    background: int = 7,
    rel: float = 0.5,
    min_snr: float = 4.0,
) -> np.ndarray:
    """uint8 0/1 mask grown from each point label to the target's own pixels in ``frame``.

    Point labels of real sequences are often a pixel or two off the target (airground-real's sit
    1-2 px up and left of the bright pixel); a fixed square at the label then teaches the network
    that the target's brightest pixel is background. For each point:

    1. contrast ``c = f - median(f)`` over the ``(2*background+1)^2`` window around the point, and
       noise ``sigma = 1.4826 * MAD`` of that window;
    2. the peak ``p`` = argmax ``|c|`` within ``search`` px (Chebyshev) of the point; its sign is the
       target's polarity (hot or cold);
    3. if ``|c(p)| < min_snr * sigma`` the target is not visible: fall back to the
       ``(2*radius+1)^2`` square of :func:`points_to_mask`;
    4. else the mask is the 8-connected region around ``p`` where ``sign * c >= rel * |c(p)|``
       (a half-maximum rule) inside the background window, joined with the
       ``(2*radius+1)^2`` square centred on ``p`` (the square moved onto the target).

    Args:
        points: ``(N, 2)`` x, y pixel indices.
        frame: ``(H, W)`` the labelled frame (raw intensities; only differences matter).
        radius: half-size of the square (at the peak, or at the point when no target stands out).
        search, background: half-sizes (px) of the peak search and of the background window.
        rel: fraction of the peak contrast a pixel needs to join the target.
        min_snr: peak contrast / noise below which the point is kept as a square.
    """
    f = np.asarray(frame, np.float64)
    H, W = f.shape
    m = np.zeros((H, W), np.uint8)
    for x, y in np.asarray(points, np.float32).reshape(-1, 2):
        cx, cy = int(round(float(x))), int(round(float(y)))
        if not (0 <= cx < W and 0 <= cy < H):
            continue
        bwin = _window(cy, cx, background, H, W)
        win = f[bwin]
        med = float(np.median(win))
        sigma = 1.4826 * float(np.median(np.abs(win - med)))
        swin = _window(cy, cx, search, H, W)
        c = f[swin] - med
        py, px = np.unravel_index(int(np.argmax(np.abs(c))), c.shape)
        peak = float(c[py, px])
        if abs(peak) < min_snr * max(sigma, 1e-12):
            m |= points_to_mask(np.array([[x, y]]), (H, W), radius)
            continue
        py, px = py + swin[0].start, px + swin[1].start
        region = np.sign(peak) * (win - med) >= rel * abs(peak)
        lab, _ = ndimage.label(region, structure=_EIGHT)
        m[bwin] |= (lab == lab[py - bwin[0].start, px - bwin[1].start]).astype(np.uint8)
        m |= points_to_mask(np.array([[px, py]]), (H, W), radius)
    return m


def boxes_to_mask(boxes: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """uint8 0/1 mask filling each edge box (pixel-centre rule of :func:`mirstd.utils.targets.box_pixels`)."""
    return fill_boxes(np.asarray(boxes, np.float64).reshape(-1, 4), shape)


class LazyLabels(_Seq[FrameLabels]):
    """A list of FrameLabels computed on first access (mask-derived labels stay lazy until needed)."""

    def __init__(self, n: int, fn: Callable[[int], FrameLabels]):
        self._n, self._fn = n, fn
        self._cache: dict[int, FrameLabels] = {}

    def __len__(self) -> int:
        return self._n

    def __getitem__(self, i):  # type: ignore[override]
        if isinstance(i, slice):
            return [self[k] for k in range(*i.indices(self._n))]
        if i < 0:
            i += self._n
        if not 0 <= i < self._n:
            raise IndexError(i)
        if i not in self._cache:
            self._cache[i] = self._fn(i)
        return self._cache[i]

    def __iter__(self) -> Iterator[FrameLabels]:
        return (self[i] for i in range(self._n))
