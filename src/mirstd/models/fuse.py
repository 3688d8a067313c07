"""Exact inference-time rewrites used by the models' ``fuse()``: conv-BN folding, channels-last weights, identity removal, late upsampling.

Each rewrite keeps the function (up to float rounding, < 1e-4 on SMFNet's raw output):

- **Conv-BN folding** (eval BN is affine): ``BN(W∗x) = (γ/σ)·W∗x + (β − γμ/σ)`` with σ = √(var + eps),
  so ``W' = W·γ/σ`` per output channel and ``b' = β + (b − μ)·γ/σ``.
- **channels_last** memory format for 2D conv weights (channels_last_3d for 3D), which oneDNN runs
  faster on CPU.
- **CSAM with γ = 0** is an exact identity (γ·Y + X) and is replaced by ``nn.Identity``.
- **Point-wise before nearest upsampling**: SMFNet's RepBlock computes ``a ⊙ GELU(P(X))`` on the
  stride-32 map and upsamples afterwards (``SMFNet.upsample_late = True``); a 1×1 conv, GELU and a
  per-channel scale commute with nearest copying, and global avg/max pooling of a nearest copy equals
  that of the original map.
"""

from __future__ import annotations

import copy
from collections.abc import Callable

import torch
import torch.nn as nn

_CONVS = (nn.Conv2d, nn.Conv3d)
_BNS = (nn.BatchNorm2d, nn.BatchNorm3d)


def eval_bn_folded(
    conv: nn.Conv2d | nn.Conv3d, bn: nn.Module
) -> tuple[torch.Tensor, torch.Tensor | None] | None:
    """``(weight, bias)`` of ``conv`` with ``bn`` folded in (the formula above) when ``bn`` is an
    eval BatchNorm with running statistics, else None. Differentiable and computed per call (a few
    weight-sized ops), so an eval forward skips the BN pass without a fused copy of the model."""
    if not isinstance(bn, _BNS) or bn.training or bn.running_mean is None or bn.running_var is None:
        return None
    scale = torch.rsqrt(bn.running_var + bn.eps)
    if bn.affine:
        scale = bn.weight * scale
    shift = -bn.running_mean * scale + (bn.bias if bn.affine else 0)
    weight = conv.weight * scale.reshape(-1, *([1] * (conv.weight.ndim - 1)))
    return weight, shift if conv.bias is None else shift + conv.bias * scale


@torch.no_grad()
def fuse_conv_bn(conv: nn.Conv2d | nn.Conv3d, bn: nn.BatchNorm2d | nn.BatchNorm3d) -> nn.Module:
    """Return a conv equal to ``bn(conv(x))`` in eval mode (see module docstring for the formula)."""
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("fuse_conv_bn: BatchNorm without running statistics cannot be folded")
    fused = copy.deepcopy(conv)
    scale = (bn.weight if bn.affine else torch.ones_like(bn.running_var)) / torch.sqrt(
        bn.running_var + bn.eps
    )
    shift = bn.bias if bn.affine else torch.zeros_like(bn.running_mean)
    fused.weight.copy_(conv.weight * scale.reshape(-1, *([1] * (conv.weight.ndim - 1))))
    b = conv.bias if conv.bias is not None else torch.zeros_like(bn.running_mean)
    fused.bias = nn.Parameter(shift + (b - bn.running_mean) * scale)
    return fused


def fold_batchnorm(model: nn.Module) -> int:
    """Fold every BN that directly follows a conv, in place. Handles modules with ``conv``/``bn``
    attributes run as ``bn(conv(x))`` (mirstd ``BaseConv``, which sets ``folds_bn = True``) and
    Conv→BN pairs inside ``nn.Sequential``. Returns the number of folded pairs."""
    n = 0
    for m in list(model.modules()):
        if getattr(m, "folds_bn", False) and isinstance(m.bn, _BNS):
            m.conv, m.bn = fuse_conv_bn(m.conv, m.bn), nn.Identity()
            n += 1
        elif isinstance(m, nn.Sequential):
            keys = list(m._modules)
            for a, b in zip(keys[:-1], keys[1:]):
                conv, bn = m._modules[a], m._modules[b]
                if isinstance(conv, _CONVS) and isinstance(bn, _BNS) and conv.out_channels == bn.num_features:
                    m._modules[a], m._modules[b] = fuse_conv_bn(conv, bn), nn.Identity()
                    n += 1
    return n


def to_channels_last(model: nn.Module) -> nn.Module:
    """channels_last (4D) / channels_last_3d (5D) memory format for conv weights, in place."""
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last)
        elif isinstance(m, nn.Conv3d):
            m.weight.data = m.weight.data.contiguous(memory_format=torch.channels_last_3d)
    return model


def drop_identity(model: nn.Module, kind: type[nn.Module], is_identity: Callable[[nn.Module], bool]) -> int:
    """Replace every ``kind`` submodule for which ``is_identity(m)`` by ``nn.Identity``. Returns the count."""
    n = 0
    for parent in list(model.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, kind) and is_identity(child):
                setattr(parent, name, nn.Identity())
                n += 1
    return n


def inference_copy(model: nn.Module, channels_last: bool = True) -> nn.Module:
    """An eval-mode deep copy with BN folded, optional channels_last weights and gradients off.

    Run it under ``torch.inference_mode()`` (``predict`` does). The copy is for inference only:
    folded BN has no running statistics left to update.
    """
    m = copy.deepcopy(model).eval()
    fold_batchnorm(m)
    if channels_last:
        to_channels_last(m)
    for p in m.parameters():
        p.requires_grad_(False)
    return m
