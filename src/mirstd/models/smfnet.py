"""SMFNet: multi-scale spatio-temporal fusion box detector (spec ``smfnet.md``).

"A Simple and Effective Multi-Scale Time Fusion Network for Moving Infrared Dim-small Target
Detection" (UESTC-nnLab; public code ``psile/SMFNet``). Data flow (spec §1, §8)::

    clip (B,3,T,H,W) in [0,1] → ImageNet normalisation
      2D: YOLOX-S CSPDarknet on the key frame x[:, :, -1] → F2d₁ (s8), F2d₂ (s16), F2d₃ (s32)
      3D: ShuffleNetV2-3D 1.0x on the whole clip → Xᵀ (464, H/32, W/32)
      per scale k: Fₖ = STMEₖ(concat[F2dₖ, RepBlockₖ(nearest_up(Xᵀ))])          (three encoders)
      neck (top-down, "itsdt" 1×1 or "irdst" CSP) → 128×H/8×W/8 → YOLOX head
    → raw head output (B, 5+nc, H/8, W/8), channels [tx, ty, tw, th, obj, cls_0..]

Reference parameter counts (nc=1): ``neck="itsdt"`` 9,851,409; ``neck="irdst"`` 10,165,265.

Normalisation: the lab divides 8-bit RGB by 255 then applies ImageNet mean/std (spec §11.4). mirstd
clips are already in [0, 1], so ``forward`` applies ``(x − mean) / std`` directly — numerically the
lab's preprocessing. The lab's letterbox pad value 128 corresponds to 128/255 in [0, 1].

CPU speed (issue 15; same parameters, state dict and function, checked against the literal form in
``tests/models/test_fast_paths.py``): 2D maps in channels_last memory; the 3D branch in
channels_last_3d with its 1x1x1 convs as GEMMs, fused concat + shuffle and (eval) BN folded per
call; in eval the 3D stem runs as per-frame 2D convs with a separable max-pool and RepBlock
refines before upsampling. The training forward keeps the 3D stem and the faithful RepBlock order.
"""

from __future__ import annotations

import math
from functools import reduce
from pathlib import Path
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.fuse import drop_identity, eval_bn_folded
from mirstd.models.layers import pointwise_conv
from mirstd.models.registry import register_model
from mirstd.models.yolox_blocks import (
    TORCH_BN,
    BaseConv,
    CSPDarknet,
    CSPLayer,
    YOLOXDetector,
    YOLOXHead,
    lab_weights_init,
)

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)

# Lab recipe (spec §12; SSTNet train_IRDST.py, reused because SMFNet ships no training script).
SMFNET_RECIPE: dict[str, Any] = {
    "optimizer": "sgd",
    "nesterov": True,
    "momentum": 0.937,
    "weight_decay": 5e-4,  # on conv/linear weights only; BN2d weights and all biases undecayed
    "param_groups": "yolox_lab",
    "batch": 4,
    "lr": 6.25e-4,  # clip(batch/64·1e-2, 5e-4, 5e-2)
    "min_lr": 6.25e-6,  # clip(batch/64·1e-4, 5e-6, 5e-4)
    "lr_schedule": "warmcos",
    "epochs": 100,
    "warmup_epochs": 3,
    "warmup_lr_ratio": 0.1,
    "no_aug_epochs_min_lr": 5,  # epochs ≥ 95 run at min_lr
    "epoch_fraction": 0.2,  # each lab "epoch" = 1/5 of the training samples
    "ema": True,
    "ema_decay": 0.9999,
    "ema_tau": 2000,  # decay(u) = 0.9999·(1 − exp(−u/2000))
    "input_size": 512,
    "num_frames": 5,
    "pad": "repeat",
    "augment": False,
    "seed": 2023,
    "eval_conf": 0.001,
    "eval_nms_iou": 0.65,
}


# ----------------------------------------------------------------------------------------------
# 3D branch: ShuffleNetV2-3D (YOWO), spec §4
# ----------------------------------------------------------------------------------------------
# Speed (CPU inference, same parameters and state dict): the 3D branch runs in channels_last_3d
# memory (oneDNN's depthwise Conv3d is ~5x faster there), its 1x1x1 convs are GEMMs on the pixel
# rows (``PointwiseConv3d``), concat + channel shuffle are one interleaving copy, and in eval the
# stem conv + max-pool run per frame in 2D (``ShuffleNetV2_3D._stem_frames``).
class PointwiseConv3d(nn.Conv3d):
    """``nn.Conv3d`` with a 1x1x1 kernel (same parameters) computed by ``pointwise_conv``: one GEMM
    over the channels-last pixels instead of PyTorch's native ``slow_conv3d`` (used with 1 thread)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.kernel_size != (1, 1, 1) or self.stride != (1, 1, 1) or self.groups != 1:
            return super().forward(x)
        return pointwise_conv(x.contiguous(memory_format=torch.channels_last_3d), self.weight, self.bias)


def _conv_bn_3d(cin: int, cout: int, k: int, stride: int | tuple[int, int, int] = 1, groups: int = 1) -> list:
    conv = PointwiseConv3d if k == 1 else nn.Conv3d
    return [conv(cin, cout, k, stride, k // 2, groups=groups, bias=False), nn.BatchNorm3d(cout)]


def channel_shuffle(x: torch.Tensor, groups: int = 2) -> torch.Tensor:
    """View (B, g, C/g, …), swap the group axes, flatten back (interleaves the halves)."""
    b, c = x.shape[:2]
    return x.view(b, groups, c // groups, *x.shape[2:]).transpose(1, 2).reshape(x.shape)


def cat_shuffle(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``channel_shuffle(cat[a, b], 2)`` in one copy: output channel ``2i`` is ``a[i]``, ``2i + 1``
    is ``b[i]``; written pixel-major, so the result is channels_last_3d (4D: channels_last)."""
    perm = (0, *range(2, a.dim()), 1)
    pix = torch.stack([a.permute(perm), b.permute(perm)], dim=-1)  # (B, *spatial, C/2, 2)
    inv = (0, a.dim() - 1, *range(1, a.dim() - 1))
    return pix.view(*pix.shape[:-2], -1).permute(inv)


def run_folded(layers: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
    """``layers(x)`` with every Conv3d -> eval BatchNorm3d pair run as one folded conv (1x1x1 ones
    as a ``pointwise_conv`` GEMM); other layers (and train-mode BN) as they are."""
    mods = list(layers)
    i = 0
    while i < len(mods):
        m = mods[i]
        folded = eval_bn_folded(m, mods[i + 1]) if isinstance(m, nn.Conv3d) and i + 1 < len(mods) else None
        if folded is None:
            x = m(x)
        elif isinstance(m, PointwiseConv3d) and m.kernel_size == (1, 1, 1) and m.groups == 1:
            x = pointwise_conv(x.contiguous(memory_format=torch.channels_last_3d), *folded)
        else:
            x = F.conv3d(x, *folded, m.stride, m.padding, m.dilation, m.groups)
        i += 1 if folded is None else 2
    return x


class InvertedResidual3D(nn.Module):
    """ShuffleNetV2 unit in 3D; ``banch1``/``banch2`` names follow YOWO so its checkpoint loads.

    stride 2: concat[dw3³(s2)→BN→pw→BN→ReLU (x), pw→BN→ReLU→dw3³(s2)→BN→pw→BN→ReLU (x)];
    stride 1: concat[x₁, f(x₂)] on the channel halves. Both end with a 2-group channel shuffle.
    """

    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.stride = stride
        h = cout // 2
        bin_ = cin if stride == 2 else h
        if stride == 2:
            self.banch1 = nn.Sequential(
                *_conv_bn_3d(cin, cin, 3, stride, groups=cin), *_conv_bn_3d(cin, h, 1), nn.ReLU(inplace=True)
            )
        self.banch2 = nn.Sequential(
            *_conv_bn_3d(bin_, h, 1),
            nn.ReLU(inplace=True),
            *_conv_bn_3d(h, h, 3, stride, groups=h),
            *_conv_bn_3d(h, h, 1),
            nn.ReLU(inplace=True),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.contiguous(memory_format=torch.channels_last_3d)
        if self.stride == 2:
            return cat_shuffle(run_folded(self.banch1, x), run_folded(self.banch2, x))
        x1, x2 = x.chunk(2, dim=1)  # channel slices: read in place by the pointwise GEMM
        return cat_shuffle(x1, run_folded(self.banch2, x2))


class ShuffleNetV2_3D(nn.Module):
    """ShuffleNetV2-3D (width 1.0x: 24/116/232/464, repeats 4/8/4), no final conv or pooling.

    After the last stage the temporal axis is averaged when T' > 1 and squeezed (spec §4), giving
    one (B, C, H/32, W/32) map. 821,996 parameters at width 1.0.
    """

    def __init__(self, width: float = 1.0, in_channels: int = 3) -> None:
        super().__init__()
        stem = _even(24 * width)
        stages = [_even(c * width) for c in (116, 232, 464)]
        self.out_channels = stages[-1]
        self.conv1 = nn.Sequential(*_conv_bn_3d(in_channels, stem, 3, (1, 2, 2)), nn.ReLU(inplace=True))
        self.maxpool = nn.MaxPool3d(kernel_size=3, stride=2, padding=1)
        blocks: list[nn.Module] = []
        cin = stem
        for cout, reps in zip(stages, (4, 8, 4)):
            for i in range(reps):
                blocks.append(InvertedResidual3D(cin, cout, 2 if i == 0 else 1))
                cin = cout
        self.features = nn.Sequential(*blocks)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stem_uses_batch_stats:  # batch statistics need the whole stem output
            return self.forward_features(self.maxpool(self.conv1(x)))
        return self.forward_frames(pixel_frames(x))

    @property
    def stem_uses_batch_stats(self) -> bool:
        bn = self.conv1[1]
        return isinstance(bn, nn.BatchNorm3d) and (bn.training or bn.running_mean is None)

    def forward_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """Eval ``forward`` of a clip given as ``pixel_frames`` ``(B, T+2, H, W, C)``."""
        return self.forward_features(self._stem_frames(frames))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x)
        if x.shape[2] > 1:
            x = x.mean(dim=2, keepdim=True)
        return x.squeeze(2)

    def _stem_weights(self) -> tuple[torch.Tensor, torch.Tensor | None]:
        """The stem conv with its eval BN folded (or already folded by ``fuse()``)."""
        conv = self.conv1[0]
        return eval_bn_folded(conv, self.conv1[1]) or (conv.weight, conv.bias)

    def _stem_frames(self, frames: torch.Tensor) -> torch.Tensor:
        """``maxpool(ReLU(BN(conv1(x))))`` (eval) of ``pixel_frames(x)`` without 3D kernels: PyTorch
        runs this stride-(1,2,2) Conv3d with its slow native kernel (the faithful branch's costliest
        op) and MaxPool3d slowly.

        conv1 (kernel 3, temporal padding 1): output frame t sees frames t-1..t+1 of the
        time-padded clip, stacked per pixel into 9 channels (channels_last) -- one 2D conv
        (9 -> c, stride 2) per frame, on a buffer the allocator reuses. The 3x3x3 max-pool is
        separable (3x3 spatial per frame, then the max of 3 frames, stride 2, padding ignored), and
        the ReLU commutes with max, so it runs after the pooling on 4x less data."""
        b, tp, h, w, c = frames.shape
        weight, bias = self._stem_weights()
        w9 = weight.permute(0, 3, 4, 2, 1).reshape(weight.shape[0], 3, 3, 3 * c)  # (out, kh, kw, dt*c + c_i)
        w9 = w9.permute(0, 3, 1, 2)  # channels_last (out, 3c, kh, kw)
        pooled = []
        for i in range(tp - 2):
            x9 = torch.stack([frames[:, i + dt] for dt in range(3)], dim=3)  # (B, H, W, 3, C)
            x9 = x9.view(b, h, w, 3 * c).permute(0, 3, 1, 2)
            pooled.append(F.max_pool2d(F.conv2d(x9, w9, bias, 2, 1), 3, 2, 1))
        t_out = (tp - 3) // 2 + 1
        out = [reduce(torch.maximum, pooled[max(2 * i - 1, 0) : 2 * i + 2]) for i in range(t_out)]
        return torch.stack(out, dim=2).relu_().contiguous(memory_format=torch.channels_last_3d)


def pixel_frames(x: torch.Tensor) -> torch.Tensor:
    """Clip ``(B, C, T, H, W)`` -> frames ``(B, T+2, H, W, C)`` (pixel-major, a zero frame at each
    end: the stem conv's temporal padding), one copy."""
    b, c, t, h, w = x.shape
    out = x.new_zeros(b, t + 2, h, w, c)
    out[:, 1:-1] = x.permute(0, 2, 3, 4, 1)
    return out


def _even(v: float, minimum: int = 4) -> int:
    return max(minimum, int(round(v / 2)) * 2)


# ----------------------------------------------------------------------------------------------
# Per-scale encoder: RepBlock (self-refine) + STME (spec §5)
# ----------------------------------------------------------------------------------------------
class ChannelAttention(nn.Module):
    """CPCA channel attention: σ(fc2(ReLU(fc1(avg(u))))) + σ(fc2(ReLU(fc1(max(u))))) ∈ (0, 2)."""

    def __init__(self, c: int, reduction: int = 4) -> None:
        super().__init__()
        self.fc1 = nn.Conv2d(c, c // reduction, 1)
        self.fc2 = nn.Conv2d(c // reduction, c, 1)

    def _mlp(self, p: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.fc2(F.relu(self.fc1(p))))

    def forward(self, u: torch.Tensor) -> torch.Tensor:
        return self._mlp(F.adaptive_avg_pool2d(u, 1)) + self._mlp(F.adaptive_max_pool2d(u, 1))


class RepBlock(nn.Module):
    """Temporal self-refine (CPCA-style), spec §5.1. One 1×1 conv ``P`` (``conv``) is used three times::

        u   = a ⊙ GELU(P(X)),  a = ChannelAttention(GELU(P(X)))
        x0  = DW5×5(u);  s = Σ_{k∈7,11,21} DWk×1(DW1×k(x0)) + x0
        out = P(P(s) ⊙ u)                       (no sigmoid on the "attention", no residual)

    ``forward(x, size)`` computes ``u`` on the low-resolution map and upsamples it (nearest) to
    ``size``: P, GELU and channel scaling are point-wise and pooling of a nearest copy equals pooling
    of the original, so this equals ``forward(nearest_up(x))`` (used in eval and by ``fuse()``).
    """

    def __init__(self, c: int) -> None:
        super().__init__()
        self.conv = nn.Conv2d(c, c, 1)
        self.ca = ChannelAttention(c, 4)
        self.dconv5_5 = nn.Conv2d(c, c, 5, padding=2, groups=c)
        for k in (7, 11, 21):
            setattr(self, f"dconv1_{k}", nn.Conv2d(c, c, (1, k), padding=(0, k // 2), groups=c))
            setattr(self, f"dconv{k}_1", nn.Conv2d(c, c, (k, 1), padding=(k // 2, 0), groups=c))

    def forward(self, x: torch.Tensor, size: tuple[int, int] | None = None) -> torch.Tensor:
        # channels_last: oneDNN's depthwise kxl convs are 4-30x faster there than on NCHW (the 1x21
        # one most); the 1x1 conv P is a GEMM on the pixel rows (``pointwise_conv``).
        x = x.contiguous(memory_format=torch.channels_last)
        u = F.gelu(self._p(x))
        u = self.ca(u) * u
        if size is not None and tuple(u.shape[-2:]) != tuple(size):
            u = F.interpolate(u, size=size, mode="nearest")
        x0 = self.dconv5_5(u)
        s = x0
        for k in (7, 11, 21):
            s = s + getattr(self, f"dconv{k}_1")(getattr(self, f"dconv1_{k}")(x0))
        return self._p(self._p(s) * u)

    def _p(self, x: torch.Tensor) -> torch.Tensor:
        return pointwise_conv(x, self.conv.weight, self.conv.bias)


class CSAM(nn.Module):
    """DANet channel attention (Fu et al., CVPR 2019): E = X Xᵀ, A = softmax(rowmax(E) − E),
    out = γ · (A X) + X with scalar γ initialised to 0 (γ = 0 ⇒ exact identity)."""

    def __init__(self, gamma_trainable: bool = True) -> None:
        super().__init__()
        self.gamma = nn.Parameter(torch.zeros(1), requires_grad=gamma_trainable)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        q = x.reshape(b, c, h * w)
        energy = torch.bmm(q, q.transpose(1, 2))
        energy = energy.amax(dim=-1, keepdim=True) - energy
        out = torch.bmm(torch.softmax(energy, dim=-1), q).reshape(b, c, h, w)
        return self.gamma * out + x


class ChannelEncoder(nn.Module):
    """One scale's fusion: STME(concat[F2d, RepBlock(Xᵀ↑)]) (2D first), spec §5.2.

    ``fuse_convs``: CBL 1×1 → CBL 3×3 → CSAM → CBL 3×3 → Dropout(0.1) → Conv 1×1 (bias);
    CBL = Conv (no bias) → BN (PyTorch defaults) → LeakyReLU(0.1).
    """

    def __init__(self, c2d: int, c3d: int, out_dim: int = 128, csam_gamma_trainable: bool = True) -> None:
        super().__init__()
        self.refine = RepBlock(c3d)
        self.fuse_convs = nn.Sequential(
            BaseConv(c2d + c3d, out_dim, 1, act="lrelu", bn=TORCH_BN),
            BaseConv(out_dim, out_dim, 3, act="lrelu", bn=TORCH_BN),
            CSAM(csam_gamma_trainable),
            BaseConv(out_dim, out_dim, 3, act="lrelu", bn=TORCH_BN),
            nn.Dropout(0.1),
            nn.Conv2d(out_dim, out_dim, 1),
        )

    def forward(self, f2d: torch.Tensor, xt: torch.Tensor, upsample_late: bool = False) -> torch.Tensor:
        size = tuple(f2d.shape[-2:])
        if upsample_late:
            t = self.refine(xt, size=size)
        else:  # faithful order: nearest copy first, then refine at full resolution
            t = self.refine(F.interpolate(xt, size=size, mode="nearest") if xt.shape[-2:] != size else xt)
        return self.fuse_convs(torch.cat([f2d, t], 1))


# ----------------------------------------------------------------------------------------------
# Necks (spec §6)
# ----------------------------------------------------------------------------------------------
def _up(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2, mode="nearest")


class FusionLayer(nn.Sequential):
    """Dead layer of the ITSDT neck (built only with ``build_dead_layers``): 1×1 c→c/4→c/4→c/2."""

    def __init__(self, c: int) -> None:
        super().__init__(BaseConv(2 * c, c // 2, 1), BaseConv(c // 2, c // 2, 1), BaseConv(c // 2, c, 1))


class NeckITSDT(nn.Module):
    """Variant A (``SMFNET.py``): P4 = 1×1(concat[up F₃, F₂]); out = 1×1(concat[up P4, F₁])."""

    def __init__(self, c: int = 128, build_dead_layers: bool = False) -> None:
        super().__init__()
        self.lateral_conv0 = BaseConv(2 * c, c, 1)
        self.reduce_conv1 = BaseConv(2 * c, c, 1)
        if build_dead_layers:  # constructed but never called by the lab code
            self.C3_p4 = FusionLayer(c)
            self.C3_p3 = FusionLayer(c)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor) -> torch.Tensor:
        p4 = self.lateral_conv0(torch.cat([_up(f3), f2], 1))
        return self.reduce_conv1(torch.cat([_up(p4), f1], 1))


class NeckIRDST(nn.Module):
    """Variant B (``SMTFNET_IRDST.py``): P5 = 1×1(F₃); x = CSP₃(concat[up P5, F₂]); P4 = 1×1(x);
    out = CSP₃(concat[up P4, F₁]) with CSPLayer(2c→c, n=3, no shortcut)."""

    def __init__(self, c: int = 128, n: int = 3) -> None:
        super().__init__()
        self.lateral_conv0 = BaseConv(c, c, 1)
        self.C3_p4 = CSPLayer(2 * c, c, n, shortcut=False)
        self.reduce_conv1 = BaseConv(c, c, 1)
        self.C3_p3 = CSPLayer(2 * c, c, n, shortcut=False)

    def forward(self, f1: torch.Tensor, f2: torch.Tensor, f3: torch.Tensor) -> torch.Tensor:
        x = self.C3_p4(torch.cat([_up(self.lateral_conv0(f3)), f2], 1))
        return self.C3_p3(torch.cat([_up(self.reduce_conv1(x)), f1], 1))


class Backbone2D(nn.Module):
    """Wrapper so parameter names read ``backbone.backbone.dark2…`` as in YOLOX-S checkpoints.

    With ``dead_pafpn`` (variant B + ``build_dead_layers``) it also builds the YOLOX-S PAFPN layers
    that the lab's IRDST file constructs but never calls (617,472 parameters at YOLOX-S width).
    """

    def __init__(self, dep_mul: float, wid_mul: float, dead_pafpn: bool = False) -> None:
        super().__init__()
        self.backbone = CSPDarknet(dep_mul, wid_mul)
        if dead_pafpn:
            c3, c4, c5 = self.backbone.out_channels
            d = max(round(3 * dep_mul), 1)
            self.lateral_conv0 = BaseConv(c5, c4, 1)
            self.C3_p4 = CSPLayer(2 * c4, c4, d, shortcut=False)
            self.reduce_conv1 = BaseConv(c4, c3, 1)
            self.C3_p3 = CSPLayer(2 * c3, c3, d, shortcut=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        return self.backbone(x)


# ----------------------------------------------------------------------------------------------
# SMFNet
# ----------------------------------------------------------------------------------------------
class SMFNet(YOLOXDetector):
    """SMFNet detector. See the module docstring for the data flow and contract.

    Args:
        num_classes: detection classes (1 in every published run).
        neck: ``"itsdt"`` (1×1 neck, ITSDT-15K results) or ``"irdst"`` (CSP neck, IRDST results).
        width: channel multiplier for every branch (1.0 = the paper model; small values for tests).
        dep_mul: CSPDarknet depth multiplier (0.33 = YOLOX-S).
        build_dead_layers: also build the never-called lab layers (only to load lab checkpoints strictly).
        csam_gamma_trainable: the lab's optimiser never updates γ (faithful: False); mirstd default True.
        init: ``"lab"`` (conv N(0, 0.02), BN2d N(1, 0.02)) or ``"torch"`` (PyTorch defaults).
        prior_prob: if given, YOLOX bias prior for obj/cls logits (not used by the lab).
        pretrained_2d / pretrained_3d: local checkpoint paths (YOLOX-S / YOWO ShuffleNetV2-1.0x).
    """

    def __init__(
        self,
        num_classes: int = 1,
        neck: str = "itsdt",
        width: float = 1.0,
        dep_mul: float = 0.33,
        build_dead_layers: bool = False,
        csam_gamma_trainable: bool = True,
        init: str = "lab",
        prior_prob: float | None = None,
        pretrained_2d: str | None = None,
        pretrained_3d: str | None = None,
        conf: float = 0.001,
        nms_iou: float = 0.65,
        input_scale: float = 1.0,
    ) -> None:
        super().__init__()
        if not 0.25 <= float(input_scale) <= 8:
            raise ValueError(f"SMFNet: input_scale must be in [0.25, 8], got {input_scale}")
        self.input_scale = float(input_scale)
        if neck not in ("itsdt", "irdst"):
            raise ValueError(f"SMFNet: neck must be 'itsdt' or 'irdst', got {neck!r}")
        if init not in ("lab", "torch"):
            raise ValueError(f"SMFNet: init must be 'lab' or 'torch', got {init!r}")
        self.num_classes, self.neck_name = num_classes, neck
        self.conf, self.nms_iou = conf, nms_iou
        self.upsample_late = False  # train order; eval and fuse() reorder (exact, §RepBlock)
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1, 1), persistent=False)

        self.backbone = Backbone2D(dep_mul, 0.5 * width, dead_pafpn=build_dead_layers and neck == "irdst")
        self.backbone_3d = ShuffleNetV2_3D(width)
        c3d, dim = self.backbone_3d.out_channels, _even(128 * width)
        self.encoders = nn.ModuleList(
            [ChannelEncoder(c, c3d, dim, csam_gamma_trainable) for c in self.backbone.backbone.out_channels]
        )
        self.neck = NeckITSDT(dim, build_dead_layers) if neck == "itsdt" else NeckIRDST(dim)
        self.head = YOLOXHead(num_classes, dim, _even(256 * width))
        if init == "lab":
            lab_weights_init(self)
        if prior_prob is not None:
            self.head.init_prior(prior_prob)
        self.load_reports: dict[str, dict[str, Any]] = {}
        if pretrained_2d:
            self.load_reports["2d"] = load_yolox_backbone(self, pretrained_2d)
        if pretrained_3d:
            self.load_reports["3d"] = load_shufflenet3d(self, pretrained_3d)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """clip (B, 3, T, H, W) in [0, 1] → raw head output (B, 5+nc, H/8, W/8) = [tx, ty, tw, th, obj, cls…]."""
        self._check(clip)
        clip = self._rescale_input(clip)
        if self.backbone_3d.stem_uses_batch_stats:  # training
            x = (clip - self.mean) / self.std
            key, frames = x[:, :, -1], None
        else:  # eval: the 3D stem reads pixel-major frames; normalise straight into them
            frames = self._normalized_frames(clip)
            key = frames[:, -2].permute(0, 3, 1, 2)  # the last frame, channels_last
        # key frame = last (causal); channels_last: oneDNN's 2D convs run 1.1-2.4x faster there
        f2d = self.backbone(key.contiguous(memory_format=torch.channels_last))
        xt = self.backbone_3d(x) if frames is None else self.backbone_3d.forward_frames(frames)
        late = self.upsample_late or not self.training  # exact reordering; eval takes the cheap order
        f1, f2, f3 = (enc(f, xt, late) for enc, f in zip(self.encoders, f2d))
        return self.head(self.neck(f1, f2, f3)).contiguous()

    def _normalized_frames(self, clip: torch.Tensor) -> torch.Tensor:
        """``pixel_frames((clip - mean) / std)`` in one buffer, normalised in place."""
        b, c, t, h, w = clip.shape
        frames = clip.new_zeros(b, t + 2, h, w, c)
        inner = frames[:, 1:-1]
        torch.sub(clip.permute(0, 2, 3, 4, 1), self.mean.view(c), out=inner)
        inner.div_(self.std.view(c))
        return frames

    def fuse(self) -> nn.Module:
        """Inference copy with the exact rewrites of ``mirstd.models.fuse``: BN folded, CSAM blocks
        with γ = 0 dropped (γ·Y + X = X), RepBlock's point-wise part before the upsampling (which
        the eval forward does too)."""
        m = super().fuse()
        drop_identity(m, CSAM, lambda c: bool((c.gamma == 0).all()))
        m.upsample_late = True
        return m


# ----------------------------------------------------------------------------------------------
# Local checkpoint loading (never downloads)
# ----------------------------------------------------------------------------------------------
def _read_state(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint not found: {path}")
    obj = torch.load(path, map_location="cpu", weights_only=True)
    for key in ("model", "state_dict", "model_state"):
        if isinstance(obj, dict) and isinstance(obj.get(key), dict):
            obj = obj[key]
    if not isinstance(obj, dict):
        raise ValueError(
            f"{path}: expected a state dict (or a dict with 'model'/'state_dict'), got {type(obj)}"
        )
    return {(k[7:] if k.startswith("module.") else k): v for k, v in obj.items() if torch.is_tensor(v)}


def load_partial(module: nn.Module, state: dict[str, torch.Tensor], source: str = "") -> dict[str, Any]:
    """Copy tensors whose (mapped) name and shape match; report what loaded and what did not."""
    own = module.state_dict()
    loaded, mismatched, unexpected = [], [], []
    new = {}
    for k, v in state.items():
        if k not in own:
            unexpected.append(k)
        elif own[k].shape != v.shape:
            mismatched.append((k, tuple(v.shape), tuple(own[k].shape)))
        else:
            new[k] = v
            loaded.append(k)
    module.load_state_dict(new, strict=False)
    missing = [k for k in own if k not in new]
    return {
        "source": source,
        "loaded": len(loaded),
        "total": len(own),
        "missing": missing,
        "shape_mismatch": mismatched,
        "unexpected": unexpected,
    }


def load_yolox_backbone(model: SMFNet, path: str | Path) -> dict[str, Any]:
    """Load a local YOLOX-S (or SSTNet/SMFNet) checkpoint into the 2D CSPDarknet by name + shape.

    Accepted names: ``backbone.backbone.<x>`` (YOLOX, lab) or bare ``stem.*``/``dark*`` keys.
    """
    state = {}
    for k, v in _read_state(path).items():
        if k.startswith("backbone.backbone."):
            state[k[len("backbone.backbone.") :]] = v
        elif k.startswith(("stem.", "dark")):
            state[k] = v
    if not state:
        raise ValueError(f"{path}: no CSPDarknet keys ('backbone.backbone.*', 'stem.*', 'dark*') found")
    return load_partial(model.backbone.backbone, state, str(path))


def load_shufflenet3d(model: SMFNet, path: str | Path) -> dict[str, Any]:
    """Load a local YOWO ShuffleNetV2-3D checkpoint (``module.`` prefix stripped) by name + shape."""
    state = {}
    for k, v in _read_state(path).items():
        for prefix in ("backbone_3d.", "backbone3d.", ""):
            if k.startswith(prefix) and k[len(prefix) :].startswith(("conv1.", "features.")):
                state[k[len(prefix) :]] = v
                break
    if not state:
        raise ValueError(f"{path}: no ShuffleNetV2-3D keys ('conv1.*', 'features.*') found")
    return load_partial(model.backbone_3d, state, str(path))


@register_model("smfnet")
def smfnet(
    num_classes: int = 1,
    neck: str = "itsdt",
    width: float = 1.0,
    dep_mul: float = 0.33,
    **kwargs: Any,
) -> SMFNet:
    """SMFNet box detector (YOLOX-S 2D + ShuffleNetV2-3D, multi-scale fusion, stride-8 YOLOX head)."""
    if not (0 < width <= 4 and math.isfinite(width)):
        raise ValueError(f"smfnet: width must be in (0, 4], got {width}")
    return SMFNet(num_classes=num_classes, neck=neck, width=width, dep_mul=dep_mul, **kwargs)
