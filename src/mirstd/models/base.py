"""The one method contract (docs/design.md, "Models"): every method, network or classical, is a
:class:`Method` — an ``nn.Module`` that declares

- ``task``: ``"segment"`` (score maps) or ``"detect"`` (scored boxes) — informative only: no caller
  branches on it, it names output folders and picks nothing else;
- ``in_channels``: channels per frame the clip must have (grey replicated by the data pipeline);
- ``num_frames``: clip length ``T`` it needs (``None``: any length);
- ``size_divisor``: H and W must be multiples of it (callers pad, then crop back);
- ``default_metric``: the metric ``best.pt`` is selected on unless the config names another;

and implements ``predict(clip) -> Prediction``; trainable methods also implement
``loss(outputs, batch) -> dict`` with the total under ``"loss"``. ``forward(clip)`` returns the raw
training output that ``loss`` consumes. :meth:`Method.fuse` returns an inference-only copy with exact
rewrites (SMFNet folds its BatchNorms); the default is the module itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

import torch
import torch.nn as nn

TASKS = ("segment", "detect")


@dataclass
class Prediction:
    """What ``predict`` returns for a batch of B clips.

    ``scores``: probabilities ``(B, 1, H, W)`` in [0, 1], or None (box-only methods); networks give
    them in float64 (:func:`probabilities`).
    ``boxes``: B tensors ``(N, 6)`` = edge box ``x1, y1, x2, y2``, score, class in input pixels, or
    None (mask-only methods; targets then come from the score map's components).
    """

    scores: torch.Tensor | None = None
    boxes: list[torch.Tensor] | None = None

    def __post_init__(self) -> None:
        if self.scores is None and self.boxes is None:
            raise ValueError("Prediction needs scores, boxes or both")


def probabilities(logits: torch.Tensor) -> torch.Tensor:
    """``sigmoid(logits)`` computed in float64: a network's score map.

    Why float64: float32's sigmoid is exactly 1 for every logit above about 16.6 (its spacing below 1
    is 6e-8), so a trained network's strongest false alarms and its targets tie at p = 1 and no
    threshold separates them: the Pd-Fa curve never reached Fa = 1e-5 (the demo's `–`). In float64
    they stay apart up to a logit of about 36.7; at any threshold a float32 sigmoid resolves, the
    binary maps are the same.
    """
    return torch.sigmoid(logits.double())


class Method(nn.Module):
    """Base class of every registered method (see the module docstring for the contract)."""

    task: ClassVar[str] = "segment"
    default_metric: ClassVar[str] = "iou"
    uses_masks: ClassVar[bool] = (
        False  # its loss trains on batch["mask"] (the trainer refuses mask-less data)
    )
    in_channels: int = 1
    num_frames: int | None = 1
    size_divisor: int = 1

    @property
    def trainable(self) -> bool:
        """True when the method has parameters to optimise (and so a ``loss``)."""
        return any(p.requires_grad for p in self.parameters())

    def predict(self, clip: torch.Tensor) -> Prediction:  # pragma: no cover - interface
        raise NotImplementedError

    def loss(self, outputs: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} has nothing to train")

    def set_loss(self, name: str | None, **kwargs: Any) -> None:
        """Choose the training loss by name; methods with a fixed objective accept only None."""
        if name is not None:
            raise ValueError(f"loss={name!r}: {type(self).__name__} has its own fixed loss; drop loss=")
        if kwargs:  # silently dropped arguments would train something other than what was asked
            raise ValueError(
                f"loss_args={kwargs!r}: {type(self).__name__} has its own fixed loss; drop loss_args="
            )

    def fuse(self) -> nn.Module:
        """An inference-only module with the same ``predict`` output (exact rewrites); default: self."""
        return self

    # -- streaming with cached per-frame features (mirstd.infer.stream) --------------------------
    def encode_frame(self, frame: torch.Tensor) -> Any:
        """Per-frame features of one frame ``(B, C, H, W)`` in [0, 1] (eval mode); only networks whose
        first stage sees each frame alone implement it, together with :meth:`predict_from_features`."""
        raise NotImplementedError(f"{type(self).__name__} has no per-frame stage to cache")

    def predict_from_features(self, feats: Any) -> Prediction:
        """``predict`` of the clip whose frames gave ``feats`` (``num_frames`` of :meth:`encode_frame`)."""
        raise NotImplementedError(f"{type(self).__name__} has no per-frame stage to cache")

    @property
    def streamable(self) -> bool:
        """True when :meth:`encode_frame` / :meth:`predict_from_features` are implemented (T > 1)."""
        return (
            type(self).encode_frame is not Method.encode_frame
            and type(self).predict_from_features is not Method.predict_from_features
            and isinstance(self.num_frames, int)
            and self.num_frames > 1
        )

    # -- ONNX export (mirstd.infer.export) ------------------------------------------------------
    export_outputs: ClassVar[tuple[str, ...]] = ("scores",)

    def export_forward(self, clip: torch.Tensor) -> Any:
        """What an ONNX export computes, tensors named by ``export_outputs``; default: the score map."""
        return self.predict(clip).scores.float()  # ONNX graphs stay float32 end to end

    def export_card(self) -> dict[str, Any]:
        """Extra model-card entries of an export, and ``fixed_size: True`` when H, W cannot be dynamic."""
        return {}

    def check_clip(self, clip: torch.Tensor) -> None:
        """Validate a clip against the declared contract; raise ValueError naming what is wrong."""
        name = type(self).__name__
        if clip.dim() != 5:
            raise ValueError(f"{name}: expected a clip (B, C, T, H, W), got shape {tuple(clip.shape)}")
        _, c, t, h, w = clip.shape
        if c != self.in_channels:
            raise ValueError(f"{name}: clip has {c} channels, model in_channels={self.in_channels}")
        if self.num_frames is not None and t != self.num_frames:
            raise ValueError(f"{name}: clip has T={t} frames, model num_frames={self.num_frames}")
        d = self.size_divisor
        if h % d or w % d:
            raise ValueError(f"{name}: H, W = {h}, {w} must be multiples of size_divisor={d}")


class SegmentMethod(Method):
    """A mask model: ``forward`` gives logits ``(B, 1, H, W)``; ``predict`` their sigmoid; ``loss``
    a segmentation loss on them (SoftIoU unless :meth:`set_loss` chose another)."""

    task: ClassVar[str] = "segment"
    default_metric: ClassVar[str] = "iou"
    uses_masks: ClassVar[bool] = True

    def set_loss(self, name: str | None, **kwargs: Any) -> None:
        """Choose the training loss by name (``softiou`` | ``bce`` | ``focal``; None keeps the default)."""
        from mirstd.models.losses import build_loss

        self._loss_fn = build_loss(name or "softiou", **kwargs)

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        fn = getattr(self, "_loss_fn", None)
        if fn is None:
            self.set_loss(None)
            fn = self._loss_fn
        total = fn(outputs.float(), batch["mask"])
        return {"loss": total}

    def final_logits(self, outputs: Any) -> torch.Tensor:
        """The map ``predict`` scores, from what ``forward`` returns (multi-output nets override it)."""
        return outputs

    @torch.no_grad()
    def predict(self, clip: torch.Tensor) -> Prediction:
        was_training = self.training
        self.eval()
        try:
            return Prediction(scores=probabilities(self.final_logits(self(clip))))
        finally:
            self.train(was_training)


def check_contract(model: nn.Module, name: str = "") -> nn.Module:
    """Raise TypeError naming what a registered factory's product lacks; return the model."""
    who = name or type(model).__name__
    if not isinstance(model, Method):
        raise TypeError(f"model {who!r}: {type(model).__name__} does not derive from mirstd.models.Method")
    problems = []
    if model.task not in TASKS:
        problems.append(f"task={model.task!r} (want one of {TASKS})")
    if not isinstance(model.in_channels, int) or model.in_channels < 1:
        problems.append(f"in_channels={model.in_channels!r}")
    if model.num_frames is not None and (not isinstance(model.num_frames, int) or model.num_frames < 1):
        problems.append(f"num_frames={model.num_frames!r}")
    if not isinstance(model.size_divisor, int) or model.size_divisor < 1:
        problems.append(f"size_divisor={model.size_divisor!r}")
    if not isinstance(model.default_metric, str) or not model.default_metric:
        problems.append(f"default_metric={model.default_metric!r}")
    if model.trainable and type(model).loss is Method.loss:
        problems.append("trainable but no loss()")
    if problems:
        raise TypeError(f"model {who!r} breaks the method contract: {', '.join(problems)}")
    return model
