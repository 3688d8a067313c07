"""SSTNet — cost baseline for SMFNet (spec ``smfnet.md`` §15), trainable with the authors' objective.

Chen et al., "SSTNet: Sliced Spatio-Temporal Network with Cross-Slice ConvLSTM for Moving Infrared
Dim-Small Target Detection", IEEE TGRS 2024 (public code ``UESTC-nnLab/SSTNet``, ``nets/Network.py``,
``utils/utils_fit.py``).

Inference path (11,949,003 parameters, 122.87 GFLOPs at 1×3×5×512×512), key frame = last::

    per frame t (shared weights): YOLOX-S CSPDarknet + PAFPN down to P3 → Pₜ 128×H/8×W/8
    r = σ-gate(concat P₁..P₄);  c = mix(concat[conv²(r ⊙ P₅), P₅])
    g = conv²(Σᵢ wᵢ · mix_g(concat[Pᵢ, P₅]));  out = mix_o(concat[g, c])  → YOLOX head

Training objective (``utils_fit.py``): ``L = YOLOX(out, boxes) + L_motion`` with the training-only
motion branch (``motion_branch=True``)::

    Sₜ = LReLU(1x1(LReLU(conv5x5/4(xₜ))))                       (3 → 32 → 64 ch, H/4)
    hₜ = cross-slice ConvLSTM(S₁..S_T)                          (one slice, one layer, 64 ch)
    L_motion = MSE(concat P₁..P_T, maxpool_{H/8}(LReLU(1x1(concat h₁..h_T))))

With one slice the cell's multi-head state ``m_h, m_c`` is zero at every step and its
attention / motion-gate outputs feed only ``m_h``, which nothing reads: ``hₜ`` comes from
``conv([xₜ, h])`` and ``conv2([xₜ, h, xₜ, 0])`` alone, so only that path is computed (same loss
and gradients). ``keep_unused=True`` still builds the never-effective modules (``mapping0``, the two
1024-d attentions, ``motion``, ``mm1``, ``mm2``) so the parameter count (21,981,227 with the branch, of which 10,032,224 in it)
and the state dict equal the reference. The reference pools to a fixed 64×64 (= H/8 at its
512-px input) and resizes to a square; here the pool targets the P3 size, so any input size works.
``motion_branch=False`` (default) trains with the YOLOX loss alone and keeps the inference count.
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
    YOLOXDetector,
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


class CrossSliceConvLSTMCell(nn.Module):
    """``Cross_Slice_ConvLSTM_Node`` (one slice): gates ``σ/tanh(conv([x, h]) + conv2([x, h, x_head, m_h]))``,
    ``c' = f·c + i·g``, ``h' = o·tanh(c')``. ``keep_unused`` builds the modules that only feed
    ``m_h`` (see the module docstring)."""

    def __init__(self, dim: int = 64, keep_unused: bool = True, tokens: int = 32) -> None:
        super().__init__()
        self.dim = dim
        self.conv = nn.Conv2d(2 * dim, 4 * dim, 3, padding=1)
        self.conv2 = nn.Conv2d(4 * dim, 4 * dim, 3, padding=1)
        if keep_unused:
            self.motion = nn.Sequential(nn.Conv2d(3 * dim, 4 * dim, 3, padding=1))
            self.mm1 = nn.Conv2d(2 * dim, dim, 1, bias=False)
            self.mm2 = nn.Conv2d(2 * dim, dim, 1, bias=False)
            e = tokens * tokens
            self.past_attention = nn.MultiheadAttention(e, 8, dropout=0.1, batch_first=True)
            self.future_attention = nn.MultiheadAttention(e, 8, dropout=0.1, batch_first=True)

    def forward(self, x: torch.Tensor, h: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        zero = torch.zeros_like(h)  # m_h of slice 0
        a = self.conv(torch.cat([x, h], 1)) + self.conv2(torch.cat([x, h, x, zero], 1))
        i, f, o, g = torch.split(a, self.dim, 1)
        c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
        return torch.sigmoid(o) * torch.tanh(c), c


class _LSTMStack(nn.Module):
    """Holds the cell under the reference's key (``SSTNet.cell_list.00``)."""

    def __init__(self, dim: int, keep_unused: bool) -> None:
        super().__init__()
        self.cell_list = nn.ModuleDict({"00": CrossSliceConvLSTMCell(dim, keep_unused)})

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        """``seq (B, T, C, H, W)`` -> hidden states ``(B, T, C, H, W)``."""
        cell = self.cell_list["00"]
        b, t, ch, hh, ww = seq.shape
        h = seq.new_zeros(b, cell.dim, hh, ww)
        c = torch.zeros_like(h)
        out = []
        for k in range(t):
            h, c = cell(seq[:, k], h, c)
            out.append(h)
        return torch.stack(out, 1)


class SSTNet(YOLOXDetector):
    """SSTNet (T fixed by construction; 5 in every published run); ``motion_branch=True`` adds the
    training-only motion branch and its MSE loss (the authors' objective)."""

    def __init__(
        self,
        num_classes: int = 1,
        num_frames: int = 5,
        width: float = 1.0,
        dep_mul: float = 0.33,
        init: str = "lab",
        conf: float = 0.001,
        nms_iou: float = 0.65,
        motion_branch: bool = False,
        motion_weight: float = 1.0,
        keep_unused: bool = True,
        input_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"SSTNet: num_frames must be ≥ 2, got {num_frames}")
        if not 0.25 <= float(input_scale) <= 8:
            raise ValueError(f"SSTNet: input_scale must be in [0.25, 8], got {input_scale}")
        self.input_scale = float(input_scale)  # the lab's resize to 512 px, inside (see YOLOXDetector)
        self.motion_branch, self.motion_weight = bool(motion_branch), float(motion_weight)
        self.num_classes, self.num_frames = num_classes, num_frames
        self.conf, self.nms_iou = conf, nms_iou
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)
        self.backbone = PAFPNP3(dep_mul, 0.5 * width)
        c = self.backbone.out_channels
        self.neck = MotionNeck(c, num_frames)
        self.head = YOLOXHead(num_classes, c, 2 * c)
        if self.motion_branch:  # reference names: mapping0/1/2, SSTNet (the cross-slice ConvLSTM)
            hid = c // 2  # 64 at YOLOX-S widths
            if keep_unused:  # built, never called by the reference forward
                self.mapping0 = nn.Sequential(nn.Conv2d(c * num_frames, c, 1, bias=False), nn.LeakyReLU())
            self.mapping1 = nn.Sequential(
                nn.Conv2d(3, hid // 2, 5, 4, 1, bias=False),
                nn.LeakyReLU(),
                nn.Conv2d(hid // 2, hid, 1, bias=False),
                nn.LeakyReLU(),
            )
            self.mapping2 = nn.Sequential(
                nn.Conv2d(hid * num_frames, c * num_frames, 1, bias=False), nn.LeakyReLU()
            )
            self.SSTNet = _LSTMStack(hid, keep_unused)
        if init == "lab":
            lab_weights_init(self)

    def motion_loss(self, x: torch.Tensor, feats: list[torch.Tensor]) -> torch.Tensor:
        """``MSE(concat P_t, maxpool(mapping2(concat h_t)))`` (see the module docstring)."""
        seq = torch.stack([self.mapping1(x[:, :, t]) for t in range(x.shape[2])], 1)
        hs = self.SSTNet(seq)
        m = self.mapping2(hs.flatten(1, 2))
        m = F.adaptive_max_pool2d(m, feats[0].shape[-2:])
        return F.mse_loss(torch.cat(feats, 1).float(), m.float())

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip (B, 3, T, H, W) in [0, 1] → raw head output (B, 5+nc, H/8, W/8)."""
        self._check(clip)
        if clip.shape[2] != self.num_frames:
            raise ValueError(
                f"SSTNet was built for T={self.num_frames} frames; got a clip with T={clip.shape[2]}"
            )
        x = (self._rescale_input(clip) - self.mean) / self.std
        feats = [self.backbone(x[:, :, t]) for t in range(x.shape[2])]  # per frame, as the lab does
        out = self.head(self.neck(feats))
        if self.motion_branch and self.training:
            return out, self.motion_loss(x, feats)
        return out

    def loss(self, outputs: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """YOLOX loss (SimOTA); with the motion branch in training ``+ motion_weight · L_motion``."""
        if isinstance(outputs, tuple):
            raw, motion = outputs
            parts = super().loss(raw, batch)
            parts["loss"] = parts["loss"] + self.motion_weight * motion
            parts["motion"] = motion.detach()
            return parts
        return super().loss(outputs, batch)


@register_model("sstnet")
def sstnet(num_classes: int = 1, num_frames: int = 5, **kwargs: Any) -> SSTNet:
    """SSTNet (YOLOX-S per frame + motion-coupling neck, Chen et al., TGRS 2024); motion_branch=True trains with its motion loss."""
    return SSTNet(num_classes=num_classes, num_frames=num_frames, **kwargs)
