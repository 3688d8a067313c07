"""RDIAN: receptive-field and direction induced attention network.

Sun H., Bai J., Yang F., Bai X., "Receptive-Field and Direction Induced Attention Network for
Infrared Dim Small Target Detection With a Large-Scale Dataset IRDST", IEEE TGRS 61, 2023
(code ``sun11999/RDIAN``, ``model/segmentation.py``, ``model/direction.py``, ``model/cbam.py``).
Key frame only, 1 input channel normalised as the authors' loader (``Normalize(-0.1246, 1.0923)``
on [0, 1])::

    D_k = fixed 5x5 difference kernels (centre +1, one of 8 directions at distance 2: -1)
    md  = σ(D1·D5 + D2·D6 + D3·D7 + D4·D8)                       (opposite-direction products)
    o1  = CBL(x) (1 -> 16);  o = CBL_s2(o1 + o1·md) (16 -> 32, H/2)     (CBL = conv-BN-LeakyReLU)
    c_k = NewBlock^n_k(o) with kernels 1, 3, 5, 7 (n = 1, 2, 2, 2; NewBlock(y) = y + CBL(CBL(y)) 32->16->32)
    a   = CBAM(CBL(cat c_0..c_3))                                 (128 -> 32; CBAM ratio 32)
    y   = FCNHead(ReLU(up(a) + CBL_1x1(o1)))                      logits (B, 1, H, W)

The eight direction kernels are registered as frozen parameters (``requires_grad=False``) like the
reference, so the state dict and the parameter count match: 216,758 parameters (216,558 trainable);
7.38 GFLOPs (2 x MACs) at 1x1x1x256x256.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.layers import FCNHead, FrameNorm, key_frame
from mirstd.models.registry import register_model
from mirstd.models.resunet import HEAD_PRIOR, FastConv2d, init_head_prior

__all__ = ["RDIAN", "direction_kernels", "rdian"]

# (row, col) of the -1 tap of D1..D8 in the 5x5 kernel (centre (2, 2) = +1), reference order
_DIRECTIONS = ((0, 0), (0, 2), (0, 4), (2, 4), (4, 4), (4, 2), (4, 0), (2, 0))


def direction_kernels() -> torch.Tensor:
    """The eight fixed 5x5 kernels ``(8, 1, 5, 5)``: ``D_k x (p) = x(p) - x(p + δ_k)``."""
    k = torch.zeros(8, 1, 5, 5)
    for i, (r, c) in enumerate(_DIRECTIONS):
        k[i, 0, 2, 2], k[i, 0, r, c] = 1.0, -1.0
    return k


def _cbl(cin: int, cout: int, k: int = 3, pad: int = 1, stride: int = 1) -> nn.Sequential:
    conv = FastConv2d if stride == 1 else nn.Conv2d
    return nn.Sequential(conv(cin, cout, k, stride, pad, bias=False), nn.BatchNorm2d(cout), nn.LeakyReLU())


class _Direction(nn.Module):
    def __init__(self, kernel: torch.Tensor) -> None:
        super().__init__()
        self.weight = nn.Parameter(kernel.clone(), requires_grad=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(x, self.weight, padding=2)


class NewBlock(nn.Module):
    def __init__(self, c: int, k: int, pad: int) -> None:
        super().__init__()
        self.layer1 = _cbl(c, c // 2, k, pad)
        self.layer2 = _cbl(c // 2, c, k, pad)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.layer2(self.layer1(x))


class _BasicConv(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = FastConv2d(2, 1, 7, padding=3, bias=False)
        self.bn = nn.BatchNorm2d(1, eps=1e-5, momentum=0.01)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))


class _ChannelGate(nn.Module):
    def __init__(self, c: int, ratio: int) -> None:
        super().__init__()
        h = max(c // ratio, 1)
        self.mlp = nn.Sequential(nn.Flatten(), nn.Linear(c, h), nn.ReLU(), nn.Linear(h, c))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        att = self.mlp(F.adaptive_avg_pool2d(x, 1)) + self.mlp(F.adaptive_max_pool2d(x, 1))
        return x * torch.sigmoid(att)[:, :, None, None]


class _SpatialGate(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.spatial = _BasicConv()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pooled = torch.cat([x.amax(1, keepdim=True), x.mean(1, keepdim=True)], 1)  # max first (reference)
        return x * torch.sigmoid(self.spatial(pooled))


class CBAM(nn.Module):
    """CBAM of the RDIAN code: channel gate (MLP of Linear layers) then spatial gate (7x7 + BN)."""

    def __init__(self, c: int, ratio: int = 16) -> None:
        super().__init__()
        self.ChannelGate = _ChannelGate(c, ratio)
        self.SpatialGate = _SpatialGate()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.SpatialGate(self.ChannelGate(x))


def reference_init(module: nn.Module) -> None:
    """``Trainer.weight_init`` of the RDIAN ``train.py``: Conv2d ``N(0, 0.02)``; BN weight
    ``N(1, 0.02)``, BN bias ``N(0, 1)`` (``normal_(bias, 0)`` -- std 1, faithful)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.normal_(m.bias, 0.0)


class RDIAN(SegmentMethod):
    """RDIAN on the key frame (see the module docstring).

    Args:
        in_channels: 1 (the authors load grey images); the direction kernels need 1 channel.
        width: channel count of the trunk (32 in the reference; the stem has width / 2).
        init: ``"reference"`` (``reference_init``) or ``"default"`` (PyTorch's).
        mean, std: on [0, 1] inputs (reference: -0.1246, 1.0923).
        head_prior: prior probability of the head's final conv (None: reference init).
    """

    task = "segment"
    size_divisor = 2
    num_frames = 1

    def __init__(
        self,
        in_channels: int = 1,
        width: int = 32,
        init: str = "reference",
        num_frames: int = 1,
        mean: float | Sequence[float] = -0.1246,
        std: float | Sequence[float] = 1.0923,
        head_prior: float | None = HEAD_PRIOR,
    ) -> None:
        super().__init__()
        if in_channels != 1:
            raise ValueError(f"RDIAN: the direction kernels take 1 channel, got in_channels={in_channels}")
        if init not in ("reference", "default"):
            raise ValueError(f"RDIAN: init must be 'reference' or 'default', got {init!r}")
        self.in_channels, self.num_frames = 1, int(num_frames)
        self.norm = FrameNorm(1, mean, std)
        c, s = int(width), int(width) // 2
        self.conv1 = _cbl(1, s)
        self.conv2 = _cbl(s, c, stride=2)
        self.residual_block0 = nn.Sequential(NewBlock(c, 1, 0))
        self.residual_block1 = nn.Sequential(NewBlock(c, 3, 1), NewBlock(c, 3, 1))
        self.residual_block2 = nn.Sequential(NewBlock(c, 5, 2), NewBlock(c, 5, 2))
        self.residual_block3 = nn.Sequential(NewBlock(c, 7, 3), NewBlock(c, 7, 3))
        self.cbam = CBAM(c, c)
        self.conv_cat = _cbl(4 * c, c, 3, 1)
        self.conv_res = _cbl(s, c, 1, 0)
        kernels = direction_kernels()
        for i in range(8):
            self.add_module(f"d1{i + 1}", _Direction(kernels[i : i + 1]))
        self.head = FCNHead(c, 1)
        if init == "reference":
            reference_init(self)
        init_head_prior(self.head.block[-1], head_prior)

    def forward_frame(self, x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        d = [getattr(self, f"d1{i}")(x) for i in range(1, 9)]
        md = torch.sigmoid(d[0] * d[4] + d[1] * d[5] + d[2] * d[6] + d[3] * d[7])
        o1 = self.conv1(x)
        o = self.conv2(o1 + o1 * md)
        cat = torch.cat(
            [
                self.residual_block0(o),
                self.residual_block1(o),
                self.residual_block2(o),
                self.residual_block3(o),
            ],
            1,
        )
        a = self.cbam(self.conv_cat(cat))
        y = F.relu(F.interpolate(a, size=(h, w), mode="bilinear", align_corners=False) + self.conv_res(o1))
        return self.head(y)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, 1, T, H, W)`` in [0, 1] -> logits ``(B, 1, H, W)`` of the key frame."""
        return self.forward_frame(self.norm(key_frame(self, clip)))


@register_model("rdian")
def rdian(**kwargs: Any) -> RDIAN:
    """RDIAN (receptive-field and direction induced attention network, Sun et al., IEEE TGRS 2023); key frame only."""
    return RDIAN(**kwargs)
