"""Constructed scenes with known answers (low-rank background + sparse targets) for the classical tests."""

from __future__ import annotations

import numpy as np


def make_scene(h: int = 64, w: int = 64, frames: int = 1, drift: float = 2.0, amp: float = 60.0):
    """(stack (T, H, W), target masks (T, H, W), sparse part of the last frame, background).

    Background: ``80 + 40 cos(2πy) + 30 sin(πx) + 20 y cos(πx)`` (8-bit scale), a sum of separable
    terms whose patch images and patch tensors have rank <= 9; it is the same in every frame.
    Targets: three 3-pixel blobs (peak ``amp``, two neighbours 0.8·amp) moving ``drift`` px/frame.
    """
    y = np.linspace(0, 1, h)[:, None]
    x = np.linspace(0, 1, w)[None, :]
    bg = 80 + 40 * np.cos(2 * np.pi * y) + 30 * np.sin(np.pi * x) + 20 * y * np.cos(np.pi * x)
    bg = np.broadcast_to(bg, (h, w)).copy()
    pts = [(int(h * 0.3), int(w * 0.3)), (int(h * 0.7), int(w * 0.55)), (int(h * 0.45), int(w * 0.7))]
    stack, masks = [], []
    for t in range(frames):
        s = np.zeros((h, w))
        for r, c in pts:
            c2 = c + int(round(drift * t))
            s[r, c2] = amp
            s[r + 1, c2] = 0.8 * amp
            s[r, c2 + 1] = 0.8 * amp
        stack.append(bg + s)
        masks.append(s > 0)
    return np.array(stack), np.array(masks), s, bg


def energy_split(sal: np.ndarray, sparse: np.ndarray, mask: np.ndarray) -> tuple[float, float]:
    """(energy of the map on the target pixels, energy off them), both / energy of the true sparse part."""
    e = float((sparse**2).sum())
    return float((sal[mask] ** 2).sum()) / e, float((sal[~mask] ** 2).sum()) / e
