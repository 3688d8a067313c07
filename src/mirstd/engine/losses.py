"""Segmentation losses on logits ``(B, 1, H, W)`` against 0/1 masks of the same shape.

- :class:`SoftIoULoss` — the PSTFNet / deepmist loss (pstfnet spec A10), per sample with smooth 1:
  ``L = 1 - mean_b[(Σ p·g + 1) / (Σ p + Σ g - Σ p·g + 1)]``, ``p = sigmoid(logit)``.
  ``per_sample=False`` gives the DTUM ``fullySup`` variant (one ratio over the whole batch).
- :class:`BCELoss` — mean binary cross-entropy on logits.
- :class:`FocalLoss` — Lin et al. 2017, "Focal Loss for Dense Object Detection":
  ``FL = -α_t (1 - p_t)^γ log(p_t)``, mean over pixels.
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F


class SoftIoULoss(nn.Module):
    """Soft IoU loss on sigmoid probabilities (smooth ``smooth``; per sample unless told otherwise)."""

    def __init__(self, smooth: float = 1.0, per_sample: bool = True) -> None:
        super().__init__()
        self.smooth, self.per_sample = float(smooth), bool(per_sample)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.sigmoid(logits.float())
        g = target.float()
        dims = tuple(range(1, p.ndim)) if self.per_sample else tuple(range(p.ndim))
        inter = (p * g).sum(dims)
        ratio = (inter + self.smooth) / (p.sum(dims) + g.sum(dims) - inter + self.smooth)
        return 1.0 - ratio.mean()


class BCELoss(nn.Module):
    """Mean binary cross-entropy with logits (optional ``pos_weight`` for the rare target class)."""

    def __init__(self, pos_weight: float | None = None) -> None:
        super().__init__()
        self.pos_weight = pos_weight

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        pw = None if self.pos_weight is None else torch.tensor(float(self.pos_weight), device=logits.device)
        return F.binary_cross_entropy_with_logits(logits.float(), target.float(), pos_weight=pw)


class FocalLoss(nn.Module):
    """Sigmoid focal loss ``-α_t (1 - p_t)^γ log p_t`` averaged over pixels (α < 0 disables weighting)."""

    def __init__(self, alpha: float = 0.25, gamma: float = 2.0) -> None:
        super().__init__()
        self.alpha, self.gamma = float(alpha), float(gamma)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        x, g = logits.float(), target.float()
        ce = F.binary_cross_entropy_with_logits(x, g, reduction="none")  # = -log p_t
        p = torch.sigmoid(x)
        p_t = p * g + (1 - p) * (1 - g)
        loss = ce * (1 - p_t) ** self.gamma
        if self.alpha >= 0:
            loss = loss * (self.alpha * g + (1 - self.alpha) * (1 - g))
        return loss.mean()


LOSSES: dict[str, type[nn.Module]] = {"softiou": SoftIoULoss, "bce": BCELoss, "focal": FocalLoss}


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Loss by name (``softiou`` | ``bce`` | ``focal``); ``kwargs`` go to its constructor."""
    key = str(name).lower().replace("_", "").replace("-", "")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[key](**kwargs)
