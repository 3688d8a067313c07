"""Residual U-Net building blocks and the single-frame ``resunet`` baseline.

Two flavours share this file (spec ``pstfnet.md`` §A3, §A6, §B3, Part C):

* ``"cbam"`` -- the PSTFNet backbone: ResCBAM encoder 8/16/32/64 (2 blocks per stage) and a plain
  residual decoder (2 blocks per stage) fed by the encoder skips. 256,761 parameters
  (= PSTFNet encoder 179,304 + decoder 77,457, spec §A8). It is the "Backbone (ResUNet)" row of
  PSTFNet Table 3 [inferred in the spec].
* ``"dtum"`` -- the DTUM repository's ``res_UNet``: plain residual blocks, one block in the first
  stage and one per decoder stage; 227,529 parameters with one output class, 227,808 with 32
  (the DTUM backbone, spec §B3).

Both take the whole clip ``(B, C, T, H, W)`` in [0, 1] and use only the last frame (spec Part C).

Training speed: convolutions are ``FastConv2d`` (same parameters as ``nn.Conv2d``, input gradient
as a forward conv) and BN layers ``FrameBatchNorm2d`` (stock BN unless an encoder call stacks the
frames of several clips, see PSTFNet); outputs, gradients and state dicts are unchanged.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.fuse import eval_bn_folded
from mirstd.models.registry import register_model

__all__ = [
    "ChannelAttention",
    "ClipNorm",
    "FastConv2d",
    "HEAD_PRIOR",
    "FrameBatchNorm2d",
    "ResBlock",
    "ResCBAMBlock",
    "ResUNet",
    "ResUNetDecoder",
    "ResUNetEncoder",
    "SpatialAttention",
    "check_clip",
    "channels_last",
    "conv2d_cl",
    "conv2d_same",
    "init_head_prior",
    "make_stage",
]


# ----------------------------------------------------------------------------------------------
# Training-speed helpers (identical outputs and state dicts; see benchmarks/bench_pstfnet.py)
# ----------------------------------------------------------------------------------------------
class _SameConv2dFn(torch.autograd.Function):
    """Stride-1, ungrouped ``F.conv2d`` whose input gradient is computed as a forward conv.

    ``dL/dx = conv2d(dL/dy, W^T flipped, padding = k - 1 - p)`` (the transposed convolution of a
    stride-1 conv). Mathematically the same gradient as autograd's, but PyTorch's CPU oneDNN
    backward-data kernel is 5-20x slower than its forward kernel for the few-channel maps of these
    models (measured: 2->2 9x9 at 2x256^2, 0.26 s vs 0.02 s). The weight gradient keeps the
    native kernel (``aten.convolution_backward``), which is fast.
    """

    @staticmethod
    def forward(ctx, x, weight, bias, padding):  # noqa: ANN001, ANN205
        ctx.save_for_backward(x, weight)
        ctx.padding = padding
        return F.conv2d(x, weight, bias, padding=padding)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx, grad):  # noqa: ANN001, ANN205
        x, weight = ctx.saved_tensors
        (ph, pw), (kh, kw) = ctx.padding, weight.shape[-2:]
        gx = gw = gb = None
        if ctx.needs_input_grad[0]:
            wt = weight.flip(2, 3).transpose(0, 1)
            gx = F.conv2d(grad, wt, padding=(kh - 1 - ph, kw - 1 - pw))
        if ctx.needs_input_grad[1]:
            gw = torch.ops.aten.convolution_backward(
                grad, x, weight, None, [1, 1], [ph, pw], [1, 1], False, [0, 0], 1, [False, True, False]
            )[1]
        if ctx.needs_input_grad[2]:
            gb = grad.sum((0, 2, 3))
        return gx, gw, gb, None


def conv2d_same(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, padding: tuple[int, int]
) -> torch.Tensor:
    """``F.conv2d(x, weight, bias, padding=padding)`` (stride 1, groups 1, ``p <= k - 1``) with the
    fast input gradient of ``_SameConv2dFn``; plain ``F.conv2d`` when no gradient is needed."""
    kh, kw = weight.shape[-2:]
    ph, pw = padding
    needs_grad = torch.is_grad_enabled() and (
        x.requires_grad or weight.requires_grad or (bias is not None and bias.requires_grad)
    )
    if not needs_grad:
        return conv2d_cl(x, weight, bias, padding=padding)
    if ph > kh - 1 or pw > kw - 1:
        return F.conv2d(x, weight, bias, padding=padding)
    return _SameConv2dFn.apply(x, weight, bias, (ph, pw))


def channels_last(x: torch.Tensor) -> torch.Tensor:
    """``x`` in channels_last memory: oneDNN's CPU convs on few-channel maps run 3-6x faster on it
    than on NCHW (measured at 384 px: 2 -> 2 3x3 over 5 frames 24.6 ms NCHW, 4.2 ms with this copy),
    so inference converts before each conv (a no-op when ``x`` already is channels_last)."""
    return x.contiguous(memory_format=torch.channels_last)


def conv2d_cl(
    x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, **kwargs: object
) -> torch.Tensor:
    """``F.conv2d`` with input and weight in channels_last memory (inference). The weight too:
    with an NCHW weight PyTorch may copy a channels-last input whose batch stride is not
    ``H*W*C`` (a frame sliced from a stacked clip) back to NCHW, 5x slower (measured 67 vs 12 ms)."""
    return F.conv2d(channels_last(x), channels_last(weight), bias, **kwargs)


class FastConv2d(nn.Conv2d):
    """``nn.Conv2d`` (same parameters and state dict) using ``conv2d_same`` when it applies
    (stride 1, dilation 1, groups 1, integer zero padding); otherwise the stock forward."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        simple = (
            self.stride == (1, 1)
            and self.dilation == (1, 1)
            and self.groups == 1
            and self.padding_mode == "zeros"
            and not isinstance(self.padding, str)
        )
        if not simple:
            return super().forward(x)
        return conv2d_same(x, self.weight, self.bias, tuple(self.padding))


class FrameBatchNorm2d(nn.BatchNorm2d):
    """``nn.BatchNorm2d`` that, on a batch of ``frames`` consecutive frames per clip (batch order
    ``(b, t)``), normalises every frame with its own batch statistics -- exactly what running the
    shared encoder once per frame does (spec §A3: the lab loop calls the encoder per frame).

    With ``frames = T > 1`` in training: statistics over ``(B, H, W)`` for each ``(t, c)`` (one
    ``batch_norm`` call on the ``(B, T*C, H, W)`` view), and the running statistics receive the
    ``T`` per-frame updates in frame order, as ``T`` separate calls would. ``frames`` is set by
    ``ResUNetEncoder.forward``; with ``frames = 1`` or running statistics in eval it is the stock
    layer. Parameters and buffers are those of ``nn.BatchNorm2d``.
    """

    frames: int = 1

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.frames
        use_batch_stats = self.training or self.running_mean is None
        if t == 1 or not use_batch_stats:
            return super().forward(x)
        n, c, h, w = x.shape
        if n % t:
            raise ValueError(f"FrameBatchNorm2d: batch {n} is not a multiple of frames={t}")
        track = self.training and self.track_running_stats and self.running_mean is not None
        mean = torch.zeros(t * c, device=x.device, dtype=x.dtype) if track else None
        var = torch.ones(t * c, device=x.device, dtype=x.dtype) if track else None
        weight = self.weight.repeat(t) if self.weight is not None else None
        bias = self.bias.repeat(t) if self.bias is not None else None
        # momentum 1: the temporary buffers receive this batch's per-(t, c) mean / unbiased var.
        y = F.batch_norm(x.reshape(n // t, t * c, h, w), mean, var, weight, bias, True, 1.0, self.eps)
        if track:
            self._update_running(mean.view(t, c), var.view(t, c))
        return y.view(n, c, h, w)

    @torch.no_grad()
    def _update_running(self, means: torch.Tensor, variances: torch.Tensor) -> None:
        for mean, var in zip(means, variances, strict=True):  # frame order = call order of the lab loop
            self.num_batches_tracked.add_(1)
            m = 1.0 / float(self.num_batches_tracked) if self.momentum is None else self.momentum
            self.running_mean.mul_(1 - m).add_(mean, alpha=m)
            self.running_var.mul_(1 - m).add_(var, alpha=m)


class ChannelAttention(nn.Module):
    """CBAM channel attention: ``sigmoid(MLP(avgpool(y)) + MLP(maxpool(y)))``, MLP shared.

    MLP = 1x1 conv c -> c/ratio (no bias), ReLU, 1x1 conv c/ratio -> c (no bias) (spec §A3).
    """

    def __init__(self, channels: int, ratio: int = 8) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.mlp = nn.Sequential(
            # 1x1 maps: the stock kernels are already cheap, FastConv2d would only add overhead.
            nn.Conv2d(channels, hidden, 1, bias=False),
            nn.ReLU(inplace=True),
            nn.Conv2d(hidden, channels, 1, bias=False),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.mlp(F.adaptive_avg_pool2d(x, 1))
        mx = self.mlp(F.adaptive_max_pool2d(x, 1))
        return torch.sigmoid(avg + mx)


class SpatialAttention(nn.Module):
    """CBAM spatial attention: ``sigmoid(conv7x7([mean_c(y), max_c(y)]))`` (no bias, pad 3)."""

    def __init__(self, kernel_size: int = 7) -> None:
        super().__init__()
        self.conv = FastConv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        if not torch.is_grad_enabled():  # oneDNN runs this 2 -> 1 7x7 conv 2.5x faster channels-last
            stats = stats.contiguous(memory_format=torch.channels_last)
        return torch.sigmoid(self.conv(stats))


class ResBlock(nn.Module):
    """Plain residual block: ``ReLU(BN(conv3x3(ReLU(BN(conv3x3 x)))) + shortcut(x))``.

    Shortcut = identity when ``cin == cout`` else ``BN(conv1x1(x))``; all convs have a bias
    (spec §A6, §B3).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = FastConv2d(cin, cout, 3, padding=1)
        self.bn1 = FrameBatchNorm2d(cout)
        self.conv2 = FastConv2d(cout, cout, 3, padding=1)
        self.bn2 = FrameBatchNorm2d(cout)
        self.shortcut: nn.Module = (
            nn.Identity() if cin == cout else nn.Sequential(FastConv2d(cin, cout, 1), FrameBatchNorm2d(cout))
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = self._folded()
        if folded is not None:
            return self._body_folded(x, folded).add_(self._shortcut_folded(x, folded)).relu_()
        return F.relu(self.body(x) + self.shortcut(x))

    # Inference (no gradient recorded, every BN on running statistics): BN folded into the convs
    # and the element-wise steps in place -- the same function with 2 fewer full-size passes per
    # conv (the encoders' few-channel maps make these passes, not the convs, the cost).
    def _folded(self) -> list[tuple[torch.Tensor, torch.Tensor | None]] | None:
        """Folded ``(weight, bias)`` of conv1, conv2 (and the shortcut conv) in inference, else None."""
        if torch.is_grad_enabled():
            return None
        pairs = [(self.conv1, self.bn1), (self.conv2, self.bn2)]
        if not isinstance(self.shortcut, nn.Identity):
            pairs.append((self.shortcut[0], self.shortcut[1]))
        folded = [eval_bn_folded(conv, bn) for conv, bn in pairs]
        return None if any(f is None for f in folded) else folded  # type: ignore[return-value]

    def _body_folded(self, x: torch.Tensor, folded: list) -> torch.Tensor:  # noqa: ANN001
        (w1, b1), (w2, b2) = folded[:2]
        y = conv2d_cl(x, w1, b1, padding=self.conv1.padding).relu_()
        return conv2d_cl(y, w2, b2, padding=self.conv2.padding)

    def _shortcut_folded(self, x: torch.Tensor, folded: list) -> torch.Tensor:  # noqa: ANN001
        if len(folded) == 2:
            return x
        (w, b), conv = folded[2], self.shortcut[0]
        return conv2d_cl(x, w, b, stride=conv.stride, padding=conv.padding)


class ResCBAMBlock(ResBlock):
    """Residual block with CBAM on the residual branch (spec §A3):
    ``y = body(x); y = CA(y)*y; y = SA(y)*y; out = ReLU(y + shortcut(x))``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout)
        self.ca = ChannelAttention(cout)
        self.sa = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        folded = self._folded()
        if folded is not None:  # inference: BN folded, in place (ResBlock._folded)
            y = self._body_folded(x, folded)
            y = y.mul_(self.ca(y))
            y = y.mul_(self.sa(y))
            return y.add_(self._shortcut_folded(x, folded)).relu_()
        y = self.body(x)
        y = self.ca(y) * y
        y = self.sa(y) * y
        return F.relu(y + self.shortcut(x))


def make_stage(block: type[ResBlock], cin: int, cout: int, num_blocks: int) -> nn.Sequential:
    """``num_blocks`` blocks, the first mapping ``cin -> cout``."""
    return nn.Sequential(block(cin, cout), *[block(cout, cout) for _ in range(num_blocks - 1)])


class ResUNetEncoder(nn.Module):
    """Four-stage encoder with 2x2 max-pooling between stages; returns the four feature maps
    at H, H/2, H/4, H/8 (spec §A3: ResCBAM, 2 blocks each, 8/16/32/64)."""

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (8, 16, 32, 64),
        blocks: Sequence[int] = (2, 2, 2, 2),
        block: type[ResBlock] = ResCBAMBlock,
    ) -> None:
        super().__init__()
        cins = [in_channels, *channels[:-1]]
        self.stages = nn.ModuleList(
            make_stage(block, ci, co, n) for ci, co, n in zip(cins, channels, blocks, strict=True)
        )

    def forward(self, x: torch.Tensor, frames: int = 1) -> list[torch.Tensor]:
        """``x (N, C, H, W)``; ``frames = T`` when ``N = B*T`` stacks the frames of ``B`` clips in
        ``(b, t)`` order and training-mode BN must see each frame alone (``FrameBatchNorm2d``)."""
        norms = [m for m in self.modules() if isinstance(m, FrameBatchNorm2d)]
        for m in norms:
            m.frames = frames
        try:
            feats = []
            for i, stage in enumerate(self.stages):
                x = stage(x if i == 0 else F.max_pool2d(x, 2))
                feats.append(x)
        finally:
            for m in norms:
                m.frames = 1
        return feats


HEAD_PRIOR = 0.01
"""Prior probability for :func:`init_head_prior` (RetinaNet / YOLOX objectness: 0.01), the default of
the newer heads that import it. ResUNet, PSTFNet and DTUM default to ``head_prior=None`` instead
(PyTorch's init, the reference code's), measured for issue 9: with their SoftIoU loss a prior of
0.01 *stalls* training (PSTFNet through the engine on synth:smoke, seed 0: 0.93 -> 0.89 in 100
steps, at 32 and 48 px) and 0.1 stalls ResUNet on seed 1 (0.90 -> 0.52 / 0.75 at lr 2e-2 / 1e-2),
while the default init learns on every seed and kernel set. SoftIoU is a ratio, so background
pixels do not dominate it as they dominate BCE, and a constant prediction lowers it most at p -> 0
(``smooth=1``): a low prior starts next to that trivial minimum with a saturated sigmoid. The prior
is the right start for ``loss=bce`` / ``loss=focal``."""


def init_head_prior(conv: nn.Module, prior: float | None) -> None:
    """Prior-probability init of a final logit conv (Lin et al., focal loss / RetinaNet; YOLOX's
    objectness): ``bias = -log((1 - p) / p)``, so every pixel starts at ``sigmoid = p`` instead of
    ~0.5 -- the right start for per-pixel BCE / focal losses, where ~99 % background pixels would
    otherwise dominate the first steps. ``None`` leaves PyTorch's default uniform bias (the
    paper/reference init; see :data:`HEAD_PRIOR` for when each fits). Parameter counts are
    unchanged; no RNG draw is added, so the other weights are the same with and without a prior."""
    if prior is None:
        return
    if not 0.0 < prior < 1.0:
        raise ValueError(f"head_prior must be in (0, 1) or None, got {prior}")
    nn.init.constant_(conv.bias, -math.log((1.0 - prior) / prior))


class ResUNetDecoder(nn.Module):
    """U-Net decoder: at each level ``D_i = stage_i(cat[Y_i, up2(D_{i+1})])``, then a 1x1 head.

    ``up2`` is bilinear x2 with ``align_corners=True`` (spec §A6). ``inputs`` are the four skip
    maps, finest first; the coarsest one starts the decoder. ``head_prior``: see
    :func:`init_head_prior` (``None`` keeps PyTorch's default bias init, as the reference code).
    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32, 64),
        out_channels: int = 1,
        blocks: Sequence[int] = (2, 2, 2),
        block: type[ResBlock] = ResBlock,
        head_prior: float | None = None,
    ) -> None:
        super().__init__()
        n = len(channels)
        # stages[i] works at level i (i = 0 .. n-2), input = skip_i + channels of level i+1.
        self.stages = nn.ModuleList(
            make_stage(block, channels[i] + channels[i + 1], channels[i], blocks[i]) for i in range(n - 1)
        )
        self.head = FastConv2d(channels[0], out_channels, 1)
        init_head_prior(self.head, head_prior)

    def features(self, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        """The finest decoder map, before the 1x1 head (ResUNet-DTUM fuses the head with its BN0)."""
        d = skips[-1]
        for i in range(len(self.stages) - 1, -1, -1):
            up = F.interpolate(d, scale_factor=2.0, mode="bilinear", align_corners=True)
            d = self.stages[i](torch.cat([skips[i], up], dim=1))
        return d

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        return self.head(self.features(skips))


class ClipNorm(nn.Module):
    """``(x - mean) / std`` per channel on a clip ``(B, C, T, H, W)``; mean/std are buffers.

    Default MIST normalisation: mean 0.359, std 0.15 on [0, 1] inputs (spec §A10).
    """

    def __init__(self, in_channels: int, mean: float | Sequence[float], std: float | Sequence[float]) -> None:
        super().__init__()

        def vec(v: float | Sequence[float], name: str) -> torch.Tensor:
            t = torch.as_tensor(v, dtype=torch.float32).flatten()
            if t.numel() == 1:
                t = t.expand(in_channels).clone()
            if t.numel() != in_channels:
                raise ValueError(f"{name} has {t.numel()} values, expected 1 or in_channels={in_channels}")
            return t.view(1, in_channels, 1, 1, 1)

        self.register_buffer("mean", vec(mean, "mean"))
        self.register_buffer("std", vec(std, "std"))
        if bool((self.std <= 0).any()):
            raise ValueError(f"std must be positive, got {std}")

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return (clip - self.mean) / self.std


def check_clip(
    clip: torch.Tensor, model: nn.Module, min_frames: int, exact_frames: int | None = None
) -> None:
    """Validate a clip against the model interface contract (docs/design.md, "Models")."""
    name = type(model).__name__
    if clip.dim() != 5:
        raise ValueError(f"{name}: expected a clip (B, C, T, H, W), got shape {tuple(clip.shape)}")
    _, c, t, h, w = clip.shape
    if c != model.in_channels:
        raise ValueError(f"{name}: clip has {c} channels, model in_channels={model.in_channels}")
    if exact_frames is not None and t != exact_frames:
        raise ValueError(f"{name}: clip has T={t} frames, model num_frames={exact_frames}")
    if t < min_frames:
        raise ValueError(f"{name}: clip has T={t} frames, need at least {min_frames}")
    d = model.size_divisor
    if h % d or w % d:
        raise ValueError(f"{name}: H, W = {h}, {w} must be multiples of size_divisor={d}")


class ResUNet(SegmentMethod):
    """Single-frame residual U-Net on the last frame of the clip (spec Part C).

    Args:
        in_channels: channels per frame (3 = grey replicated, as the reference).
        channels: encoder widths (finest first).
        variant: ``"cbam"`` (PSTFNet backbone: ResCBAM encoder with 2 blocks per stage, plain
            decoder with 2 blocks per stage) or ``"dtum"`` (DTUM repo ``res_UNet``: plain blocks,
            stage blocks (1, 2, 2, 2), decoder 1 block per stage).
        out_channels: output maps (1 = logits; 32 when used as the DTUM backbone).
        num_frames: frames the data pipeline should feed; only the last one is used.
        mean, std: input normalisation applied inside ``forward``.
        head_prior: prior probability p of the 1x1 logit head, ``bias = -log((1 - p) / p)``
            (:func:`init_head_prior`); default ``None`` = PyTorch's default init (the reference
            code; why: see ``HEAD_PRIOR``). Only used when ``out_channels == 1``.
    """

    task = "segment"
    size_divisor = 8

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (8, 16, 32, 64),
        variant: str = "cbam",
        out_channels: int = 1,
        num_frames: int = 1,
        mean: float | Sequence[float] = 0.359,
        std: float | Sequence[float] = 0.15,
        head_prior: float | None = None,
    ) -> None:
        super().__init__()
        if variant not in ("cbam", "dtum"):
            raise ValueError(f"ResUNet: variant must be 'cbam' or 'dtum', got {variant!r}")
        if len(channels) != 4:
            raise ValueError(f"ResUNet: channels must have 4 widths, got {tuple(channels)}")
        if num_frames < 1:
            raise ValueError(f"ResUNet: num_frames must be >= 1, got {num_frames}")
        self.in_channels = in_channels
        self.num_frames = num_frames
        self.variant = variant
        self.size_divisor = 2 ** (len(channels) - 1)
        self.norm = ClipNorm(in_channels, mean, std)
        prior = head_prior if out_channels == 1 else None  # 32 maps = DTUM features, not logits
        if variant == "cbam":
            self.encoder = ResUNetEncoder(in_channels, channels, (2, 2, 2, 2), ResCBAMBlock)
            self.decoder = ResUNetDecoder(channels, out_channels, (2, 2, 2), ResBlock, prior)
        else:
            self.encoder = ResUNetEncoder(in_channels, channels, (1, 2, 2, 2), ResBlock)
            self.decoder = ResUNetDecoder(channels, out_channels, (1, 1, 1), ResBlock, prior)

    def forward_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Normalised frame ``(B, C, H, W)`` -> output ``(B, out_channels, H, W)``."""
        return self.decoder(self.encoder(frame))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, C, T, H, W)`` in [0, 1] -> logits ``(B, out_channels, H, W)`` of frame T-1."""
        check_clip(clip, self, min_frames=1)
        return self.forward_frame(self.norm(clip[:, :, -1:])[:, :, 0])


@register_model("resunet")
def resunet(**kwargs: object) -> ResUNet:
    """Single-frame ResUNet (CBAM encoder of PSTFNet, last frame only; variant='dtum' for DTUM's)."""
    return ResUNet(**kwargs)  # type: ignore[arg-type]
