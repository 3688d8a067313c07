"""Clip front-end of multi-frame networks: a longer, sparser clip registered onto its key frame.

The published networks see ``T`` consecutive frames. Where the camera follows the target over ground
clutter (``airground-real``: the scene moves 0.3-1.2 px per frame, the aircraft about 5 px per 20
frames relative to it), ``T = 5`` consecutive, unregistered frames carry about one pixel of relative
motion and temporal fusion has nothing to fuse. :func:`sparse_registered_clip` takes every
``step``-th frame of a ``(T - 1) * step + 1`` frame clip and warps each onto the key (last) frame by a
global translation (phase correlation, :func:`mirstd.classical.temporal.global_shift`), the
registration of the classical MCTD detector. It is input preprocessing, not a layer: no parameters,
no gradient, computed on the CPU with OpenCV.
"""

from __future__ import annotations

import numpy as np
import torch

from mirstd.classical.temporal import global_shift, shift_image

__all__ = ["clip_span", "register_clip", "sparse_registered_clip"]


def clip_span(num_frames: int, step: int) -> int:
    """Frames of input clip that ``num_frames`` frames ``step`` apart span: ``(num_frames - 1) * step + 1``."""
    return (int(num_frames) - 1) * int(step) + 1


def _valid_extent(frames: np.ndarray) -> tuple[int, int]:
    """Rows and columns of ``frames (..., H, W)`` before the bottom / right zero padding that callers
    add up to the model's ``size_divisor`` (all-zero in every frame): a static zero stripe would pull
    the registration towards no shift and be warped into the picture as a moving edge."""
    rows = np.flatnonzero(np.any(frames != 0, axis=tuple(range(frames.ndim - 2)) + (frames.ndim - 1,)))
    cols = np.flatnonzero(np.any(frames != 0, axis=tuple(range(frames.ndim - 1))))
    h, w = frames.shape[-2:]
    return (int(rows[-1]) + 1 if rows.size else h), (int(cols[-1]) + 1 if cols.size else w)


@torch.no_grad()
def register_clip(clip: torch.Tensor) -> torch.Tensor:
    """Every frame of ``clip (B, C, T, H, W)`` warped onto the last one by the global translation
    that phase correlation finds between their first channels (bilinear). Where a warp reads past
    its frame, the key frame's own pixel is used: no motion is shown there rather than a reflected
    edge, which would look like a moving target. Bottom / right zero padding is left as it is and
    neither registered nor read."""
    if clip.shape[2] < 2:
        return clip
    arr = clip.detach().to("cpu", torch.float64).numpy()
    out = arr.copy()
    for b in range(arr.shape[0]):
        h, w = _valid_extent(arr[b])
        seq = arr[b, :, :, :h, :w]
        grey = all(np.array_equal(seq[c], seq[0]) for c in range(1, seq.shape[0]))  # replicated grey
        for t in range(seq.shape[1] - 1):
            dx, dy = global_shift(seq[0, -1], seq[0, t])
            for c in range(1 if grey else seq.shape[0]):
                warped, inside = shift_image(seq[c, t], dx, dy)
                out[b, c, t, :h, :w] = np.where(inside, warped, seq[c, -1])
            if grey:
                out[b, 1:, t] = out[b, 0, t]
    return torch.from_numpy(out).to(device=clip.device, dtype=clip.dtype)


def sparse_registered_clip(clip: torch.Tensor, step: int = 1, align: bool = False) -> torch.Tensor:
    """Every ``step``-th frame of ``clip (B, C, T, H, W)`` counted back from the last (``T - 1`` must
    be a multiple of ``step``), registered onto the last frame when ``align``."""
    t = clip.shape[2]
    if (t - 1) % step:
        raise ValueError(f"clip of T={t} frames: T - 1 must be a multiple of frame_step={step}")
    if step > 1:
        clip = clip[:, :, ::step]
    return register_clip(clip) if align else clip
