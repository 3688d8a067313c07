"""Layers shared by the single-frame baselines (DNANet, ISNet, UIUNet, RDIAN).

Module and parameter names follow the authors' code where they hold parameters, so the reference
state dicts load with ``strict=True`` (DNANet ``fc1``/``fc2``/``conv1``, FCN head ``block.*``...).

- :class:`ChannelAttention`, :class:`SpatialAttention`, :class:`ResCBAMBlock`: DNANet's Res-CBAM
  block (Woo et al., "CBAM", ECCV 2018) -- ``y = SA(y)·(CA(y)·y)`` on the residual branch.
- :class:`FCNHead`: ``conv3x3 (c -> c/4, no bias) - BN - ReLU - Dropout(0.1) - conv1x1`` (ISNet, RDIAN).
- :func:`deform_conv2d`: modulated deformable convolution (DCNv2, Zhu et al. CVPR 2019) in plain
  torch -- the authors' ISNet uses the compiled ``DCNv2`` extension; this is a reimplementation
  with the same sampling rule (bilinear, zero outside the image) and offset layout.
- :func:`key_frame`: the last frame of a clip, after the contract check.
- :func:`pointwise_conv`: a 1x1 (1x1x1) convolution as one GEMM over channels-last pixel rows
  (ResUNet-DTUM's temporal convs, SMFNet's 1x1 convs).
"""

from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.resunet import FastConv2d

__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ChannelAttention",
    "FCNHead",
    "ModulatedDeformConv2d",
    "ResCBAMBlock",
    "SpatialAttention",
    "deform_conv2d",
    "key_frame",
    "pointwise_conv",
]

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def pointwise_conv(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None = None) -> torch.Tensor:
    """1x1 conv of ``x (B, I, *spatial)`` (2 or 3 spatial dims) with ``weight (O, I)`` (or the
    conv's ``(O, I, 1, ...)``) as ``rows (B*pixels, I) @ weight^T``; returns ``(B, O, *spatial)`` in
    channels_last (channels_last_3d) memory.

    Why: PyTorch picks a 1x1 conv's CPU kernel by thread count (one thread: the native
    ``slow_conv2d`` / ``slow_conv3d``, im2col and NCHW output; more: oneDNN, with layout reorders).
    On channels-last memory the pixels already are the rows of a GEMM -- also for a channel slice
    (``x[:, c0:c1]``, rows strided by the full width), which BLAS reads in place."""
    w = weight.reshape(weight.shape[0], -1)
    perm = (0, *range(2, x.dim()), 1)
    pix = x.permute(perm)  # (B, *spatial, I); a view of contiguous memory for channels-last x
    rows = pix.reshape(-1, pix.shape[-1])  # a view when pixels are evenly strided, else one copy
    y = rows @ w.t() if bias is None else torch.addmm(bias, rows, w.t())
    inv = (0, x.dim() - 1, *range(1, x.dim() - 1))
    return y.view(*pix.shape[:-1], w.shape[0]).permute(inv)


def key_frame(model: nn.Module, clip: torch.Tensor) -> torch.Tensor:
    """Validate ``clip (B, C, T, H, W)`` against ``model``'s contract (any T >= 1) and return the
    key (last) frame ``(B, C, H, W)``."""
    name = type(model).__name__
    if clip.dim() != 5:
        raise ValueError(f"{name}: expected a clip (B, C, T, H, W), got shape {tuple(clip.shape)}")
    _, c, t, h, w = clip.shape
    if c != model.in_channels:
        raise ValueError(f"{name}: clip has {c} channels, model in_channels={model.in_channels}")
    if t < 1:
        raise ValueError(f"{name}: clip has no frames")
    d = model.size_divisor
    if h % d or w % d:
        raise ValueError(f"{name}: H, W = {h}, {w} must be multiples of size_divisor={d}")
    return clip[:, :, -1]


class FrameNorm(nn.Module):
    """``(x - mean) / std`` per channel of a frame ``(B, C, H, W)``; buffers (not in the state dict)."""

    def __init__(
        self, channels: int, mean: float | tuple[float, ...], std: float | tuple[float, ...]
    ) -> None:
        super().__init__()

        def vec(v: float | tuple[float, ...], what: str) -> torch.Tensor:
            t = torch.as_tensor(v, dtype=torch.float32).flatten()
            if t.numel() == 1:
                t = t.expand(channels).clone()
            if t.numel() < channels:
                raise ValueError(f"{what} has {t.numel()} values, expected 1 or {channels}")
            return t[:channels].view(1, channels, 1, 1)

        self.register_buffer("mean", vec(mean, "mean"), persistent=False)
        self.register_buffer("std", vec(std, "std"), persistent=False)
        if bool((self.std <= 0).any()):
            raise ValueError(f"std must be positive, got {std}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x - self.mean) / self.std


# ----------------------------------------------------------------------------------------------
# CBAM / Res-CBAM (DNANet naming)
# ----------------------------------------------------------------------------------------------
class ChannelAttention(nn.Module):
    """``sigmoid(fc2(relu(fc1(avgpool x))) + fc2(relu(fc1(maxpool x))))``; hidden width
    ``max(c // ratio, 1)`` (DNANet: ratio 16, no bias)."""

    def __init__(self, channels: int, ratio: int = 16) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.fc1 = nn.Conv2d(channels, hidden, 1, bias=False)
        self.fc2 = nn.Conv2d(hidden, channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.fc2(F.relu(self.fc1(F.adaptive_avg_pool2d(x, 1))))
        m = self.fc2(F.relu(self.fc1(F.adaptive_max_pool2d(x, 1))))
        return torch.sigmoid(a + m)


class SpatialAttention(nn.Module):
    """``conv_k([mean_c x, max_c x])`` (no bias), followed by a sigmoid unless ``sigmoid=False``
    (UIUNet's variant returns the raw map)."""

    def __init__(self, kernel_size: int = 7, sigmoid: bool = True) -> None:
        super().__init__()
        self.conv1 = FastConv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)
        self.sigmoid = sigmoid

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv1(torch.cat([x.mean(1, keepdim=True), x.amax(1, keepdim=True)], 1))
        return torch.sigmoid(y) if self.sigmoid else y


class ResCBAMBlock(nn.Module):
    """DNANet ``Res_CBAM_block``: ``y = BN(conv3(ReLU(BN(conv3 x))))``, ``y = CA(y)·y``,
    ``y = SA(y)·y``, ``out = ReLU(y + shortcut(x))``; shortcut ``BN(conv1x1)`` when the width
    changes (all convs with bias)."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = FastConv2d(cin, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = FastConv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut = nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout)) if cin != cout else None
        self.ca = ChannelAttention(cout)
        self.sa = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.shortcut is None else self.shortcut(x)
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        y = self.ca(y) * y
        y = self.sa(y) * y
        return F.relu(y + res)


class FCNHead(nn.Module):
    """``conv3x3 (c -> c/4, no bias) - BN - ReLU - Dropout(0.1) - conv1x1 (-> out, bias)``."""

    def __init__(self, channels: int, out_channels: int) -> None:
        super().__init__()
        inter = max(channels // 4, 1)
        self.block = nn.Sequential(
            FastConv2d(channels, inter, 3, padding=1, bias=False),
            nn.BatchNorm2d(inter),
            nn.ReLU(True),
            nn.Dropout(0.1),
            nn.Conv2d(inter, out_channels, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


# ----------------------------------------------------------------------------------------------
# Modulated deformable convolution (DCNv2) in plain torch
# ----------------------------------------------------------------------------------------------
def _bilinear_zero(x: torch.Tensor, py: torch.Tensor, px: torch.Tensor) -> torch.Tensor:
    """Sample ``x (B, C, H, W)`` at fractional positions ``py, px (B, K, L)`` (pixel units);
    corners outside the image contribute 0 (the DCNv2 rule). Returns ``(B, C, K, L)``."""
    b, c, h, w = x.shape
    k, n = py.shape[1], py.shape[2]
    y0, x0 = torch.floor(py), torch.floor(px)
    ly, lx = py - y0, px - x0
    y0l, x0l = y0.long(), x0.long()
    flat = x.reshape(b, c, h * w)
    out = x.new_zeros(b, c, k * n)
    for dy, wy in ((0, 1 - ly), (1, ly)):
        for dx, wx in ((0, 1 - lx), (1, lx)):
            yi, xi = y0l + dy, x0l + dx
            valid = (yi >= 0) & (yi < h) & (xi >= 0) & (xi < w)
            idx = (yi.clamp(0, h - 1) * w + xi.clamp(0, w - 1)).reshape(b, 1, k * n).expand(b, c, k * n)
            wgt = (wy * wx * valid.to(x.dtype)).reshape(b, 1, k * n)
            out = out + flat.gather(2, idx) * wgt
    return out.view(b, c, k, n)


def deform_conv2d(
    x: torch.Tensor,
    offset: torch.Tensor,
    mask: torch.Tensor | None,
    weight: torch.Tensor,
    bias: torch.Tensor | None = None,
    stride: int | tuple[int, int] = 1,
    padding: int | tuple[int, int] = 0,
    dilation: int | tuple[int, int] = 1,
) -> torch.Tensor:
    """Modulated deformable conv (DCNv2), one deformable group.

    Output ``y[o, p] = b[o] + Σ_c Σ_k W[o, c, k] · m_k(p) · x_c(p0 + p_k + Δp_k(p))`` with
    ``p0 = p·stride - padding``, ``p_k`` the k-th kernel tap (row-major, times dilation), ``Δp_k``
    = ``(offset[2k], offset[2k+1])`` = (dy, dx) -- the layout of the DCNv2 extension and
    torchvision -- and ``x`` sampled bilinearly with zero outside the image. ``mask=None`` is DCNv1.
    """
    sh, sw = (stride, stride) if isinstance(stride, int) else stride
    ph, pw = (padding, padding) if isinstance(padding, int) else padding
    dh, dw = (dilation, dilation) if isinstance(dilation, int) else dilation
    b, c, h, w = x.shape
    o, ci, kh, kw = weight.shape
    if ci != c:
        raise ValueError(f"deform_conv2d: input has {c} channels, weight expects {ci}")
    ho = (h + 2 * ph - dh * (kh - 1) - 1) // sh + 1
    wo = (w + 2 * pw - dw * (kw - 1) - 1) // sw + 1
    k = kh * kw
    if offset.shape != (b, 2 * k, ho, wo):
        raise ValueError(f"deform_conv2d: offset shape {tuple(offset.shape)}, expected {(b, 2 * k, ho, wo)}")
    dev, dt = x.device, x.dtype
    ki = (torch.arange(kh, device=dev, dtype=dt) * dh).repeat_interleave(kw)  # (K,)
    kj = (torch.arange(kw, device=dev, dtype=dt) * dw).repeat(kh)
    gy = torch.arange(ho, device=dev, dtype=dt) * sh - ph
    gx = torch.arange(wo, device=dev, dtype=dt) * sw - pw
    off = offset.view(b, k, 2, ho, wo)
    py = gy.view(1, 1, ho, 1) + ki.view(1, k, 1, 1) + off[:, :, 0]
    px = gx.view(1, 1, 1, wo) + kj.view(1, k, 1, 1) + off[:, :, 1]
    cols = _bilinear_zero(x, py.reshape(b, k, ho * wo), px.reshape(b, k, ho * wo))  # (B, C, K, L)
    if mask is not None:
        cols = cols * mask.reshape(b, 1, k, ho * wo)
    y = torch.einsum("ock,bckl->bol", weight.reshape(o, c, k), cols)
    if bias is not None:
        y = y + bias.view(1, o, 1)
    return y.view(b, o, ho, wo)


class ModulatedDeformConv2d(nn.Module):
    """The DCNv2 extension's ``DCN`` layer (names ``weight``, ``bias``, ``conv_offset_mask``):
    ``conv_offset_mask`` (a plain conv, zero-initialised) predicts ``[o1, o2, m]`` (K channels each);
    offsets = ``cat(o1, o2)``, modulation = ``sigmoid(m)``; then :func:`deform_conv2d`."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel_size: tuple[int, int],
        stride: int = 1,
        padding: tuple[int, int] = (0, 0),
    ) -> None:
        super().__init__()
        kh, kw = kernel_size
        self.stride, self.padding = stride, padding
        self.weight = nn.Parameter(torch.empty(cout, cin, kh, kw))
        self.bias = nn.Parameter(torch.zeros(cout))
        bound = 1.0 / float(cin * kh * kw) ** 0.5
        nn.init.uniform_(self.weight, -bound, bound)
        self.conv_offset_mask = nn.Conv2d(cin, 3 * kh * kw, kernel_size, stride, padding)
        nn.init.zeros_(self.conv_offset_mask.weight)
        nn.init.zeros_(self.conv_offset_mask.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        o1, o2, m = torch.chunk(self.conv_offset_mask(x), 3, dim=1)
        return deform_conv2d(
            x, torch.cat([o1, o2], 1), torch.sigmoid(m), self.weight, self.bias, self.stride, self.padding
        )
