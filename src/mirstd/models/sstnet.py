"""SSTNet inference network — cost baseline for SMFNet (spec ``smfnet.md`` §15).

Chen et al., "SSTNet: Sliced Spatio-Temporal Network with Cross-Slice ConvLSTM for Moving Infrared
Dim-Small Target Detection", IEEE TGRS 2024 (public code ``UESTC-nnLab/SSTNet``, ``nets/Network.py``).

Only the path executed at inference is built (11,949,003 parameters, 122.87 GFLOPs at
1×3×5×512×512); the training-only motion-coordination branch (ConvLSTM + attention, MSE "motion
loss") is not, so the model trains with the plain YOLOX loss. Data flow, key frame = last::

    per frame t (shared weights): YOLOX-S CSPDarknet + PAFPN down to P3 → Pₜ 128×H/8×W/8
    r = σ-gate(concat P₁..P₄);  c = mix(concat[conv²(r ⊙ P₅), P₅])
    g = conv²(Σᵢ wᵢ · mix_g(concat[Pᵢ, P₅]));  out = mix_o(concat[g, c])  → YOLOX head
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.registry import register_model
from mirstd.models.smfnet import IMAGENET_MEAN, IMAGENET_STD
from mirstd.models.yolox_blocks import (
    BaseConv,
    CSPDarknet,
    CSPLayer,
    YOLOXDetectorMixin,
    YOLOXHead,
    lab_weights_init,
    yolox_depth,
)


class PAFPNP3(nn.Module):
    """YOLOX-S CSPDarknet + the top-down PAFPN half down to P3 (4,830,144 parameters at YOLOX-S)."""

    def __init__(self, dep_mul: float = 0.33, wid_mul: float = 0.5) -> None:
        super().__init__()
        self.backbone = CSPDarknet(dep_mul, wid_mul)
        c3, c4, c5 = self.backbone.out_channels
        d = yolox_depth(dep_mul, 3)
        self.out_channels = c3
        self.lateral_conv0 = BaseConv(c5, c4, 1)
        self.C3_p4 = CSPLayer(2 * c4, c4, d, shortcut=False)
        self.reduce_conv1 = BaseConv(c4, c3, 1)
        self.C3_p3 = CSPLayer(2 * c3, c3, d, shortcut=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c3, c4, c5 = self.backbone(x)
        p4 = self.C3_p4(torch.cat([F.interpolate(self.lateral_conv0(c5), scale_factor=2.0), c4], 1))
        return self.C3_p3(torch.cat([F.interpolate(self.reduce_conv1(p4), scale_factor=2.0), c3], 1))


def _pair(cin: int, mid: int, cout: int, last_act: str = "silu") -> nn.Sequential:
    return nn.Sequential(BaseConv(cin, mid, 3), BaseConv(mid, cout, 3, act=last_act))


class MotionNeck(nn.Module):
    """SSTNet's motion-coupling neck, all BaseConv 3×3 (4,722,693 parameters at c=128)."""

    def __init__(self, c: int = 128, num_frames: int = 5) -> None:
        super().__init__()
        n_ref = num_frames - 1
        self.conv_ref = _pair(n_ref * c, 2 * c, c, last_act="sigmoid")  # gate from the reference frames
        self.conv_cur = _pair(c, c, c)
        self.conv_cr_mix = _pair(2 * c, 2 * c, c)
        self.conv_gl = _pair(2 * c, 2 * c, c)  # shared over the reference frames
        self.weight = nn.ParameterList(
            [nn.Parameter(torch.tensor(0.25)) for _ in range(num_frames)]
        )  # last unused
        self.conv_gl_mix = _pair(c, c, c)
        self.conv_final = _pair(2 * c, 2 * c, c)

    def forward(self, feats: list[torch.Tensor]) -> torch.Tensor:
        refs, key = feats[:-1], feats[-1]
        r = self.conv_ref(torch.cat(refs, 1))
        c = self.conv_cr_mix(torch.cat([self.conv_cur(r * key), key], 1))
        g = sum(self.weight[i] * self.conv_gl(torch.cat([p, key], 1)) for i, p in enumerate(refs))
        g = self.conv_gl_mix(g)
        return self.conv_final(torch.cat([g, c], 1))


class SSTNet(YOLOXDetectorMixin, nn.Module):
    """SSTNet inference network (T fixed by construction; 5 in every published run)."""

    def __init__(
        self,
        num_classes: int = 1,
        num_frames: int = 5,
        width: float = 1.0,
        dep_mul: float = 0.33,
        init: str = "lab",
        conf: float = 0.001,
        nms_iou: float = 0.65,
    ) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"SSTNet: num_frames must be ≥ 2, got {num_frames}")
        self.num_classes, self.num_frames = num_classes, num_frames
        self.conf, self.nms_iou = conf, nms_iou
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.backbone = PAFPNP3(dep_mul, 0.5 * width)
        c = self.backbone.out_channels
        self.neck = MotionNeck(c, num_frames)
        self.head = YOLOXHead(num_classes, c, 2 * c)
        if init == "lab":
            lab_weights_init(self)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip (B, 3, T, H, W) in [0, 1] → raw head output (B, 5+nc, H/8, W/8)."""
        self._check(clip)
        if clip.shape[2] != self.num_frames:
            raise ValueError(
                f"SSTNet was built for T={self.num_frames} frames; got a clip with T={clip.shape[2]}"
            )
        x = (clip - self.mean) / self.std
        feats = [self.backbone(x[:, :, t]) for t in range(x.shape[2])]  # per frame, as the lab does
        return self.head(self.neck(feats))


@register_model("sstnet")
def sstnet(num_classes: int = 1, num_frames: int = 5, **kwargs: Any) -> SSTNet:
    """SSTNet inference network (YOLOX-S per frame + motion-coupling neck); cost baseline for SMFNet."""
    return SSTNet(num_classes=num_classes, num_frames=num_frames, **kwargs)
