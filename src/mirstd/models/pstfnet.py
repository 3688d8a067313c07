"""PSTFNet: progressive spatio-temporal feature fusion network (spec ``pstfnet.md`` Part A).

ZENG D., WEI J.-M., ZHANG J.-J., CHANG L., HUANG W., "Progressive spatio-temporal feature fusion
network for infrared small-dim target detection", J. Infrared Millim. Waves.

Pipeline for a clip ``(B, 3, T, H, W)``, current frame last:

1. shared per-frame ResCBAM encoder (8/16/32/64 ch at H, H/2, H/4, H/8), §A3;
2. PTAM at every scale: ``P = R + R * G_P2D(F) * G_M3D(F)``, ``R`` = current-frame feature, §A4;
3. MSFM: pyramid pooling to an ``s x s`` grid, cross-scale attention over multi-scale tokens,
   per-group FFN, TopFormer-style gated injection back into each scale, §A5;
4. plain residual U-Net decoder on the gated maps, 1x1 head -> logits of the last frame, §A6.

Paper mode (``img_size=384, num_frames=5``): 1,653,157 parameters, 37.02 GFLOPs (2 x MAC).

Speed (``fast=True``, the default; ``fast=False`` is the literal reference): the encoder runs once
on the ``B*T`` frames with per-frame BN statistics (``FrameBatchNorm2d``, = the lab's one call per
frame, running statistics included); every ``nn.Conv3d`` of PTAM is evaluated with 2-D convs
(``_conv3d_frames``: block-Toeplitz conv over frames stacked on channels for narrow inputs, else
all taps in one conv over ``batch x time`` and a shifted sum with a hand-written backward); 2-D
convs compute their input gradient as a forward conv (``FastConv2d``). In eval mode the gate tails
compute only the last time slice, the only one used. Parameters stay ``nn.Conv3d`` / ``nn.Conv2d``
/ ``nn.BatchNorm2d`` so state dicts are identical to the ``fast=False`` path.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.align import clip_span, sparse_registered_clip
from mirstd.models.base import SegmentMethod
from mirstd.models.fuse import eval_bn_folded
from mirstd.models.registry import register_model
from mirstd.models.resunet import (
    ClipNorm,
    FastConv2d,
    ResBlock,
    ResCBAMBlock,
    ResUNetDecoder,
    ResUNetEncoder,
    channels_last,
    check_clip,
    conv2d_cl,
    conv2d_same,
)

__all__ = ["MSFM", "PTAM", "PSTFNet", "msfm_token_counts", "pstfnet"]

GATE_ACTS = ("relu_sigmoid", "sigmoid")


# ----------------------------------------------------------------------------------------------
# Conv3d helpers: faithful 5-D path and the fast "frames as batch" path
# ----------------------------------------------------------------------------------------------
class _TimeShiftSum(torch.autograd.Function):
    """``out[:, o] = sum_dt y[:, o + dt - pt, dt]`` over the taps whose input frame exists.

    ``y (B, T, kt, C, H, W)`` holds every temporal tap of every input frame. Autograd's slicing
    would zero-fill a full-size gradient per tap; this backward writes each gradient slice once
    and zeroes only the frames a tap never reads (index arithmetic, no cat).
    """

    @staticmethod
    def forward(ctx, y, pt, t_out):  # noqa: ANN001, ANN205
        ctx.pt, ctx.t_out, ctx.shape = pt, t_out, y.shape
        out = None
        for dt, lo, hi in _tap_ranges(y.shape[1], y.shape[2], pt, t_out):
            part = y[:, lo + dt - pt : hi + dt - pt, dt]
            if out is None and (lo, hi) == (0, t_out):
                out = part.clone()
                continue
            if out is None:
                out = y.new_zeros(y.shape[0], t_out, *y.shape[3:])
            out[:, lo:hi] += part
        return out

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        t, kt = ctx.shape[1], ctx.shape[2]
        gy = grad.new_empty(ctx.shape)
        reads = {
            dt: (lo + dt - ctx.pt, hi + dt - ctx.pt, lo, hi)
            for dt, lo, hi in _tap_ranges(t, kt, ctx.pt, ctx.t_out)
        }
        for dt in range(kt):
            s0, s1, lo, hi = reads.get(dt, (t, t, 0, 0))  # input frames [s0, s1) read by tap dt
            gy[:, s0:s1, dt] = grad[:, lo:hi]
            gy[:, :s0, dt].zero_()
            gy[:, s1:, dt].zero_()
        return gy, None, None


def _tap_ranges(t: int, kt: int, pt: int, t_out: int) -> list[tuple[int, int, int]]:
    """``(dt, lo, hi)``: output times ``[lo, hi)`` whose input frame ``o + dt - pt`` exists."""
    ranges = []
    for dt in range(kt):
        lo, hi = max(0, pt - dt), min(t_out, t + pt - dt)
        if lo < hi:
            ranges.append((dt, lo, hi))
    return ranges


def _toeplitz_weight(weight: torch.Tensor, t: int, pt: int, t_out: int) -> torch.Tensor:
    """Block-Toeplitz 2-D weight ``(t_out*Cout, t*Cin, kh, kw)``: block ``(o, s)`` = ``W[:, :, s - o + pt]``
    (zero outside ``0..kt-1``), so one Conv2d over frames stacked on channels is the Conv3d."""
    cout, cin, kt = weight.shape[:3]
    tap = (
        torch.arange(t, device=weight.device).view(1, t)
        - torch.arange(t_out, device=weight.device).view(t_out, 1)
        + pt
    )
    tap = torch.where((tap >= 0) & (tap < kt), tap, torch.full_like(tap, kt))  # kt -> the zero tap
    padded = torch.cat([weight, weight.new_zeros(cout, cin, 1, *weight.shape[3:])], dim=2)
    big = padded[:, :, tap.flatten()].view(cout, cin, t_out, t, *weight.shape[3:])
    return big.permute(2, 0, 3, 1, 4, 5).reshape(t_out * cout, t * cin, *weight.shape[3:])


# Stacking frames on channels costs T/kt times the FLOPs of the tap-wise conv but no temporal
# shuffling; on this CPU it wins while the input is narrow (measured crossover ~8-16 channels).
TOEPLITZ_MAX_CIN = 8


def _conv3d_frames(
    x: torch.Tensor,
    conv: nn.Conv3d,
    last_only: bool = False,
    weight: torch.Tensor | None = None,
    bias: torch.Tensor | None = None,
) -> torch.Tensor:
    """``conv`` (stride 1, no dilation/groups) on frames-first ``x (B, T, Cin, H, W)``.

    ``out[t] = b + sum_dt W[:, :, dt] * x[t + dt - pt]`` (``*`` = 2-D conv), identical to
    ``nn.Conv3d`` but avoiding PyTorch's slow CPU 3-D kernels, by one of:

    * ``kt = 1``: one Conv2d over the ``B*T`` frames;
    * narrow input (``Cin <= TOEPLITZ_MAX_CIN``) or 1x1 spatial kernel: one Conv2d on the frames
      stacked on channels, ``(B, T*Cin) -> (B, T_out*Cout)``, block-Toeplitz weight;
    * otherwise all ``kt`` taps as one Conv2d over ``B*T`` frames with ``kt*Cout`` outputs, then the
      shifted sum over time (``_TimeShiftSum``).

    Returns ``(B, T_out, Cout, H', W')``, or ``(B, 1, Cout, H', W')`` with only the last output
    time when ``last_only`` (its taps are stacked on the input channels: one small Conv2d).
    ``weight``/``bias`` replace the conv's own (the eval BN folded in, ``ConvBNAct3d``).
    """
    b, t, cin, h, w = x.shape
    kt, pt = conv.kernel_size[0], conv.padding[0]
    pad2d = tuple(conv.padding[1:])
    if weight is None:
        weight, bias = conv.weight, conv.bias  # (Cout, Cin, kt, kh, kw)
    cout = weight.shape[0]
    t_out = t + 2 * pt - kt + 1
    if last_only:
        taps = [dt for dt in range(kt) if 0 <= t_out - 1 + dt - pt < t]
        xin = torch.cat([x[:, t_out - 1 + dt - pt] for dt in taps], dim=1)
        wcat = torch.cat([weight[:, :, dt] for dt in taps], dim=1)
        return conv2d_same(xin, wcat, bias, pad2d).unsqueeze(1)
    if kt == 1:
        y = conv2d_same(x.reshape(b * t, cin, h, w), weight[:, :, 0], bias, pad2d)
        return y.view(b, t, cout, *y.shape[-2:])
    if cin <= TOEPLITZ_MAX_CIN or weight.shape[-2:] == (1, 1):
        bias = bias.repeat(t_out) if bias is not None else None
        y = conv2d_same(x.reshape(b, t * cin, h, w), _toeplitz_weight(weight, t, pt, t_out), bias, pad2d)
        return y.view(b, t_out, cout, *y.shape[-2:])
    w2 = weight.permute(2, 0, 1, 3, 4).reshape(kt * cout, cin, *weight.shape[-2:])
    y = conv2d_same(x.reshape(b * t, cin, h, w), w2, None, pad2d)
    out = _TimeShiftSum.apply(y.view(b, t, kt, cout, *y.shape[-2:]), pt, t_out)
    if bias is not None:
        out = out + bias.view(1, 1, cout, 1, 1)
    return out


class ConvBNAct3d(nn.Module):
    """``act(BN3d(Conv3d(x)))``; ``forward`` takes ``(B, C, T, H, W)``, ``forward_frames`` takes
    frames-first ``(B, T, C, H, W)`` (fast path, same parameters)."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int, int], act: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, kernel, padding=tuple(k // 2 for k in kernel))
        self.bn = nn.BatchNorm3d(cout)
        self.act = act

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.bn(self.conv(x))
        return F.relu(x) if self.act else x

    def can_skip_to_last(self) -> bool:
        """True when BN is per-element (eval with running stats): the last slice is independent."""
        return not self.bn.training and self.bn.running_mean is not None

    def forward_frames(self, x: torch.Tensor, last_only: bool = False) -> torch.Tensor:
        folded = None if torch.is_grad_enabled() else eval_bn_folded(self.conv, self.bn)
        if folded is not None:  # inference: BN folded into the conv, ReLU in place
            y = _conv3d_frames(x, self.conv, last_only, *folded)
            return y.relu_() if self.act else y
        y = _conv3d_frames(x, self.conv, last_only=last_only)
        b, t, c, h, w = y.shape
        # BN3d statistics over (B, T, H, W) == over (B*T, 1, H, W): same elements.
        y = self.bn(y.reshape(b * t, c, 1, h, w)).view(b, t, c, h, w)
        return F.relu(y) if self.act else y


def _bns_foldable(module: nn.Module) -> bool:
    """Every BN of ``module`` in eval mode on running statistics: each is then a fixed per-channel
    affine map that the streaming helpers fold into its conv."""
    return all(
        not m.training and m.running_mean is not None and m.running_var is not None
        for m in module.modules()
        if isinstance(m, nn.modules.batchnorm._BatchNorm)
    )


def _inference_foldable(module: nn.Module) -> bool:
    """No gradient recorded and every BN of ``module`` foldable (``_bns_foldable``)."""
    return not torch.is_grad_enabled() and _bns_foldable(module)


def _conv_bn_relu2d(cin: int, cout: int, k: int) -> nn.Sequential:
    return nn.Sequential(
        FastConv2d(cin, cout, k, padding=k // 2), nn.BatchNorm2d(cout), nn.ReLU(inplace=True)
    )


# ----------------------------------------------------------------------------------------------
# PTAM (spec §A4)
# ----------------------------------------------------------------------------------------------
class P2DConvGate(nn.Module):
    """P2DConv gate (lab ``DT_module``, spec §A4.1).

    ``x = ReLU(BN(Conv3d 3x3x3 C->q)(F))``, ``g_d = x[T-1-d]`` (d = 0 current). Progressive
    accumulation from old to new::

        a_{T-1} = K^{T-1,T-1}(g_{T-1})
        a_d     = K^{d,d}(g_d) + sum_{e=d+1}^{T-1} K^{e,d}(g_d + a_e)

    ``K^{e,d}`` = Conv2d (2(e-d)+1)^2 + BN + ReLU (T(T+1)/2 convs). Stack oldest first, tail
    ``ReLU(BN(Conv3d 3x3x3 q->C))``, last slice, sigmoid.
    """

    def __init__(self, channels: int, num_frames: int, relu_before_sigmoid: bool = True) -> None:
        super().__init__()
        q = channels // 4
        self.num_frames = num_frames
        self.head = ConvBNAct3d(channels, q, (3, 3, 3))
        self.convs = nn.ModuleDict(
            {
                f"conv{e}_{d}": _conv_bn_relu2d(q, q, 2 * (e - d) + 1)
                for e in range(num_frames)
                for d in range(e + 1)
            }
        )
        self.tail = ConvBNAct3d(q, channels, (3, 3, 3), act=relu_before_sigmoid)

    def _accumulate(self, frames: list[torch.Tensor]) -> list[torch.Tensor]:
        """``frames[d]`` = g_d (d = 0 current); returns a_{T-1}, ..., a_0 (oldest first)."""
        a: dict[int, torch.Tensor] = {}
        for d in range(self.num_frames - 1, -1, -1):
            g = frames[d]
            acc = self.convs[f"conv{d}_{d}"](g)
            for e in range(d + 1, self.num_frames):
                acc = acc + self.convs[f"conv{e}_{d}"](g + a[e])
            a[d] = acc
        return [a[d] for d in range(self.num_frames - 1, -1, -1)]

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """Faithful path: ``feats (B, C, T, H, W)`` -> gate ``(B, C, H, W)``."""
        x = self.head(feats)
        frames = [x[:, :, -1 - d] for d in range(self.num_frames)]
        y = self.tail(torch.stack(self._accumulate(frames), dim=2))
        return torch.sigmoid(y[:, :, -1])

    def forward_frames(self, feats: torch.Tensor) -> torch.Tensor:
        """Fast path: ``feats (B, T, C, H, W)`` -> gate ``(B, C, H, W)``."""
        x = self.head.forward_frames(feats)
        if _inference_foldable(self):  # BN folded, only the tail inputs the last output reads
            return _p2d_stream(self, x)
        frames = [x[:, -1 - d] for d in range(self.num_frames)]
        stacked = torch.stack(self._accumulate(frames), dim=1)
        y = self.tail.forward_frames(stacked, last_only=self.tail.can_skip_to_last())
        return torch.sigmoid(y[:, -1])


class M3DConvGate(nn.Module):
    """M3DConv gate (pseudo-3D branches of lab ``HDC_module``, spec §A4.2).

    ``x = head(F)``; branch k in {1,3,5}: (1,3,3) -> (k,1,1) -> (1,3,3) -> (k,1,1), each
    Conv3d q->q + BN + ReLU; concat (3q) -> tail Conv3d 3x3x3 3q->C + BN + ReLU; last slice; sigmoid.
    """

    BRANCH_KS = (1, 3, 5)

    def __init__(self, channels: int, relu_before_sigmoid: bool = True) -> None:
        super().__init__()
        q = channels // 4
        self.head = ConvBNAct3d(channels, q, (3, 3, 3))
        self.branches = nn.ModuleList(
            nn.ModuleList(
                [
                    ConvBNAct3d(q, q, (1, 3, 3)),
                    ConvBNAct3d(q, q, (k, 1, 1)),
                    ConvBNAct3d(q, q, (1, 3, 3)),
                    ConvBNAct3d(q, q, (k, 1, 1)),
                ]
            )
            for k in self.BRANCH_KS
        )
        self.tail = ConvBNAct3d(3 * q, channels, (3, 3, 3), act=relu_before_sigmoid)

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.head(feats)
        outs = []
        for branch in self.branches:
            y = x
            for layer in branch:
                y = layer(y)
            outs.append(y)
        return torch.sigmoid(self.tail(torch.cat(outs, dim=1))[:, :, -1])

    def forward_frames(self, feats: torch.Tensor) -> torch.Tensor:
        x = self.head.forward_frames(feats)
        if _inference_foldable(self):  # BN folded, each layer only at the positions the output reads
            return _m3d_stream(self, x)
        outs = []
        for branch in self.branches:
            y = x
            for layer in branch:
                y = layer.forward_frames(y)
            outs.append(y)
        y = self.tail.forward_frames(torch.cat(outs, dim=2), last_only=self.tail.can_skip_to_last())
        return torch.sigmoid(y[:, -1])


class PTAM(nn.Module):
    """Progressive temporal accumulation module (lab ``HDC_module``), spec §A4.

    ``PTAM(F) = R + R * G_P2D(F) * G_M3D(F)``, ``R = F[:, :, -1]``. With the faithful
    ``gate_act="relu_sigmoid"`` each gate lies in [0.5, 1) (quirk Q2: amplification only).
    ``p2d`` / ``m3d`` switch the gates off for the Table 5 ablations (a missing gate counts as 1).
    """

    def __init__(
        self,
        channels: int,
        num_frames: int = 5,
        p2d: bool = True,
        m3d: bool = True,
        gate_act: str = "relu_sigmoid",
        fast: bool = True,
    ) -> None:
        super().__init__()
        if not (p2d or m3d):
            raise ValueError("PTAM needs p2d or m3d; drop the level from ptam_levels instead")
        if channels % 4:
            raise ValueError(f"PTAM: channels must be a multiple of 4 (q = C/4), got {channels}")
        if gate_act not in GATE_ACTS:
            raise ValueError(f"gate_act must be one of {GATE_ACTS}, got {gate_act!r}")
        relu = gate_act == "relu_sigmoid"
        self.fast = fast
        self.p2d = P2DConvGate(channels, num_frames, relu) if p2d else None
        self.m3d = M3DConvGate(channels, relu) if m3d else None

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        """``feats``: ``(B, C, T, H, W)`` (``fast=False``) or frames-first ``(B, T, C, H, W)``
        (``fast=True``) -> ``(B, C, H, W)``."""
        gates = []
        for gate in (self.p2d, self.m3d):
            if gate is not None:
                gates.append(gate.forward_frames(feats) if self.fast else gate(feats))
        r = feats[:, -1] if self.fast else feats[:, :, -1]
        g = gates[0] if len(gates) == 1 else gates[0] * gates[1]
        return r + r * g


# ----------------------------------------------------------------------------------------------
# MSFM (spec §A5)
# ----------------------------------------------------------------------------------------------
def _side(n: int, stride: int) -> int:
    return (n - 1) // stride + 1


def msfm_token_counts(height: int, width: int | None = None) -> tuple[tuple[int, int], int, int]:
    """Proportional MSFM grid for an input ``H x W`` (spec §A9).

    ``s = floor((H/8 - 1)/2) + 1`` per axis, ``N_img = s_h s_w``,
    ``N = N_img + (floor((s-1)/2)+1)^2 + (floor((s-1)/3)+1)^2`` (per axis, multiplied).
    Returns ``((s_h, s_w), N_img, N)``; 384 -> ((24, 24), 576, 784).
    """
    width = height if width is None else width
    sh, sw = _side(height // 8, 2), _side(width // 8, 2)
    n_img = sh * sw
    n = n_img + _side(sh, 2) * _side(sw, 2) + _side(sh, 3) * _side(sw, 3)
    return (sh, sw), n_img, n


class LinearBN(nn.Module):
    """Linear (no bias) + BatchNorm1d over all ``B*N`` tokens (lab ``Linear_BN``, quirk Q5)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.c = nn.Linear(cin, cout, bias=False)
        self.bn = nn.BatchNorm1d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.c(x)
        return self.bn(y.flatten(0, 1)).view_as(y)


class FFN(nn.Module):
    """``BN(c) -> 1x1 c->h -> BN(h) -> 3x3 h->h (groups=c) -> ReLU6 -> 1x1 h->c`` (spec §A5)."""

    def __init__(self, c: int, h: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.BatchNorm2d(c),
            FastConv2d(c, h, 1),
            nn.BatchNorm2d(h),
            nn.Conv2d(h, h, 3, padding=1, groups=c),
            nn.ReLU6(),
            FastConv2d(h, c, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class GroupFFN(nn.Module):
    """Per-group FFN (lab ``IntraFeedForward``): split channels into ``groups``; group ``i`` gives
    ``x_i + FFN_i(x_i)`` with ``FFN_i = FFN(g, 2g)``.

    The lab wraps every branch in ``Residual(FeedForward)`` and the whole module again in
    ``Residual`` (``CIMBlock.intra_ff``), so the MSFM stage computes ``2x + FFN_i(x_i)``: this
    module returns ``x + FFN(x)`` and ``MSFM`` adds the outer ``x`` (CS-Net 9b5d11c ``CIM.py``).
    ``inner_residual=False`` is the form mirstd used before the golden tests (``x + FFN_i(x_i)`` at
    the MSFM level); kept only to evaluate checkpoints trained with it (same state dict).
    """

    def __init__(self, groups: Sequence[int], inner_residual: bool = True) -> None:
        super().__init__()
        self.groups = list(groups)
        self.inner_residual = bool(inner_residual)
        self.ffns = nn.ModuleList(FFN(g, 2 * g) for g in self.groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        parts = x.split(self.groups, dim=1)
        if self.inner_residual:
            return torch.cat([p + f(p) for f, p in zip(self.ffns, parts, strict=True)], dim=1)
        return torch.cat([f(p) for f, p in zip(self.ffns, parts, strict=True)], dim=1)


def _dw_bn(dim: int, k: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(dim, dim, k, stride=stride, padding=k // 2, groups=dim), nn.BatchNorm2d(dim)
    )


class CrossScaleAttention(nn.Module):
    """Cross-scale attention (lab ``CrossScaleAttention``), spec §A5.

    Tokens: ``x0 = BN(x)``, ``x1 = BN(DW3x3/2(x0))``, ``x2 = BN(DW5x5/3(x0))``, flattened and
    concatenated (N = N_img + N_1 + N_2). ``qkv = BN1d(Linear(dim -> heads*(2 kd + vd)))``;
    ``O = softmax(q k^T / sqrt(kd)) v``; local term ``v_conv = DW3x3(Hardswish(v[:N_img] as map))``;
    ``out = to_out((proj(O) + v_conv)^T)`` with ``proj`` = Linear N -> N_img (token mixer);
    then ``Conv1x1(Hardswish(BN(out as map)))``.

    Switches: ``reshape_mode`` "lab" (raw re-reads, quirk Q3) / "clean" (true transposes);
    ``token_mixer`` "linear" / "slice" (keep the first N_img columns, no parameters);
    ``mc=False`` ("w/o MC"): the multi-scale convs are replaced by one depthwise 3x3 (stride 1)
    and the tokens are its N_img outputs only; ``sa=False`` ("w/o SA"): no attention at all,
    ``out = x0 + up(x1) + up(x2)`` (bilinear) [interpretations of the paper's Table 6].
    """

    def __init__(
        self,
        dim: int,
        grid: tuple[int, int],
        key_dim: int = 32,
        num_heads: int = 8,
        attn_ratio: int = 2,
        token_mixer: str = "linear",
        reshape_mode: str = "lab",
        mc: bool = True,
        sa: bool = True,
    ) -> None:
        super().__init__()
        self.grid = grid
        self.mc, self.sa = mc, sa
        self.bn_in = nn.BatchNorm2d(dim)
        if mc:
            self.dw1, self.dw2 = _dw_bn(dim, 3, 2), _dw_bn(dim, 5, 3)
            sides = [grid, (_side(grid[0], 2), _side(grid[1], 2)), (_side(grid[0], 3), _side(grid[1], 3))]
        else:
            self.dw0 = _dw_bn(dim, 3, 1)
            sides = [grid]
        self.n_img = grid[0] * grid[1]
        self.n_tok = sum(a * b for a, b in sides)
        if sa:
            self.num_heads, self.key_dim = num_heads, key_dim
            self.vd = attn_ratio * key_dim
            self.dh = self.vd * num_heads
            self.scale = key_dim**-0.5
            self.reshape_mode, self.token_mixer = reshape_mode, token_mixer
            self.qkv = LinearBN(dim, self.dh + 2 * key_dim * num_heads)
            self.v_conv = nn.Conv2d(self.dh, self.dh, 3, padding=1, groups=self.dh)
            self.proj = nn.Linear(self.n_tok, self.n_img) if token_mixer == "linear" else None
            self.to_out = nn.Linear(self.dh, dim)
        self.bn_out = nn.BatchNorm2d(dim)
        self.conv_out = FastConv2d(dim, dim, 1)

    def _attention(self, tokens: torch.Tensor) -> torch.Tensor:
        """``tokens (B, N, dim)`` -> ``(B, N_img, dim)``."""
        b, n, _ = tokens.shape
        sh, sw = self.grid
        qkv = self.qkv(tokens).view(b, n, self.num_heads, -1)
        q, k, v = qkv.split([self.key_dim, self.key_dim, self.vd], dim=3)
        q, k, v = (t.permute(0, 2, 1, 3) for t in (q, k, v))  # (B, heads, N, d)
        v0 = v[:, :, : self.n_img]
        if self.reshape_mode == "lab":  # raw re-read of (head, token, dim) as (channel, y, x)
            vmap = v0.reshape(b, self.dh, sh, sw)
        else:
            vmap = v0.permute(0, 1, 3, 2).reshape(b, self.dh, sh, sw)
        v_local = self.v_conv(F.hardswish(vmap)).flatten(2)  # (B, dh, N_img)
        attn = torch.softmax((q @ k.transpose(-2, -1)) * self.scale, dim=-1)
        o = attn @ v  # (B, heads, N, vd)
        if self.reshape_mode == "lab":  # raw re-read of (token, head, dim) as (channel, token)
            o = o.transpose(1, 2).reshape(b, self.dh, n)
        else:
            o = o.permute(0, 1, 3, 2).reshape(b, self.dh, n)
        o = self.proj(o) if self.proj is not None else o[:, :, : self.n_img]
        return self.to_out((o + v_local).transpose(1, 2))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if tuple(x.shape[-2:]) != self.grid:
            raise ValueError(f"CrossScaleAttention: map {tuple(x.shape[-2:])} != grid {self.grid}")
        b, c = x.shape[:2]
        x0 = self.bn_in(x)
        maps = [x0, self.dw1(x0), self.dw2(x0)] if self.mc else [self.dw0(x0)]
        if self.sa:
            tokens = torch.cat([m.flatten(2) for m in maps], dim=2).transpose(1, 2)
            y = self._attention(tokens).transpose(1, 2).reshape(b, c, *self.grid)
        else:
            y = maps[0]
            for m in maps[1:]:
                y = y + F.interpolate(m, size=self.grid, mode="bilinear", align_corners=False)
        return self.conv_out(F.hardswish(self.bn_out(y)))


class ScaleAwareGate(nn.Module):
    """TopFormer injection: ``Y = BN(1x1 X) * up(hsig(BN(1x1 G))) + up(BN(1x1 G))`` (spec §A5.4)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.local = nn.Sequential(FastConv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.glob = nn.Sequential(FastConv2d(channels, channels, 1), nn.BatchNorm2d(channels))
        self.act = nn.Sequential(FastConv2d(channels, channels, 1), nn.BatchNorm2d(channels))

    def forward(self, x: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        size = x.shape[-2:]
        sig = F.interpolate(F.hardsigmoid(self.act(g)), size=size, mode="bilinear", align_corners=False)
        glob = F.interpolate(self.glob(g), size=size, mode="bilinear", align_corners=False)
        return self.local(x) * sig + glob


class MSFM(nn.Module):
    """Multi-scale spatial fusion module (lab ``CIM``), spec §A5.

    Pool each scale to the ``grid``, concat (sum(channels)), 1x1 -> d = sum/4; block
    ``x += CSA1(x); x += GroupFFN(x); x += CSA2(x); x += FFN(d, 2d)(x)``; BN; 1x1 d -> sum;
    split per scale; ``ScaleAwareGate`` per scale. ``GroupFFN`` carries its own per-group residual,
    so its stage is ``x <- 2x + FFN_i(x_i)`` as in the lab code (``group_ffn_inner_residual=False``:
    the earlier mirstd form ``x + FFN_i(x_i)``, for old checkpoints only).
    """

    def __init__(
        self,
        channels: Sequence[int],
        grid: tuple[int, int],
        token_mixer: str = "linear",
        reshape_mode: str = "lab",
        mc: bool = True,
        sa: bool = True,
        group_ffn_inner_residual: bool = True,
    ) -> None:
        super().__init__()
        if any(c % 4 for c in channels):
            raise ValueError(f"MSFM: channels must be multiples of 4, got {tuple(channels)}")
        self.channels, self.grid = list(channels), grid
        dim = sum(channels)
        hid = dim // 4
        self.down = FastConv2d(dim, hid, 1)

        def csa() -> CrossScaleAttention:
            return CrossScaleAttention(
                hid, grid, token_mixer=token_mixer, reshape_mode=reshape_mode, mc=mc, sa=sa
            )

        self.csa1 = csa()
        self.group_ffn = GroupFFN([c // 4 for c in channels], inner_residual=group_ffn_inner_residual)
        self.csa2 = csa()
        self.ffn = FFN(hid, 2 * hid)
        self.bn = nn.BatchNorm2d(hid)
        self.up = FastConv2d(hid, dim, 1)
        self.gates = nn.ModuleList(ScaleAwareGate(c) for c in channels)

    def forward(self, feats: Sequence[torch.Tensor]) -> list[torch.Tensor]:
        x = torch.cat([F.adaptive_avg_pool2d(f, self.grid) for f in feats], dim=1)
        x = self.down(x)
        for stage in (self.csa1, self.group_ffn, self.csa2, self.ffn):
            x = x + stage(x)
        glob = self.up(self.bn(x)).split(self.channels, dim=1)
        return [gate(f, g) for gate, f, g in zip(self.gates, feats, glob, strict=True)]


# ----------------------------------------------------------------------------------------------
# Streaming helpers (PSTFNet.encode_frame / predict_from_features; eval mode, running BN stats)
# ----------------------------------------------------------------------------------------------
class FrameFeatures(list):
    """What :meth:`PSTFNet.encode_frame` returns: the four encoder maps (a plain list of them, as
    before) plus ``taps[level][gate]`` = the PTAM head Conv3d's ``kt`` temporal taps applied to this
    frame alone, ``(B, kt, q, h, w)``, head BN folded in (no bias). A head output at window position
    ``o`` is then ``act(b' + sum_dt taps[frame o + dt - pt][:, dt])`` (:func:`_head_from_taps`): a new
    frame costs ``kt`` 2-D convs instead of the head's ``T * kt``."""

    def __init__(self, maps: Sequence[torch.Tensor], taps: dict[str, dict[str, torch.Tensor]]) -> None:
        super().__init__(maps)
        self.taps = taps


def _fold_bn(conv: nn.Module, bn: nn.modules.batchnorm._BatchNorm) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval-mode ``bn(conv(x))`` as one conv (``mirstd.models.fuse.eval_bn_folded``); the streaming
    helpers run only where every PTAM BN has running statistics (``PSTFNet._stream_exact``)."""
    folded = eval_bn_folded(conv, bn)
    if folded is None:
        raise RuntimeError("_fold_bn: BN without running statistics (or in training mode)")
    return folded  # type: ignore[return-value]


def _span_inputs(layers: Sequence[ConvBNAct3d], out: tuple[int, int], t: int) -> list[tuple[int, int]]:
    """Position ranges ``[lo, hi)`` a chain of ``layers`` must compute so that the last one yields
    ``out`` in a ``t``-frame window: element 0 is what the first layer reads, element ``i + 1`` what
    layer ``i`` outputs. Output ``o`` of a temporal conv reads ``o - pt .. o + kt - 1 - pt`` (frames
    outside ``[0, t)`` are its zero padding)."""
    spans = [out]
    for layer in reversed(layers):
        kt, pt = layer.conv.kernel_size[0], layer.conv.padding[0]
        lo, hi = spans[-1]
        spans.append((max(0, lo - pt), min(t, hi + kt - 1 - pt)))
    return spans[::-1]


def _conv_bn_act_span(
    layer: ConvBNAct3d, x: torch.Tensor, x_lo: int, lo: int, hi: int, t: int
) -> torch.Tensor:
    """Outputs ``[lo, hi)`` of ``layer`` (eval BN folded, stride 1) in a ``t``-frame window, from its
    input ``x (B, n, C, h, w)`` at positions ``[x_lo, x_lo + n)``, which must hold every input frame
    inside ``[0, t)`` that those outputs read (the rest is the Conv3d's zero padding). Same maths as
    ``ConvBNAct3d.forward_frames`` restricted to those outputs."""
    kt, pt = layer.conv.kernel_size[0], layer.conv.padding[0]
    b, n, c, h, w = x.shape
    if x_lo > max(0, lo - pt) or x_lo + n < min(t, hi + kt - 1 - pt):
        raise ValueError(f"_conv_bn_act_span: input [{x_lo}, {x_lo + n}) misses frames for [{lo}, {hi})")
    weight, bias = _fold_bn(layer.conv, layer.bn)
    pad2d = tuple(layer.conv.padding[1:])
    cout, n_out = weight.shape[0], hi - lo
    if kt == 1:
        xs = x[:, lo - x_lo : hi - x_lo].reshape(b * n_out, c, h, w)
        y = conv2d_cl(xs, weight[:, :, 0], bias, padding=pad2d)
    else:  # frames stacked on channels; block (o, s) = W[:, :, s - o + pt], zero outside the kernel
        big = _toeplitz_weight(weight, n, pt + x_lo - lo, n_out)
        y = conv2d_cl(x.reshape(b, n * c, h, w), big, bias.repeat(n_out), padding=pad2d)
    y = y.view(b, n_out, cout, *y.shape[-2:])
    return F.relu(y) if layer.act else y


def _head_from_taps(head: ConvBNAct3d, taps: Sequence[torch.Tensor]) -> torch.Tensor:
    """All ``t`` outputs ``(B, t, q, h, w)`` of a PTAM head from the frames' cached taps (oldest first)."""
    _, bias = _fold_bn(head.conv, head.bn)
    kt, pt = head.conv.kernel_size[0], head.conv.padding[0]
    t = len(taps)
    bias = bias.view(1, -1, 1, 1)
    outs = []
    for o in range(t):
        acc = bias
        for dt in range(kt):
            if 0 <= o + dt - pt < t:
                acc = acc + taps[o + dt - pt][:, dt]
        outs.append(acc)
    y = torch.stack(outs, dim=1)
    return F.relu(y) if head.act else y


def _sigmoid_last(tail: ConvBNAct3d, x: torch.Tensor, x_lo: int, t: int) -> torch.Tensor:
    """``sigmoid`` of the tail's last output time, from the input frames it reads."""
    return torch.sigmoid(_conv_bn_act_span(tail, x, x_lo, t - 1, t, t)[:, 0])


def _tail_span(tail: ConvBNAct3d, t: int) -> tuple[int, int]:
    """Input positions ``[lo, t)`` the tail's last output time reads."""
    return _span_inputs([tail], (t - 1, t), t)[0]


def _p2d_stream(gate: P2DConvGate, g: torch.Tensor) -> torch.Tensor:
    """``P2DConvGate.forward_frames`` from the head outputs ``g (B, T, q, h, w)``: the accumulation
    (its kernels depend on relative frame positions, so none of it carries over between windows),
    BN folded, then only the tail inputs its last output reads."""
    t = gate.num_frames
    folded = {k: _fold_bn(seq[0], seq[1]) + (tuple(seq[0].padding),) for k, seq in gate.convs.items()}

    def conv(key: str, x: torch.Tensor) -> torch.Tensor:
        w, b, pad = folded[key]
        return conv2d_cl(x, w, b, padding=pad).relu_()

    a: dict[int, torch.Tensor] = {}
    for d in range(t - 1, -1, -1):  # as P2DConvGate._accumulate; d = 0 is the current frame
        gd = g[:, t - 1 - d]
        acc = conv(f"conv{d}_{d}", gd)
        for e in range(d + 1, t):
            acc = acc + conv(f"conv{e}_{d}", gd + a[e])
        a[d] = acc
    lo, _ = _tail_span(gate.tail, t)
    stacked = torch.stack([a[t - 1 - pos] for pos in range(lo, t)], dim=1)  # window position -> a_{t-1-pos}
    return _sigmoid_last(gate.tail, stacked, lo, t)


def _m3d_stream(gate: M3DConvGate, x: torch.Tensor) -> torch.Tensor:
    """``M3DConvGate.forward_frames`` from the head outputs ``x (B, T, q, h, w)``, each branch layer
    computing only the window positions the tail's last output depends on."""
    t = x.shape[1]
    need = _tail_span(gate.tail, t)
    outs = []
    for branch in gate.branches:
        spans = _span_inputs(list(branch), need, t)
        y, y_lo = x[:, spans[0][0] : spans[0][1]], spans[0][0]
        for layer, (lo, hi) in zip(branch, spans[1:], strict=True):
            y, y_lo = _conv_bn_act_span(layer, y, y_lo, lo, hi, t), lo
        outs.append(y)
    return _sigmoid_last(gate.tail, torch.cat(outs, dim=2), need[0], t)


# ----------------------------------------------------------------------------------------------
# PSTFNet
# ----------------------------------------------------------------------------------------------
class PSTFNet(SegmentMethod):
    """PSTFNet (spec Part A). Clip ``(B, C, T, H, W)`` in [0, 1] -> logits ``(B, 1, H, W)``.

    Args:
        in_channels: channels per frame (3: grey replicated, as the reference).
        num_frames: T >= 2 (P2DConv builds T(T+1)/2 convs, kernels up to 2T-1); paper: 5.
        channels: encoder widths, multiples of 4 (paper (8, 16, 32, 64); tests (4, 8, 16, 32)).
        img_size: input size (int or (H, W)); used only by ``msfm_grid="proportional"``.
        msfm_grid: ``"fixed"`` (pool to ``grid_size`` whatever the input; any H, W) or
            ``"proportional"`` (grid from ``img_size`` by spec §A9; input must be ``img_size``).
        grid_size: side of the fixed grid (24 = the lab model at 384).
        token_mixer, reshape_mode: see ``CrossScaleAttention`` (quirks Q3, Q4).
        gate_act: ``"relu_sigmoid"`` (faithful, quirk Q2) or ``"sigmoid"``.
        ptam_levels: levels (0 = finest) with PTAM; elsewhere the current-frame feature passes
            through (Table 4; ``()`` = "w/o PTAM").
        p2d, m3d: PTAM gates (Table 5).
        msfm: build MSFM (Table 3/6, "w/o MSFM": decoder fed by the PTAM outputs).
        mc, sa: MSFM multi-scale convolution / self-attention (Table 6).
        fast: PTAM Conv3d as Conv2d over batch x time (identical outputs, same parameters).
        mean, std: input normalisation (MIST: 0.359, 0.15).
        head_prior: prior probability of the decoder's 1x1 logit head (``resunet.init_head_prior``;
            default ``None``, PyTorch's default init as the lab code; 0.01
            for ``loss=bce`` / ``focal``).
        frame_step: the network's T frames are every ``frame_step``-th of the input clip, which then
            has ``num_frames = (T - 1) * frame_step + 1`` frames (``mirstd.models.align``); 1 = the
            paper's consecutive frames.
        align: register every frame onto the key frame (global translation, phase correlation)
            before the encoder: for a moving camera. Not exportable to ONNX; no cached streaming.
    """

    task = "segment"

    def __init__(
        self,
        in_channels: int = 3,
        num_frames: int = 5,
        channels: Sequence[int] = (8, 16, 32, 64),
        img_size: int | Sequence[int] = 384,
        msfm_grid: str = "fixed",
        grid_size: int | Sequence[int] = 24,
        token_mixer: str = "linear",
        reshape_mode: str = "lab",
        gate_act: str = "relu_sigmoid",
        ptam_levels: Sequence[int] = (0, 1, 2, 3),
        p2d: bool = True,
        m3d: bool = True,
        msfm: bool = True,
        mc: bool = True,
        sa: bool = True,
        fast: bool = True,
        mean: float | Sequence[float] = 0.359,
        std: float | Sequence[float] = 0.15,
        head_prior: float | None = None,  # resunet.HEAD_PRIOR explains why not 0.01
        frame_step: int = 1,
        align: bool = False,
    ) -> None:
        super().__init__()
        channels = tuple(int(c) for c in channels)
        self._check_args(num_frames, channels, msfm_grid, token_mixer, reshape_mode, ptam_levels)
        if int(frame_step) < 1:
            raise ValueError(f"PSTFNet: frame_step must be >= 1, got {frame_step}")
        self.in_channels = in_channels
        self.frame_step, self.align = int(frame_step), bool(align)
        self.num_frames = clip_span(num_frames, self.frame_step)  # what a caller's clip must hold
        self.size_divisor = 2 ** (len(channels) - 1)
        self.img_size = (img_size, img_size) if isinstance(img_size, int) else tuple(img_size)
        self.msfm_grid = msfm_grid
        self.ptam_levels = tuple(sorted(set(ptam_levels)))
        self.norm = ClipNorm(in_channels, mean, std)
        self.encoder = ResUNetEncoder(in_channels, channels, (2, 2, 2, 2), ResCBAMBlock)
        self.ptam = nn.ModuleDict(
            {str(i): PTAM(channels[i], num_frames, p2d, m3d, gate_act, fast) for i in self.ptam_levels}
        )
        self.grid = self._grid(msfm_grid, grid_size)
        self.msfm = MSFM(channels, self.grid, token_mixer, reshape_mode, mc, sa) if msfm else None
        self.decoder = ResUNetDecoder(channels, 1, (2, 2, 2), ResBlock, head_prior)
        self.fast = fast

    @staticmethod
    def _check_args(num_frames, channels, msfm_grid, token_mixer, reshape_mode, ptam_levels) -> None:  # noqa: ANN001
        if num_frames < 2:
            raise ValueError(f"PSTFNet: num_frames must be >= 2, got {num_frames}")
        if len(channels) != 4 or any(c % 4 for c in channels):
            raise ValueError(f"PSTFNet: channels must be 4 multiples of 4, got {channels}")
        for key, val, allowed in (
            ("msfm_grid", msfm_grid, ("fixed", "proportional")),
            ("token_mixer", token_mixer, ("linear", "slice")),
            ("reshape_mode", reshape_mode, ("lab", "clean")),
        ):
            if val not in allowed:
                raise ValueError(f"PSTFNet: {key} must be one of {allowed}, got {val!r}")
        bad = [i for i in ptam_levels if i not in range(4)]
        if bad:
            raise ValueError(f"PSTFNet: ptam_levels must be in 0..3, got {tuple(ptam_levels)}")

    def _grid(self, msfm_grid: str, grid_size: int | Sequence[int]) -> tuple[int, int]:
        if msfm_grid == "proportional":
            h, w = self.img_size
            if h % self.size_divisor or w % self.size_divisor:
                raise ValueError(
                    f"PSTFNet: img_size {self.img_size} must be multiples of {self.size_divisor}"
                )
            return msfm_token_counts(h, w)[0]
        g = (grid_size, grid_size) if isinstance(grid_size, int) else tuple(grid_size)
        return (int(g[0]), int(g[1]))

    @property
    def fast(self) -> bool:
        return self._fast

    @fast.setter
    def fast(self, value: bool) -> None:
        self._fast = bool(value)
        for m in self.ptam.values():
            m.fast = self._fast

    def _encode(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Shared per-frame encoder; train-mode BN sees each frame alone, as in the lab loop (spec
        §A3). ``fast``: one batched call over ``B*T`` frames with per-frame BN statistics
        (``FrameBatchNorm2d``), identical outputs and running statistics to the per-frame loop of
        ``fast=False``. Returns per level ``(B, T, C, h, w)`` (fast) or ``(B, C, T, h, w)``."""
        if not self.ptam_levels:  # no PTAM: only the current frame is ever used
            return [f.unsqueeze(1 if self.fast else 2) for f in self.encoder(x[:, :, -1])]
        if not self.fast:  # reference: literally one encoder call per frame
            per_frame = [self.encoder(x[:, :, t]) for t in range(x.shape[2])]
            return [torch.stack([f[lvl] for f in per_frame], dim=2) for lvl in range(4)]
        b, c, t, h, w = x.shape
        if not torch.is_grad_enabled():
            # Inference: frame by frame in channels_last memory (oneDNN's fast layout for these
            # few-channel convs; one frame's maps stay in cache across a block's element-wise
            # steps): 1.6x faster than the batched NCHW call at 384 px, same function.
            per_frame = [self._encode_frame_maps(x[:, :, i]) for i in range(t)]
            return [torch.stack([f[lvl] for f in per_frame], dim=1) for lvl in range(4)]
        # One call on the B*T frames in (b, t) order; FrameBatchNorm2d keeps per-frame statistics.
        feats = self.encoder(x.transpose(1, 2).reshape(b * t, c, h, w), frames=t)
        return [f.view(b, t, *f.shape[1:]) for f in feats]

    def _encode_frame_maps(self, x: torch.Tensor) -> list[torch.Tensor]:
        """The encoder's four maps of one normalised frame ``(B, C, H, W)`` (inference)."""
        return self.encoder(channels_last(x))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, C, T, H, W)`` in [0, 1], current frame last -> logits ``(B, 1, H, W)``."""
        check_clip(clip, self, min_frames=self.num_frames, exact_frames=self.num_frames)
        if self.msfm_grid == "proportional" and tuple(clip.shape[-2:]) != self.img_size:
            raise ValueError(
                f"PSTFNet(msfm_grid='proportional'): input {tuple(clip.shape[-2:])} != img_size {self.img_size}"
            )
        clip = sparse_registered_clip(clip, self.frame_step, self.align)
        feats = self._encode(self.norm(clip))
        cur = (lambda f: f[:, -1]) if self.fast else (lambda f: f[:, :, -1])
        p = [self.ptam[str(i)](f) if str(i) in self.ptam else cur(f) for i, f in enumerate(feats)]
        y = self.msfm(p) if self.msfm is not None else p
        return self.decoder(y)

    @property
    def streamable(self) -> bool:
        """Cached streaming needs each frame's features to be the same in every clip: not so when
        frames are registered onto each clip's own key frame, nor (yet) with a frame step."""
        return self._frames_independent and super().streamable

    @property
    def _frames_independent(self) -> bool:
        """Each frame's features are the same in every clip it is part of (consecutive, unregistered)."""
        return self.frame_step == 1 and not self.align

    # ------------------------------------------------------------------------------------------
    # Streaming (mirstd.infer.stream): per-frame encoder features are cached, eval mode only
    # ------------------------------------------------------------------------------------------
    def encode_frame(self, frame: torch.Tensor) -> list[torch.Tensor]:
        """One frame ``(B, C, H, W)`` in [0, 1] -> its four encoder maps (eval mode: BN uses running
        statistics, so each frame's features do not depend on the other frames of the clip).

        With ``fast=True`` and running BN statistics everywhere in PTAM this is a
        :class:`FrameFeatures` (the same four maps) that also carries the PTAM head convs' temporal
        taps of this frame, so :meth:`predict_from_features` never re-runs a head on older frames."""
        if self.training:
            raise RuntimeError("PSTFNet.encode_frame is for eval mode (training BN mixes the batch)")
        self._check_streamable()
        maps = self._encode_frame_maps(self.norm(frame.unsqueeze(2))[:, :, 0])
        if not self._stream_exact():
            return maps
        taps: dict[str, dict[str, torch.Tensor]] = {}
        for key, ptam in self.ptam.items():
            heads = {n: g.head for n, g in (("p2d", ptam.p2d), ("m3d", ptam.m3d)) if g is not None}
            ws, sizes, pads = [], [], set()
            for h in heads.values():
                w, _ = _fold_bn(h.conv, h.bn)  # (q, C, kt, kh, kw) -> taps stacked on outputs
                ws.append(w.permute(2, 0, 1, 3, 4).reshape(-1, *w.shape[1:2], *w.shape[3:]))
                sizes.append(ws[-1].shape[0])
                pads.add(tuple(h.conv.padding[1:]))
            x = maps[int(key)]
            if len(pads) == 1:  # both heads in one conv
                ys = F.conv2d(x, torch.cat(ws), None, padding=pads.pop()).split(sizes, dim=1)
            else:
                ys = [F.conv2d(x, w, None, padding=tuple(h.conv.padding[1:]))
                      for w, h in zip(ws, heads.values(), strict=True)]  # fmt: skip
            taps[key] = {
                n: y.view(y.shape[0], h.conv.kernel_size[0], -1, *y.shape[-2:])
                for (n, h), y in zip(heads.items(), ys, strict=True)
            }
        return FrameFeatures(maps, taps)

    def _check_streamable(self) -> None:
        if not self._frames_independent:
            raise NotImplementedError(
                f"PSTFNet(frame_step={self.frame_step}, align={self.align}) has no per-frame features to "
                "cache: predict the whole clip"
            )

    def _stream_exact(self) -> bool:
        """The cached-tap stream path applies: fast PTAM, eval mode, running statistics in every PTAM
        BN (then each BN is a fixed per-channel affine map and can be folded into its conv)."""
        return self.fast and not self.training and _bns_foldable(self.ptam)

    def _ptam_stream(self, key: str, feats: Sequence[FrameFeatures]) -> torch.Tensor:
        """``self.ptam[key]`` of the last frame from cached taps: ``R + R * G_P2D * G_M3D``."""
        ptam = self.ptam[key]
        r = feats[-1][int(key)]
        gates = []
        if ptam.p2d is not None:
            gates.append(
                _p2d_stream(ptam.p2d, _head_from_taps(ptam.p2d.head, [f.taps[key]["p2d"] for f in feats]))
            )
        if ptam.m3d is not None:
            gates.append(
                _m3d_stream(ptam.m3d, _head_from_taps(ptam.m3d.head, [f.taps[key]["m3d"] for f in feats]))
            )
        g = gates[0] if len(gates) == 1 else gates[0] * gates[1]
        return r + r * g

    def export_card(self) -> dict[str, object]:
        """ONNX export: the proportional MSFM grid (paper mode) fixes H, W to ``img_size``."""
        if self.align:
            raise ValueError(
                "PSTFNet(align=True) registers its frames with OpenCV before the network, which an "
                "ONNX graph cannot hold; export a model with align=False"
            )
        return {"fixed_size": self.msfm_grid == "proportional"}

    def predict_from_features(self, feats: Sequence[list[torch.Tensor]]):  # noqa: ANN201
        """``num_frames`` outputs of :meth:`encode_frame`, oldest first -> ``Prediction`` of the last
        frame, equal to ``predict`` on the clip of those frames."""
        from mirstd.models.base import Prediction, probabilities

        self._check_streamable()
        if len(feats) != self.num_frames:
            raise ValueError(f"PSTFNet: {len(feats)} frames of features, num_frames={self.num_frames}")
        dim = 1 if self.fast else 2
        tapped = self._stream_exact() and all(isinstance(f, FrameFeatures) for f in feats)
        if not self.ptam_levels or tapped:  # the tap path reads older frames through their taps only
            levels = [f.unsqueeze(dim) for f in feats[-1]]
        else:
            levels = [torch.stack([f[lvl] for f in feats], dim=dim) for lvl in range(4)]
        if self.msfm_grid == "proportional":
            h, w = levels[0].shape[-2:]
            if (h, w) != self.img_size:
                raise ValueError(
                    f"PSTFNet(msfm_grid='proportional'): input {(h, w)} != img_size {self.img_size}"
                )
        if tapped:
            # Cached taps: no head re-run on older frames, M3D branches only at the window
            # positions the last output reads; same maths as forward() (BN folded, eval mode).
            p = [self._ptam_stream(str(i), feats) if str(i) in self.ptam else feats[-1][i] for i in range(4)]
        else:
            cur = (lambda f: f[:, -1]) if self.fast else (lambda f: f[:, :, -1])
            p = [self.ptam[str(i)](f) if str(i) in self.ptam else cur(f) for i, f in enumerate(levels)]
        y = self.msfm(p) if self.msfm is not None else p
        return Prediction(scores=probabilities(self.decoder(y)))


@register_model("pstfnet")
def pstfnet(paper_mode: bool = False, **kwargs: object) -> PSTFNet:
    """PSTFNet (PTAM + MSFM on a CBAM ResUNet); paper_mode=True: 384x384, T=5, proportional grid."""
    if paper_mode:
        fixed = {"img_size": 384, "num_frames": 5, "msfm_grid": "proportional", "token_mixer": "linear"}
        fixed |= {"reshape_mode": "lab", "channels": (8, 16, 32, 64)}
        clash = {k for k in fixed if k in kwargs and kwargs[k] != fixed[k]}
        if clash:
            raise ValueError(
                f"pstfnet(paper_mode=True) fixes {sorted(clash)}; drop them or use paper_mode=False"
            )
        kwargs = {**kwargs, **fixed}
    return PSTFNet(**kwargs)  # type: ignore[arg-type]
