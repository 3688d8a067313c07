"""Classical filters behind the model interface: a clip in, a probability map out, no parameters."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mirstd.classical.filters import MULTI_FRAME, SINGLE_FRAME, saliency_to_probability
from mirstd.models.registry import register_model


class ClassicalDetector(nn.Module):
    """Wraps a NumPy saliency filter. ``forward``/``predict`` take (B, C, T, H, W) clips in [0, 1].

    The grey value is the channel mean; single-frame methods see the key (last) frame, multi-frame
    methods the whole stack. Scores are ``saliency_to_probability(S, k)``, so ``p > 0.5`` is the
    usual ``S > mu + k·sigma`` rule and sweeps rank pixels by S.
    """

    task = "segment"
    size_divisor = 1

    def __init__(
        self, name: str, fn: Callable[..., np.ndarray], multi_frame: bool, k: float = 5.0, **params: Any
    ):
        super().__init__()
        self.name, self.fn, self.multi_frame, self.k, self.params = name, fn, multi_frame, k, params
        self.in_channels = 1
        self.num_frames = 5 if multi_frame else 1
        # A dummy buffer gives the module a device and dtype like every other model.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def _one(self, clip: np.ndarray) -> np.ndarray:
        grey = clip.mean(axis=0) * 255.0  # (T, H, W); 8-bit scale keeps the k·sigma rule meaningful
        sal = self.fn(grey if self.multi_frame else grey[-1], **self.params)
        return saliency_to_probability(sal, self.k)

    @torch.no_grad()
    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        probs = [self._one(c) for c in clip.detach().cpu().double().numpy()]
        p = torch.from_numpy(np.stack(probs)[:, None]).to(clip.device, torch.float32)
        # Logits, as a segment model's forward returns; clamp keeps them finite at p = 0.
        return torch.logit(p.clamp(1e-6, 1 - 1e-6))

    @torch.no_grad()
    def predict(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        return {"scores": torch.sigmoid(self.forward(clip))}


def _factory(name: str, fn: Callable[..., np.ndarray], multi: bool) -> Callable[..., ClassicalDetector]:
    def make(k: float = 5.0, **params: Any) -> ClassicalDetector:
        return ClassicalDetector(name, fn, multi, k, **params)

    make.__doc__ = f"classical {'multi' if multi else 'single'}-frame filter: {(fn.__doc__ or '').strip().splitlines()[0]}"
    return make


for _name, _fn in SINGLE_FRAME.items():
    register_model(_name)(_factory(_name, _fn, False))
for _name, _fn in MULTI_FRAME.items():
    register_model(_name)(_factory(_name, _fn, True))
