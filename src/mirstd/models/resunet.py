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
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.registry import register_model

__all__ = [
    "ChannelAttention",
    "ClipNorm",
    "ResBlock",
    "ResCBAMBlock",
    "ResUNet",
    "ResUNetDecoder",
    "ResUNetEncoder",
    "SpatialAttention",
    "check_clip",
    "make_stage",
]


class ChannelAttention(nn.Module):
    """CBAM channel attention: ``sigmoid(MLP(avgpool(y)) + MLP(maxpool(y)))``, MLP shared.

    MLP = 1x1 conv c -> c/ratio (no bias), ReLU, 1x1 conv c/ratio -> c (no bias) (spec §A3).
    """

    def __init__(self, channels: int, ratio: int = 8) -> None:
        super().__init__()
        hidden = max(channels // ratio, 1)
        self.mlp = nn.Sequential(
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
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        stats = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        return torch.sigmoid(self.conv(stats))


class ResBlock(nn.Module):
    """Plain residual block: ``ReLU(BN(conv3x3(ReLU(BN(conv3x3 x)))) + shortcut(x))``.

    Shortcut = identity when ``cin == cout`` else ``BN(conv1x1(x))``; all convs have a bias
    (spec §A6, §B3).
    """

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.bn1 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.bn2 = nn.BatchNorm2d(cout)
        self.shortcut: nn.Module = (
            nn.Identity() if cin == cout else nn.Sequential(nn.Conv2d(cin, cout, 1), nn.BatchNorm2d(cout))
        )

    def body(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResCBAMBlock(ResBlock):
    """Residual block with CBAM on the residual branch (spec §A3):
    ``y = body(x); y = CA(y)*y; y = SA(y)*y; out = ReLU(y + shortcut(x))``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__(cin, cout)
        self.ca = ChannelAttention(cout)
        self.sa = SpatialAttention()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
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

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        for i, stage in enumerate(self.stages):
            x = stage(x if i == 0 else F.max_pool2d(x, 2))
            feats.append(x)
        return feats


class ResUNetDecoder(nn.Module):
    """U-Net decoder: at each level ``D_i = stage_i(cat[Y_i, up2(D_{i+1})])``, then a 1x1 head.

    ``up2`` is bilinear x2 with ``align_corners=True`` (spec §A6). ``inputs`` are the four skip
    maps, finest first; the coarsest one starts the decoder.
    """

    def __init__(
        self,
        channels: Sequence[int] = (8, 16, 32, 64),
        out_channels: int = 1,
        blocks: Sequence[int] = (2, 2, 2),
        block: type[ResBlock] = ResBlock,
    ) -> None:
        super().__init__()
        n = len(channels)
        # stages[i] works at level i (i = 0 .. n-2), input = skip_i + channels of level i+1.
        self.stages = nn.ModuleList(
            make_stage(block, channels[i] + channels[i + 1], channels[i], blocks[i]) for i in range(n - 1)
        )
        self.head = nn.Conv2d(channels[0], out_channels, 1)

    def forward(self, skips: Sequence[torch.Tensor]) -> torch.Tensor:
        d = skips[-1]
        for i in range(len(self.stages) - 1, -1, -1):
            up = F.interpolate(d, scale_factor=2.0, mode="bilinear", align_corners=True)
            d = self.stages[i](torch.cat([skips[i], up], dim=1))
        return self.head(d)


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


class ResUNet(nn.Module):
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
        if variant == "cbam":
            self.encoder = ResUNetEncoder(in_channels, channels, (2, 2, 2, 2), ResCBAMBlock)
            self.decoder = ResUNetDecoder(channels, out_channels, (2, 2, 2), ResBlock)
        else:
            self.encoder = ResUNetEncoder(in_channels, channels, (1, 2, 2, 2), ResBlock)
            self.decoder = ResUNetDecoder(channels, out_channels, (1, 1, 1), ResBlock)

    def forward_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """Normalised frame ``(B, C, H, W)`` -> output ``(B, out_channels, H, W)``."""
        return self.decoder(self.encoder(frame))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        """Clip ``(B, C, T, H, W)`` in [0, 1] -> logits ``(B, out_channels, H, W)`` of frame T-1."""
        check_clip(clip, self, min_frames=1)
        return self.forward_frame(self.norm(clip[:, :, -1:])[:, :, 0])

    @torch.no_grad()
    def predict(self, clip: torch.Tensor) -> dict[str, torch.Tensor]:
        """``{"scores": sigmoid(logits)}`` in eval mode (restores the previous mode)."""
        was_training = self.training
        self.eval()
        try:
            return {"scores": torch.sigmoid(self(clip))}
        finally:
            self.train(was_training)


@register_model("resunet")
def resunet(**kwargs: object) -> ResUNet:
    """Single-frame ResUNet (CBAM encoder of PSTFNet, last frame only; variant='dtum' for DTUM's)."""
    return ResUNet(**kwargs)  # type: ignore[arg-type]
