"""Streaming inference with cached per-frame features: each new frame is encoded once.

A multi-frame network whose first stage runs on every frame alone offers the method pair

- ``Method.encode_frame(frame (B, C, H, W) in [0, 1]) -> features`` (eval mode), and
- ``Method.predict_from_features(list of num_frames features, oldest first) -> Prediction``,

with ``predict_from_features([encode_frame(clip[:, :, t]) for t]) == predict(clip)`` (up to float
rounding). :class:`Stream` keeps the last ``T-1`` frames' features, so a new frame costs one encoder
pass plus the temporal part, not ``T`` encoder passes. What is cached per model:

- ``pstfnet`` (``frame_step=1, align=False``, the paper's input; a registered clip depends on its
  key frame, so the shipped aligned PSTFNet re-runs the clip): the four per-frame encoder maps and,
  per PTAM level, the head Conv3d's temporal taps
  of each frame (``FrameFeatures``), so no head re-runs on older frames; the M3D branches compute
  only the window positions the last output reads, the P2D accumulation (kernels indexed by
  relative frame position), MSFM and the decoder run per frame — they see the current frame's
  PTAM output, which changes with every new frame (benchmarks/results/stream.json);
- ``dtum``: the per-frame ResUNet features (the DTUM runs per frame: its zero-padded temporal convs
  change every level's value at a frame as the window slides);
- ``smfnet``: nothing — the first layer of its 3-D branch is a 3x3x3 conv with temporal padding (and
  a temporal max-pool follows), so no stage is per-frame; its 2-D branch sees the key frame only.
  :func:`supports_stream` is False and the Predictor falls back to the full clip.

Padding at the sequence start follows :mod:`mirstd.infer.predictor`: ``repeat`` reuses the first
frame's features ``T-1`` times, ``zeros`` encodes one black frame, ``skip`` predicts nothing until
``T`` frames have been seen.
"""

from __future__ import annotations

import collections
from typing import Any

import torch

from mirstd.models.base import Method, Prediction

__all__ = ["Stream", "supports_stream"]


def supports_stream(net: Any) -> bool:
    """True when ``net`` implements ``encode_frame`` / ``predict_from_features`` (``Method.streamable``)."""
    return bool(net.streamable)


class Stream:
    """Rolling cache of the last ``T-1`` frames' features of a streaming-capable ``model``.

    >>> s = Stream(model, pad="repeat")
    >>> for frame in frames:            # (B, C, H, W) in [0, 1], H, W multiples of size_divisor
    ...     pred = s.step(frame)        # Prediction, or None while pad="skip" fills up
    """

    def __init__(self, model: Method, frames: int | None = None, pad: str = "repeat") -> None:
        if not supports_stream(model):
            raise TypeError(f"{type(model).__name__} offers no encode_frame/predict_from_features")
        if pad not in ("repeat", "zeros", "skip"):
            raise ValueError(f"pad={pad!r}: choose repeat, zeros or skip")
        self.model = model.eval()
        self.frames = int(frames or model.num_frames)
        if self.frames != model.num_frames:
            raise ValueError(
                f"Stream: frames={self.frames} but the model needs num_frames={model.num_frames}"
            )
        self.pad = pad
        self.reset()

    def reset(self) -> None:
        """Forget the cached features (call between sequences)."""
        self._feats: collections.deque[Any] = collections.deque(maxlen=self.frames)
        self._shape: tuple[int, ...] | None = None

    @torch.no_grad()
    def step(self, frame: torch.Tensor) -> Prediction | None:
        """Push one frame ``(B, C, H, W)`` and predict it from the cached features."""
        if frame.dim() != 4:
            raise ValueError(f"Stream.step: expected a frame (B, C, H, W), got shape {tuple(frame.shape)}")
        if self._shape is not None and tuple(frame.shape) != self._shape:
            raise ValueError(
                f"Stream.step: frame {tuple(frame.shape)} after frames {self._shape}; reset() first"
            )
        feat = self.model.encode_frame(frame)
        if self._shape is None:
            self._shape = tuple(frame.shape)
            if self.pad == "repeat":
                self._feats.extend([feat] * (self.frames - 1))
            elif self.pad == "zeros":
                zero = self.model.encode_frame(torch.zeros_like(frame))
                self._feats.extend([zero] * (self.frames - 1))
        self._feats.append(feat)
        if len(self._feats) < self.frames:
            return None
        return self.model.predict_from_features(list(self._feats))
