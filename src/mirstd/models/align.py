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


@torch.no_grad()
def register_clip(clip: torch.Tensor) -> torch.Tensor:
    """Every frame of ``clip (B, C, T, H, W)`` warped onto the last one by the global translation
    that phase correlation finds between their first channels (bilinear). Where a warp reads past
    its frame, the key frame's own pixel is used: no motion is shown there rather than a reflected
    edge, which would look like a moving target."""
    if clip.shape[2] < 2:
        return clip
    arr = clip.detach().to("cpu", torch.float64).numpy()
    out = arr.copy()
    for b in range(arr.shape[0]):
        key = arr[b, 0, -1]
        for t in range(arr.shape[2] - 1):
            dx, dy = global_shift(key, arr[b, 0, t])
            for c in range(arr.shape[1]):
                warped, inside = shift_image(arr[b, c, t], dx, dy)
                out[b, c, t] = np.where(inside, warped, arr[b, c, -1])
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
