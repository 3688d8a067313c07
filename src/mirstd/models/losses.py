"""Segmentation losses on logits ``(B, 1, H, W)`` against 0/1 masks of the same shape.

- :class:`SoftIoULoss` — the PSTFNet / deepmist loss (pstfnet spec A10), per sample with smooth 1:
  ``L = 1 - mean_b[(Σ p·g + 1) / (Σ p + Σ g - Σ p·g + 1)]``, ``p = sigmoid(logit)``.
  ``per_sample=False`` gives the DTUM ``fullySup`` variant (one ratio over the whole batch).
- :class:`BCELoss` — mean binary cross-entropy on logits.
- :class:`FocalLoss` — Lin et al. 2017, "Focal Loss for Dense Object Detection":
  ``FL = -α_t (1 - p_t)^γ log(p_t)``, mean over pixels.

Multi-output losses (``outputs`` = a list/tuple of logit maps): :class:`DeepSupervisionLoss`
(DNANet, mean over outputs), :class:`MultiBCELoss` (UIUNet, sum of BCE over its 7 maps),
:class:`ISNetLoss` (ISNet, mask SoftIoU + edge BCE/SoftIoU).
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


class SoftIoUBCELoss(nn.Module):
    """``SoftIoU + bce_weight * BCE``: the BCE term moves background pixels from the start.

    SoftIoU alone stalls on tiny targets at a ~0.5 initial prediction: its gradient on a background
    pixel is ``~ inter / union^2`` (1e-6 at 128x128 with a 3x3 target), so nothing moves until the
    background has fallen by chance; BCE's is 0.5 per pixel. Measured on the real data (issue 11).
    ``per_sample=False``: the SoftIoU of the whole batch (as :class:`SoftIoULoss`), so target-free
    crops do not each pull every pixel down.
    """

    def __init__(
        self,
        bce_weight: float = 1.0,
        smooth: float = 1.0,
        pos_weight: float | None = None,
        per_sample: bool = True,
    ) -> None:
        super().__init__()
        self.iou, self.bce, self.w = SoftIoULoss(smooth, per_sample), BCELoss(pos_weight), float(bce_weight)

    def forward(self, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        return self.iou(logits, target) + self.w * self.bce(logits, target)


class DeepSupervisionLoss(nn.Module):
    """Mean of a per-output loss over several logit maps (DNANet deep supervision:
    ``L = (1/N) Σ_n base(logits_n, g)``). ``base`` is a loss module or a ``LOSSES`` name
    (default ``softiou``); a single tensor is treated as one output."""

    def __init__(self, base: nn.Module | str = "softiou", **base_kwargs: Any) -> None:
        super().__init__()
        self.base = build_loss(base, **base_kwargs) if isinstance(base, str) else base

    def forward(
        self, outputs: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...], target: torch.Tensor
    ) -> torch.Tensor:
        outs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
        return sum(self.base(o, target) for o in outs) / len(outs)


class MultiBCELoss(nn.Module):
    """UIUNet's ``muti_bce_loss_fusion``: ``L = Σ_n BCE(σ(d_n), g)`` over the fused map and the six
    side outputs (a sum, not a mean), computed from logits (``BCE(σ(z), g)`` =
    ``BCEWithLogits(z, g)``, stable and autocast-safe)."""

    def forward(
        self, outputs: torch.Tensor | list[torch.Tensor] | tuple[torch.Tensor, ...], target: torch.Tensor
    ) -> torch.Tensor:
        outs = [outputs] if isinstance(outputs, torch.Tensor) else list(outputs)
        g = target.float()
        return sum(F.binary_cross_entropy_with_logits(o.float(), g) for o in outs)


def gradient_magnitude(x: torch.Tensor, eps: float = 1e-6) -> torch.Tensor:
    """ISNet's ``Get_gradient_nopadding`` per channel: central differences with zero padding,
    ``sqrt((x[i+1,j] - x[i-1,j])² + (x[i,j+1] - x[i,j-1])² + eps)``, shape kept."""
    c = x.shape[1]
    k = x.new_zeros(2, 1, 3, 3)
    k[0, 0, 0, 1], k[0, 0, 2, 1] = -1.0, 1.0  # vertical
    k[1, 0, 1, 0], k[1, 0, 1, 2] = -1.0, 1.0  # horizontal
    g = F.conv2d(x.reshape(-1, 1, *x.shape[-2:]), k, padding=1)
    mag = torch.sqrt(g[:, :1] ** 2 + g[:, 1:] ** 2 + eps)
    return mag.reshape(x.shape[0], c, *x.shape[-2:])


class ISNetLoss(nn.Module):
    """ISNet's training objective (``RuiZhang97/ISNet`` ``train_ISNet.py``) on ``(mask_logits,
    edge_logits)``::

        L = SoftIoU(σ(z), g) + w_edge · BCE(σ(e), E(g)) + SoftIoU(σ(σ(e)), E(g))

    SoftIoU per sample with smooth 0 (``SoftLoULoss1``); ``E(g)`` = :func:`gradient_magnitude`
    of the mask (values up to √2, as the reference; ``nn.BCELoss`` of current torch refuses
    targets > 1, the logit form below computes the same formula); ``w_edge`` = 10. ``double_sigmoid=True``
    keeps the reference quirk of applying ``SoftLoULoss1`` (which takes a sigmoid) to the edge
    output that already went through one; ``False`` uses ``σ(e)``. Returns the total; the parts are
    in ``last_parts``.
    """

    def __init__(self, edge_weight: float = 10.0, double_sigmoid: bool = True, smooth: float = 0.0) -> None:
        super().__init__()
        self.edge_weight, self.double_sigmoid = float(edge_weight), bool(double_sigmoid)
        self.iou = SoftIoULoss(smooth=smooth, per_sample=True)
        self.last_parts: dict[str, torch.Tensor] = {}

    def forward(
        self, outputs: tuple[torch.Tensor, torch.Tensor] | list[torch.Tensor], target: torch.Tensor
    ) -> torch.Tensor:
        mask_logits, edge_logits = outputs[0].float(), outputs[1].float()
        g = target.float()
        edge_gt = gradient_magnitude(g)
        l_img = self.iou(mask_logits, g)
        l_bce = F.binary_cross_entropy_with_logits(edge_logits, edge_gt)
        l_eiou = self.iou(torch.sigmoid(edge_logits) if self.double_sigmoid else edge_logits, edge_gt)
        self.last_parts = {"mask": l_img.detach(), "edge_bce": l_bce.detach(), "edge_iou": l_eiou.detach()}
        return l_img + self.edge_weight * l_bce + l_eiou


LOSSES: dict[str, type[nn.Module]] = {
    "softiou": SoftIoULoss,
    "bce": BCELoss,
    "focal": FocalLoss,
    "softioubce": SoftIoUBCELoss,
    "deepsup": DeepSupervisionLoss,
    "multibce": MultiBCELoss,
    "isnet": ISNetLoss,
}


def build_loss(name: str, **kwargs: Any) -> nn.Module:
    """Loss by name (``softiou`` | ``bce`` | ``focal`` | ``softiou_bce`` | ``deepsup`` | ``multibce`` | ``isnet``);
    ``kwargs`` go to its constructor."""
    key = str(name).lower().replace("_", "").replace("-", "")
    if key not in LOSSES:
        raise ValueError(f"unknown loss {name!r}; choose one of: {', '.join(LOSSES)}")
    return LOSSES[key](**kwargs)
