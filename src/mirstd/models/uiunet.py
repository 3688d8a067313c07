"""UIU-Net: U-Net in U-Net for infrared small object detection.

Wu X., Hong D., Chanussot J., "UIU-Net: U-Net in U-Net for Infrared Small Object Detection",
IEEE TIP 32, 2023 (code ``danfenghong/IEEE_TIP_UIU-Net``, ``model/uiunet.py``, ``train.py``).
Key frame only, 3 input channels (ImageNet normalisation).

A U^2-Net of residual U-blocks ``RSU-L`` (a small L-level U-Net with a residual connection:
``RSU(x) = U_L(conv(x)) + conv(x)``; ``RSU-4F`` uses dilations 1, 2, 4, 8 instead of pooling)
in a 6-stage outer U-Net; widths (in, mid, out) = RSU7 (3, 32, 64), RSU6 (64, 32, 128),
RSU5 (128, 64, 256), RSU4 (256, 128, 512), RSU4F x2 (512, 256, 512); decoder RSU4F (1024, 256, 512),
RSU4 (1024, 128, 256), RSU5 (512, 64, 128), RSU6 (256, 32, 64), RSU7 (128, 16, 64). At decoder
levels 5..2 the skip and the upsampled deeper map pass through the asymmetric bi-directional
fusion (``AsymBiChaFuseReduce``, "interactive-cross attention")::

    h = ReLU(BN(1x1 x_high));  t = σ(BN(1x1(ReLU(BN(1x1 GAP h)))))        (top-down channel weights)
    b = σ(SA3(ReLU(BN(1x1(x_low · t)))))                                  (bottom-up spatial weights)
    out = [post(2 · x_low · t), post(2 · h · b)]    (post = ReLU(BN(conv3x3)), shared)

Side outputs ``d1..d6`` (3x3 convs, upsampled) and their 1x1 fusion ``d0``; ``forward`` returns
the seven logit maps ``(d0, d1, ..., d6)``; the loss (:class:`losses.MultiBCELoss`) sums their
BCE; ``predict`` = ``σ(d0)``. 50,541,461 parameters (50,540,309 with 1 input channel, BasicIRSTD);
108.60 GFLOPs (2 x MACs) at 1x3x1x256x256.
``width`` scales every channel count (tests use small widths; 1.0 = the reference).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.layers import IMAGENET_MEAN, IMAGENET_STD, FrameNorm, SpatialAttention, key_frame
from mirstd.models.losses import DeepSupervisionLoss, MultiBCELoss, build_loss
from mirstd.models.registry import register_model
from mirstd.models.resunet import HEAD_PRIOR, FastConv2d, init_head_prior

__all__ = ["RSU", "UIUNet", "AsymBiFuse", "uiunet"]


def _upsample_like(x: torch.Tensor, ref: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, size=ref.shape[2:], mode="bilinear", align_corners=False)


class REBNCONV(nn.Module):
    """``ReLU(BN(conv3x3 dilated))`` (reference names ``conv_s1``, ``bn_s1``)."""

    def __init__(self, cin: int, cout: int, dirate: int = 1) -> None:
        super().__init__()
        conv = FastConv2d if dirate == 1 else nn.Conv2d
        self.conv_s1 = conv(cin, cout, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block ``RSU-L`` (``dilated=False``: L-1 2x2 ceil-mode max-pools, the innermost
    conv dilated 2) or ``RSU-LF`` (``dilated=True``: no pooling, dilations 1, 2, 4, 8)."""

    def __init__(self, levels: int, cin: int, mid: int, cout: int, dilated: bool = False) -> None:
        super().__init__()
        self.levels, self.dilated = levels, dilated
        dil = [1, 2, 4, 8] if dilated else [1] * (levels - 1) + [2]
        if dilated and levels != 4:
            raise ValueError("RSU: the dilated variant has 4 levels")
        self.rebnconvin = REBNCONV(cin, cout, 1)
        self.add_module("rebnconv1", REBNCONV(cout, mid, dil[0]))
        for i in range(2, levels + 1):
            self.add_module(f"rebnconv{i}", REBNCONV(mid, mid, dil[i - 1]))
        for i in range(levels - 1, 0, -1):
            self.add_module(f"rebnconv{i}d", REBNCONV(2 * mid, cout if i == 1 else mid, dil[i - 1]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hin = self.rebnconvin(x)
        enc, h = [], hin
        for i in range(1, self.levels + 1):
            if i > 1 and not self.dilated and i < self.levels:
                h = F.max_pool2d(h, 2, 2, ceil_mode=True)
            h = getattr(self, f"rebnconv{i}")(h)
            enc.append(h)
        d = enc[-1]
        for i in range(self.levels - 1, 0, -1):
            d = getattr(self, f"rebnconv{i}d")(torch.cat([d, enc[i - 1]], 1))
            if i > 1 and not self.dilated:
                d = _upsample_like(d, enc[i - 2])
        return d + hin


class AsymBiFuse(nn.Module):
    """``AsymBiChaFuseReduce`` (see the module docstring); returns the two fused maps."""

    def __init__(self, high: int, low: int, out: int, r: int = 4) -> None:
        super().__init__()
        if low != out:
            raise ValueError("AsymBiFuse: low and out channels must match")
        b = max(out // r, 1)
        self.feature_high = nn.Sequential(nn.Conv2d(high, out, 1), nn.BatchNorm2d(out), nn.ReLU(True))
        self.topdown = nn.Sequential(
            nn.AdaptiveAvgPool2d((1, 1)),
            nn.Conv2d(out, b, 1),
            nn.BatchNorm2d(b),
            nn.ReLU(True),
            nn.Conv2d(b, out, 1),
            nn.BatchNorm2d(out),
            nn.Sigmoid(),
        )
        self.bottomup = nn.Sequential(
            nn.Conv2d(low, b, 1),
            nn.BatchNorm2d(b),
            nn.ReLU(True),
            SpatialAttention(3, sigmoid=False),
            nn.Sigmoid(),
        )
        self.post = nn.Sequential(FastConv2d(out, out, 3, padding=1), nn.BatchNorm2d(out), nn.ReLU(True))

    def forward(self, xh: torch.Tensor, xl: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        xh = self.feature_high(xh)
        td = self.topdown(xh)
        bu = self.bottomup(xl * td)
        return self.post(2 * xl * td), self.post(2 * xh * bu)


class UIUNet(SegmentMethod):
    """UIU-Net on the key frame (see the module docstring).

    Args:
        in_channels: 3 (grey replicated, the authors' setting).
        width: channel multiplier (1.0 = reference; tests use e.g. 0.125).
        head_prior: prior probability of the seven logit convs (None: PyTorch default = reference).
    """

    task = "segment"
    size_divisor = 32
    num_frames = 1

    def __init__(
        self,
        in_channels: int = 3,
        width: float = 1.0,
        num_frames: int = 1,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        head_prior: float | None = HEAD_PRIOR,
    ) -> None:
        super().__init__()
        self.in_channels, self.num_frames = int(in_channels), int(num_frames)
        self.norm = FrameNorm(self.in_channels, mean, std)

        def c(v: int) -> int:
            return max(int(round(v * width)), 1)

        ic = self.in_channels
        self.stage1 = RSU(7, ic, c(32), c(64))
        self.stage2 = RSU(6, c(64), c(32), c(128))
        self.stage3 = RSU(5, c(128), c(64), c(256))
        self.stage4 = RSU(4, c(256), c(128), c(512))
        self.stage5 = RSU(4, c(512), c(256), c(512), dilated=True)
        self.stage6 = RSU(4, c(512), c(256), c(512), dilated=True)
        self.stage5d = RSU(4, 2 * c(512), c(256), c(512), dilated=True)
        self.stage4d = RSU(4, 2 * c(512), c(128), c(256))
        self.stage3d = RSU(5, 2 * c(256), c(64), c(128))
        self.stage2d = RSU(6, 2 * c(128), c(32), c(64))
        self.stage1d = RSU(7, 2 * c(64), c(16), c(64))
        for i, ch in zip(range(1, 7), (c(64), c(64), c(128), c(256), c(512), c(512)), strict=True):
            self.add_module(f"side{i}", FastConv2d(ch, 1, 3, padding=1))
        self.outconv = nn.Conv2d(6, 1, 1)
        self.fuse5 = AsymBiFuse(c(512), c(512), c(512))
        self.fuse4 = AsymBiFuse(c(512), c(512), c(512))
        self.fuse3 = AsymBiFuse(c(256), c(256), c(256))
        self.fuse2 = AsymBiFuse(c(128), c(128), c(128))
        for i in range(1, 7):
            init_head_prior(getattr(self, f"side{i}"), head_prior)
        if head_prior is not None:  # d0 = outconv(d1..d6): average the priors, keep the start at p
            nn.init.constant_(self.outconv.weight, 1.0 / 6.0)
            nn.init.zeros_(self.outconv.bias)

    def forward_frame(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """Normalised frame -> logits ``(d0, d1, ..., d6)``, each ``(B, 1, H, W)``."""
        pool = lambda t: F.max_pool2d(t, 2, 2, ceil_mode=True)  # noqa: E731
        h1 = self.stage1(x)
        h2 = self.stage2(pool(h1))
        h3 = self.stage3(pool(h2))
        h4 = self.stage4(pool(h3))
        h5 = self.stage5(pool(h4))
        h6 = self.stage6(pool(h5))
        d5 = self.stage5d(torch.cat(self.fuse5(_upsample_like(h6, h5), h5), 1))
        d4 = self.stage4d(torch.cat(self.fuse4(_upsample_like(d5, h4), h4), 1))
        d3 = self.stage3d(torch.cat(self.fuse3(_upsample_like(d4, h3), h3), 1))
        d2 = self.stage2d(torch.cat(self.fuse2(_upsample_like(d3, h2), h2), 1))
        d1 = self.stage1d(torch.cat([_upsample_like(d2, h1), h1], 1))
        s1 = self.side1(d1)
        sides = [s1] + [
            _upsample_like(getattr(self, f"side{i}")(f), s1)
            for i, f in zip(range(2, 7), (d2, d3, d4, d5, h6), strict=True)
        ]
        return (self.outconv(torch.cat(sides, 1)), *sides)

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, ...]:
        return self.forward_frame(self.norm(key_frame(self, clip)))

    def set_loss(self, name: str | None, **kwargs: Any) -> None:
        """``None``/``"multibce"``: the authors' sum of BCE over the 7 maps; another name: that loss
        averaged over the 7 maps."""
        if name is None or str(name).lower().replace("_", "") == "multibce":
            self._loss_fn = MultiBCELoss()
        else:
            self._loss_fn = DeepSupervisionLoss(build_loss(name, **kwargs))

    def loss(self, outputs: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if getattr(self, "_loss_fn", None) is None:
            self.set_loss(None)
        return {"loss": self._loss_fn([o.float() for o in outputs], batch["mask"])}

    def final_logits(self, outputs: Any) -> torch.Tensor:
        """The fused map d0 (``forward`` returns d0..d6)."""
        return outputs[0]


@register_model("uiunet")
def uiunet(**kwargs: Any) -> UIUNet:
    """UIU-Net (U-Net in U-Net with interactive cross-attention fusion, Wu et al., IEEE TIP 2023); key frame only."""
    return UIUNet(**kwargs)
