"""Signal-to-clutter ratio (SCR) of small targets, per target and per sequence (mSCR).

Two named conventions (``docs/metrics.md``; spec ``metrics.md`` §7):

``scr_clean`` (mirstd default)
    SCR = |mu_t - mu_b| / max(sigma_b, 1), where mu_t is the mean image value over the target mask,
    and mu_b, sigma_b (population std) are taken over the target's bounding box enlarged by
    ``margin`` px per side (clipped to the image, inclusive), minus the target mask, minus every
    other target's mask dilated by 2 px.

``scr_shu`` (faithful to the SHU lab script used for SHU-MIRST)
    8-bit image, first external contour's box, window with exclusive end clipped to H-1/W-1,
    zero-valued pixels deleted, SCR = |mu_t - mu_b| / (max(sigma_b, 1) + 1e-5); 0 when no contour.

mSCR = mean of per-frame SCR over a sequence (frame SCR = mean over its targets); sequences are
split "low" when mSCR < 3.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

SIGMA_FLOOR = 1.0
DEFAULT_MARGIN = 20


def _box_of(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    rows = np.flatnonzero(mask.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(mask.any(axis=0))
    return int(rows[0]), int(rows[-1]), int(cols[0]), int(cols[-1])


def background_ring(
    mask: np.ndarray, others: np.ndarray | None = None, margin: int = DEFAULT_MARGIN
) -> tuple[slice, slice, np.ndarray] | None:
    """Window slices and boolean background selector of the ``scr_clean`` convention.

    Returns ``(rows, cols, bg)`` where ``bg`` is a boolean array of the window's shape, or None when
    ``mask`` is empty. ``others`` is the union mask of the *other* targets (dilated by 2 px here).
    """
    mask = np.asarray(mask).astype(bool)
    box = _box_of(mask)
    if box is None:
        return None
    r0, r1, c0, c1 = box
    h, w = mask.shape
    rows = slice(max(r0 - margin, 0), min(r1 + margin, h - 1) + 1)
    cols = slice(max(c0 - margin, 0), min(c1 + margin, w - 1) + 1)
    bg = ~mask[rows, cols]
    if others is not None and np.any(others):
        dil = ndimage.binary_dilation(np.asarray(others).astype(bool), structure=np.ones((5, 5), bool))
        bg &= ~dil[rows, cols]
    return rows, cols, bg


def local_background(
    image: np.ndarray, mask: np.ndarray, others: np.ndarray | None = None, margin: int = DEFAULT_MARGIN
) -> tuple[float, float]:
    """(mu_b, sigma_b) over the ``scr_clean`` background ring (population std, no floor)."""
    ring = background_ring(mask, others, margin)
    if ring is None:
        raise ValueError("empty target mask: no background ring")
    rows, cols, bg = ring
    vals = np.asarray(image, dtype=np.float64)[rows, cols][bg]
    if vals.size == 0:
        raise ValueError("background ring is empty (target covers its whole window)")
    return float(vals.mean()), float(vals.std())


def scr_clean(
    image: np.ndarray,
    mask: np.ndarray,
    others: np.ndarray | None = None,
    margin: int = DEFAULT_MARGIN,
    sigma_floor: float = SIGMA_FLOOR,
) -> float:
    """SCR of one target under the ``scr_clean`` convention: |mu_t - mu_b| / max(sigma_b, floor).

    >>> img = np.where((np.add.outer(np.arange(9), np.arange(9)) % 2) == 0, 10.0, 14.0)
    >>> m = np.zeros((9, 9), bool); m[4:6, 4:6] = True; img[m] = 40
    >>> round(scr_clean(img, m), 6)
    14.014169
    """
    mask = np.asarray(mask).astype(bool)
    mu_b, sigma_b = local_background(image, mask, others, margin)
    mu_t = float(np.asarray(image, dtype=np.float64)[mask].mean())
    return abs(mu_t - mu_b) / max(sigma_b, sigma_floor)


def scr_shu(image8: np.ndarray, mask: np.ndarray, margin: int = DEFAULT_MARGIN) -> float:
    """SCR under the SHU lab script's convention (8-bit image, first external contour). 0 if no target."""
    import cv2

    img = np.asarray(image8, dtype=np.float64)
    m8 = (np.asarray(mask) > 0).astype(np.uint8) * 255
    binm = (m8 >= 128).astype(np.uint8)
    contours, _ = cv2.findContours(binm, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
    if not contours:
        return 0.0
    x, y, w, h = cv2.boundingRect(contours[0])
    H, W = img.shape
    inbox = np.zeros_like(binm, dtype=bool)
    inbox[y : y + h, x : x + w] = binm[y : y + h, x : x + w] > 0
    mu_t = float(img[inbox].mean())
    work = img.copy()
    work[inbox] = 0
    win = work[
        max(y - margin, 0) : min(y + h + margin, H - 1), max(x - margin, 0) : min(x + w + margin, W - 1)
    ]
    vals = win[win != 0]
    if vals.size == 0:
        return 0.0
    return abs(mu_t - float(vals.mean())) / (max(float(vals.std()), 1.0) + 1e-5)


def frame_scr(image: np.ndarray, instance_mask: np.ndarray, margin: int = DEFAULT_MARGIN) -> list[float]:
    """``scr_clean`` of every instance (ids > 0) of an instance mask, in id order."""
    inst = np.asarray(instance_mask)
    out = []
    for k in np.unique(inst[inst > 0]):
        this = inst == k
        others = (inst > 0) & ~this
        out.append(scr_clean(image, this, others, margin))
    return out


def mscr(frame_values: list[list[float] | float | None], convention: str = "clean") -> float:
    """Mean SCR of a sequence from per-frame values (a frame value is a list over its targets).

    ``clean``: frames without a target are excluded. ``shu``: they count as 0.
    """
    if convention not in ("clean", "shu"):
        raise ValueError(f"unknown mSCR convention {convention!r}; valid: clean, shu")
    vals = []
    for v in frame_values:
        if v is None or (isinstance(v, list) and not v):
            if convention == "shu":
                vals.append(0.0)
            continue
        vals.append(float(np.mean(v)))
    return float(np.mean(vals)) if vals else float("nan")


def scr_split(m: float, threshold: float = 3.0) -> str:
    """ "low" when mSCR < threshold, else "high"."""
    return "low" if m < threshold else "high"
