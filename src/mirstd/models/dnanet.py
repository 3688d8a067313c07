"""DNANet and DNANet-DTUM.

Li B., Xiao C., Wang L., Wang Y., Lin Z., Li M., An W., Guo Y., "Dense Nested Attention Network for
Infrared Small Target Detection", IEEE TIP 32, 2023 (code ``YeRen123455/Infrared-Small-Target-
Detection``, ``model/model_DNANet.py``; spec ``pstfnet.md`` Part C).

Dense nested U-Net of Res-CBAM blocks (``layers.ResCBAMBlock``) on a 5-level pyramid with widths
``c = (16, 32, 64, 128, 256)`` and ``blocks = (2, 2, 2, 2)`` (the "ResNet-18" setting)::

    x[0,0] = B(in);   x[i,0] = B(pool2 x[i-1,0])
    x[i,j] = B(cat[x[i,0..j-1], up2 x[i+1,j-1], down2 x[i-1,j]])    (down only for i > 0)
    F      = B(cat[up16 P(x[4,0]), up8 P(x[3,1]), up4 P(x[2,2]), up2 P(x[1,3]), x[0,4]])  (P = 1x1 -> c0)
    logits = final4(F)     deep supervision: [final1(x[0,1]), final2(x[0,2]), final3(x[0,3]), final4(F)]

``up``/``down`` are bilinear with ``align_corners=True``. 4,696,888 parameters (3 input channels,
deep supervision, as the authors train it); 4,696,837 without deep supervision. 27.86 GFLOPs
(2 x MACs; BasicIRSTD's thop 14.26 G is MACs) at 1x3x1x256x256.

**DNANet-DTUM** (Li R. et al., TNNLS 2023, ``TinaLRJ/Multi-frame-infrared-small-target-
detection-DTUM``, ``models/model_DNANet.py``): the DTUM repository's DNANet stops the nesting at
``x[0,3]`` (its forward comments out the fourth diagonal and the final fusion, which stay built and
are counted) and maps ``x[0,3]`` to 32 feature channels; it runs on every frame and
:class:`mirstd.models.dtum.DTUM` fuses the ``(B, 32, T, H, W)`` stack. 4,767,861 parameters
(DNANet 4,697,364 + DTUM 70,497); 86.50 GFLOPs at 1x3x5x256x256.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.dtum import DTUM
from mirstd.models.layers import IMAGENET_MEAN, IMAGENET_STD, FrameNorm, ResCBAMBlock, key_frame
from mirstd.models.losses import DeepSupervisionLoss, SoftIoULoss, build_loss
from mirstd.models.registry import register_model
from mirstd.models.resunet import HEAD_PRIOR, init_head_prior

__all__ = ["DNANet", "DNANetDTUM", "DNANetTrunk", "dnanet", "dnanet_dtum"]


def _up(x: torch.Tensor, s: float) -> torch.Tensor:
    return F.interpolate(x, scale_factor=s, mode="bilinear", align_corners=True)


class DNANetTrunk(nn.Module):
    """The nested encoder-decoder of DNANet (module names of the reference code).

    ``depth`` = number of nesting diagonals computed (4: full DNANet; 3: the DTUM repository's
    truncated forward). All modules are built either way, so state dicts and parameter counts match
    the reference. ``forward`` returns ``(x01, x02, x03, top)`` with ``top`` = the fused map ``F``
    (depth 4) or ``x03`` (depth 3).
    """

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2, 2),
        depth: int = 4,
    ) -> None:
        super().__init__()
        c = [int(v) for v in channels]
        if len(c) != 5 or len(blocks) != 4:
            raise ValueError(f"DNANet: channels needs 5 widths and blocks 4 counts, got {channels}, {blocks}")
        if depth not in (3, 4):
            raise ValueError(f"DNANet: depth must be 3 or 4, got {depth}")
        self.depth, self.channels = depth, c

        def layer(cin: int, cout: int, n: int = 1) -> nn.Sequential:
            return nn.Sequential(ResCBAMBlock(cin, cout), *[ResCBAMBlock(cout, cout) for _ in range(n - 1)])

        nblk = [1, *[int(b) for b in blocks]]  # blocks per row i (row 0 always 1)
        self.add_module("conv0_0", layer(in_channels, c[0]))
        for i in range(1, 5):
            self.add_module(f"conv{i}_0", layer(c[i - 1], c[i], nblk[i]))
        for j in range(1, 5):
            for i in range(0, 5 - j):
                cin = c[i] * j + c[i + 1] + (c[i - 1] if i > 0 else 0)
                self.add_module(f"conv{i}_{j}", layer(cin, c[i], nblk[i]))
        self.conv0_4_final = layer(c[0] * 5, c[0])
        for k in (4, 3, 2, 1):
            self.add_module(f"conv0_{k}_1x1", nn.Conv2d(c[k], c[0], 1))

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        nodes: dict[tuple[int, int], torch.Tensor] = {}
        for d in range(self.depth + 1):  # diagonal i + j = d, computed coarse to fine (reference order)
            for i in range(d, -1, -1):
                j = d - i
                if j == 0:
                    inp = x if i == 0 else F.max_pool2d(nodes[(i - 1, 0)], 2)
                else:
                    parts = [nodes[(i, jj)] for jj in range(j)] + [_up(nodes[(i + 1, j - 1)], 2.0)]
                    if i > 0:
                        parts.append(_up(nodes[(i - 1, j)], 0.5))
                    inp = torch.cat(parts, 1)
                nodes[(i, j)] = getattr(self, f"conv{i}_{j}")(inp)
        if self.depth == 3:
            top = nodes[(0, 3)]
        else:
            top = self.conv0_4_final(
                torch.cat(
                    [
                        _up(self.conv0_4_1x1(nodes[(4, 0)]), 16.0),
                        _up(self.conv0_3_1x1(nodes[(3, 1)]), 8.0),
                        _up(self.conv0_2_1x1(nodes[(2, 2)]), 4.0),
                        _up(self.conv0_1_1x1(nodes[(1, 3)]), 2.0),
                        nodes[(0, 4)],
                    ],
                    1,
                )
            )
        return nodes[(0, 1)], nodes[(0, 2)], nodes[(0, 3)], top


def xavier_conv_init(module: nn.Module) -> None:
    """The authors' ``weights_init_xavier``: ``xavier_normal_`` on every Conv2d weight (biases keep
    PyTorch's default)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.xavier_normal_(m.weight)


class DNANet(SegmentMethod):
    """DNANet on the key frame of the clip.

    Args:
        in_channels: 3 (grey replicated, the authors' setting; BasicIRSTD uses 1).
        channels, blocks: pyramid widths and Res-CBAM blocks per encoder stage.
        deep_supervision: four 1x1 heads (``forward`` returns the list, coarse nesting first);
            the loss averages over them; ``predict`` uses the last.
        mean, std: on [0, 1] inputs (ImageNet statistics, as the authors' loader).
        head_prior: prior probability of the final logit convs (``resunet.init_head_prior``);
            ``None`` = the reference init.
    """

    task = "segment"
    size_divisor = 16
    num_frames = 1

    def __init__(
        self,
        in_channels: int = 3,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2, 2),
        deep_supervision: bool = True,
        num_frames: int = 1,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        head_prior: float | None = HEAD_PRIOR,
    ) -> None:
        super().__init__()
        self.in_channels, self.num_frames = int(in_channels), int(num_frames)
        self.deep_supervision = bool(deep_supervision)
        self.norm = FrameNorm(self.in_channels, mean, std)
        self.trunk = DNANetTrunk(in_channels, channels, blocks, depth=4)
        c0 = self.trunk.channels[0]
        names = ("final1", "final2", "final3", "final4") if self.deep_supervision else ("final",)
        for n in names:
            self.add_module(n, nn.Conv2d(c0, 1, 1))
        xavier_conv_init(self)
        for n in names:
            init_head_prior(getattr(self, n), head_prior)

    def forward(self, clip: torch.Tensor) -> torch.Tensor | list[torch.Tensor]:
        """Clip ``(B, C, T, H, W)`` in [0, 1] -> logits ``(B, 1, H, W)`` (a list of four with deep
        supervision)."""
        x01, x02, x03, top = self.trunk(self.norm(key_frame(self, clip)))
        if self.deep_supervision:
            return [self.final1(x01), self.final2(x02), self.final3(x03), self.final4(top)]
        return self.final(top)

    def set_loss(self, name: str | None, **kwargs: Any) -> None:
        """Per-output loss (default: the authors' SoftIoU, one ratio over the batch, smooth 1),
        averaged over the deep-supervision outputs."""
        base = SoftIoULoss(smooth=1.0, per_sample=False) if name is None else build_loss(name, **kwargs)
        self._loss_fn = DeepSupervisionLoss(base)

    def loss(self, outputs: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if getattr(self, "_loss_fn", None) is None:
            self.set_loss(None)
        outs = outputs if isinstance(outputs, (list, tuple)) else [outputs]
        return {"loss": self._loss_fn([o.float() for o in outs], batch["mask"])}

    def final_logits(self, outputs: Any) -> torch.Tensor:
        """The last deep-supervision output (the final map) when ``forward`` returns a list."""
        return outputs[-1] if isinstance(outputs, list) else outputs


class DNANetDTUM(SegmentMethod):
    """DNANet-DTUM: the DTUM repository's truncated DNANet (32 output features) on every frame,
    then the DTUM (:class:`mirstd.models.dtum.DTUM`) -> logits of the key frame.

    Frames run one at a time through the shared DNANet (each call its own BN batch statistics, as
    the reference loop). ``detach`` is the DTUM's faithful quirk D1 (see ``dtum.py``).
    """

    task = "segment"
    size_divisor = 16

    def __init__(
        self,
        in_channels: int = 3,
        num_frames: int = 5,
        channels: Sequence[int] = (16, 32, 64, 128, 256),
        blocks: Sequence[int] = (2, 2, 2, 2),
        feat_channels: int = 32,
        detach: bool = True,
        mean: float | Sequence[float] = 105.4025 / 255.0,
        std: float | Sequence[float] = 26.6452 / 255.0,
        head_prior: float | None = HEAD_PRIOR,
    ) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"DNANetDTUM: num_frames must be >= 2, got {num_frames}")
        self.in_channels, self.num_frames = int(in_channels), int(num_frames)
        self.norm = FrameNorm(self.in_channels, mean, std)
        self.trunk = DNANetTrunk(in_channels, channels, blocks, depth=3)
        self.final = nn.Conv2d(
            self.trunk.channels[0], feat_channels, 1
        )  # PyTorch default init, as the DTUM repo
        self.dtum = DTUM(feat_channels, 1, num_frames, detach, head_prior)

    def features(self, frame: torch.Tensor) -> torch.Tensor:
        """Normalised frame ``(B, C, H, W)`` -> DNANet features ``(B, feat_channels, H, W)``."""
        return self.final(self.trunk(frame)[-1])

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        key_frame(self, clip)
        if clip.shape[2] != self.num_frames:
            raise ValueError(
                f"DNANetDTUM: clip has T={clip.shape[2]} frames, model num_frames={self.num_frames}"
            )
        feats = torch.stack([self.features(self.norm(clip[:, :, t])) for t in range(clip.shape[2])], 2)
        return self.dtum(feats)


@register_model("dnanet")
def dnanet(**kwargs: Any) -> DNANet:
    """DNANet (dense nested attention network, Li et al., IEEE TIP 2023); key frame only."""
    return DNANet(**kwargs)


@register_model("dnanet_dtum")
def dnanet_dtum(**kwargs: Any) -> DNANetDTUM:
    """DNANet-DTUM (DNANet per frame + direction-coded temporal U-module, Li et al., TNNLS 2023)."""
    return DNANetDTUM(**kwargs)
