"""Geometric transforms applied identically to every frame of a clip and to its labels.

Arrays: clip (T, H, W) float32, mask (H, W) uint8, boxes (N, 4) edge boxes, points (N, 2) pixel-index
(x, y). A target is kept while its point lies inside the output (points given) or its clipped box keeps
a positive area (boxes only); boxes and points of one target are dropped together.
"""

from __future__ import annotations

import math

import cv2
import numpy as np


def _keep(boxes: np.ndarray, points: np.ndarray, H: int, W: int) -> tuple[np.ndarray, np.ndarray]:
    b = boxes.copy()
    if len(b):
        b[:, [0, 2]] = np.clip(b[:, [0, 2]], 0, W)
        b[:, [1, 3]] = np.clip(b[:, [1, 3]], 0, H)
    kb = (b[:, 2] > b[:, 0]) & (b[:, 3] > b[:, 1]) if len(b) else np.zeros(0, bool)
    kp = (
        (points[:, 0] >= 0) & (points[:, 0] <= W - 1) & (points[:, 1] >= 0) & (points[:, 1] <= H - 1)
        if len(points)
        else np.zeros(0, bool)
    )
    if len(b) and len(points) == len(b):
        k = kp
        return b[k], points[k]
    return b[kb], points[kp]


def crop(clip, mask, boxes, points, x0: int, y0: int, size: int):
    """Crop ``size`` x ``size`` at (x0, y0); regions beyond the frame are zero-padded."""
    T, H, W = clip.shape
    out = np.zeros((T, size, size), clip.dtype)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + size, W), min(y0 + size, H)
    if sx1 > sx0 and sy1 > sy0:
        out[:, sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = clip[:, sy0:sy1, sx0:sx1]
    m = None
    if mask is not None:
        m = np.zeros((size, size), mask.dtype)
        if sx1 > sx0 and sy1 > sy0:
            m[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = mask[sy0:sy1, sx0:sx1]
    b = boxes - np.array([x0, y0, x0, y0], np.float32)
    p = points - np.array([x0, y0], np.float32)
    b, p = _keep(b, p, size, size)
    return out, m, b, p


def hflip(clip, mask, boxes, points):
    W = clip.shape[-1]
    b = boxes.copy()
    if len(b):
        b[:, [0, 2]] = W - boxes[:, [2, 0]]
    p = points.copy()
    if len(p):
        p[:, 0] = W - 1 - points[:, 0]
    return clip[..., ::-1].copy(), None if mask is None else mask[:, ::-1].copy(), b, p


def vflip(clip, mask, boxes, points):
    H = clip.shape[-2]
    b = boxes.copy()
    if len(b):
        b[:, [1, 3]] = H - boxes[:, [3, 1]]
    p = points.copy()
    if len(p):
        p[:, 1] = H - 1 - points[:, 1]
    return clip[:, ::-1].copy(), None if mask is None else mask[::-1].copy(), b, p


def rotate(clip, mask, boxes, points, deg: float):
    """Rotate about the image centre by ``deg`` (counter-clockwise), same size, zeros outside.

    Frames bilinear, mask nearest; points map exactly; boxes become the envelope of their rotated
    corners (slightly larger than the target for non-right angles).
    """
    T, H, W = clip.shape
    M = cv2.getRotationMatrix2D(((W - 1) / 2.0, (H - 1) / 2.0), deg, 1.0)
    flags = dict(borderMode=cv2.BORDER_CONSTANT, borderValue=0)
    out = np.stack([cv2.warpAffine(f, M, (W, H), flags=cv2.INTER_LINEAR, **flags) for f in clip])
    m = None if mask is None else cv2.warpAffine(mask, M, (W, H), flags=cv2.INTER_NEAREST, **flags)
    p = points @ M[:, :2].T.astype(np.float32) + M[:, 2].astype(np.float32) if len(points) else points
    b = boxes
    if len(boxes):
        # corners in pixel-index coordinates are edge coordinates - 0.5
        c = np.stack([boxes[:, [0, 1]], boxes[:, [2, 1]], boxes[:, [0, 3]], boxes[:, [2, 3]]], 1) - 0.5
        rc = c @ M[:, :2].T.astype(np.float32) + M[:, 2].astype(np.float32) + 0.5
        b = np.concatenate([rc.min(1), rc.max(1)], axis=1).astype(np.float32)
    b, p = _keep(b, np.asarray(p, np.float32).reshape(-1, 2), H, W)
    return out, m, b, p


def pad_to_multiple(clip, mask, divisor: int):
    """Zero-pad bottom/right so H and W are multiples of ``divisor`` (labels unchanged)."""
    T, H, W = clip.shape
    Hp, Wp = int(math.ceil(H / divisor) * divisor), int(math.ceil(W / divisor) * divisor)
    if (Hp, Wp) == (H, W):
        return clip, mask
    out = np.zeros((T, Hp, Wp), clip.dtype)
    out[:, :H, :W] = clip
    m = None
    if mask is not None:
        m = np.zeros((Hp, Wp), mask.dtype)
        m[:H, :W] = mask
    return out, m
