"""Classical filters behind the model interface: a clip in, a probability map out, no parameters.

Frame counts: a multi-frame function may declare ``fn.num_frames`` — an int, or a function of the
effective keyword values (e.g. ``lambda kw: kw["L"]``) — so ``num_frames`` is what the method really
consumes; without a declaration a multi-frame method gets 5 frames. A clip longer than that is cut
to its last ``num_frames`` frames (the key frame is the last); a shorter one is a ValueError.
A function whose score is already calibrated across frames may declare ``fn.probability`` (score map
to probabilities); it replaces the ``mean_k_std`` rule, and ``k`` is then unused.
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np
import torch

from mirstd.classical.filters import MULTI_FRAME, SINGLE_FRAME, saliency_to_probability
from mirstd.models.base import Method, Prediction
from mirstd.models.registry import register_model


class ClassicalDetector(Method):
    """Wraps a NumPy saliency filter. ``forward``/``predict`` take (B, C, T, H, W) clips in [0, 1].

    The grey value is the channel mean; single-frame methods see the key (last) frame, multi-frame
    methods the whole stack. Scores are ``saliency_to_probability(S, k)``, so ``p > 0.5`` is the
    usual ``S > mu + k·sigma`` rule and sweeps rank pixels by S; a function with its own
    ``fn.probability`` (MCTD) is mapped by that instead.
    """

    task = "segment"
    default_metric = "iou"
    size_divisor = 1

    def __init__(
        self, name: str, fn: Callable[..., np.ndarray], multi_frame: bool, k: float = 5.0, **params: Any
    ):
        super().__init__()
        self.name, self.fn, self.multi_frame, self.k, self.params = name, fn, multi_frame, k, params
        self.in_channels = 1
        self.num_frames = frames_needed(fn, params) if multi_frame else 1
        # A dummy buffer gives the module a device and dtype like every other model.
        self.register_buffer("_anchor", torch.zeros(()), persistent=False)

    def _one(self, clip: np.ndarray) -> np.ndarray:
        grey = clip.mean(axis=0) * 255.0  # (T, H, W); 8-bit scale keeps the k·sigma rule meaningful
        if self.multi_frame:
            if grey.shape[0] < self.num_frames:
                raise ValueError(
                    f"{self.name}: needs a clip of {self.num_frames} frames, got T={grey.shape[0]}"
                )
            sal = self.fn(grey[-self.num_frames :], **self.params)
        else:
            sal = self.fn(grey[-1], **self.params)
        calibrated = getattr(self.fn, "probability", None)
        return calibrated(sal) if calibrated is not None else saliency_to_probability(sal, self.k)

    def saliency(self, clip: torch.Tensor) -> np.ndarray:
        """Raw saliency maps (B, H, W) on the 8-bit grey scale (for SCR gain / BSF / CG)."""
        out = []
        for c in clip.detach().cpu().double().numpy():
            grey = c.mean(axis=0) * 255.0
            arg = grey[-self.num_frames :] if self.multi_frame else grey[-1]
            out.append(self.fn(arg, **self.params))
        return np.stack(out)

    @torch.no_grad()
    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        probs = [self._one(c) for c in clip.detach().cpu().double().numpy()]
        p = torch.from_numpy(np.stack(probs)[:, None]).to(clip.device, torch.float32)
        # Logits, as a segment model's forward returns; clamp keeps them finite at p = 0.
        return torch.logit(p.clamp(1e-6, 1 - 1e-6))

    @torch.no_grad()
    def predict(self, clip: torch.Tensor) -> Prediction:
        return Prediction(scores=torch.sigmoid(self.forward(clip)))


def frames_needed(fn: Callable[..., np.ndarray], params: dict[str, Any]) -> int:
    """Frames a multi-frame function consumes with these keyword values (``fn.num_frames``)."""
    spec = getattr(fn, "num_frames", None)
    if spec is None:
        return 5
    if callable(spec):
        kw = {
            p.name: p.default for p in inspect.signature(fn).parameters.values() if p.default is not p.empty
        }
        kw.update(params)
        return int(spec(kw))
    return int(spec)


def _factory(name: str, fn: Callable[..., np.ndarray], multi: bool) -> Callable[..., ClassicalDetector]:
    def make(k: float = 5.0, **params: Any) -> ClassicalDetector:
        return ClassicalDetector(name, fn, multi, k, **params)

    # The filter's own keywords become the factory's signature, so model_args typos are caught.
    params = [p for p in inspect.signature(fn).parameters.values() if p.default is not p.empty]
    k_param = inspect.Parameter("k", inspect.Parameter.KEYWORD_ONLY, default=5.0)
    make.__signature__ = inspect.Signature(  # type: ignore[attr-defined]
        [k_param] + [p.replace(kind=inspect.Parameter.KEYWORD_ONLY) for p in params]
    )
    make.__doc__ = f"classical {'multi' if multi else 'single'}-frame filter: {(fn.__doc__ or '').strip().splitlines()[0]}"
    return make


for _name, _fn in SINGLE_FRAME.items():
    register_model(_name)(_factory(_name, _fn, False))
for _name, _fn in MULTI_FRAME.items():
    register_model(_name)(_factory(_name, _fn, True))
