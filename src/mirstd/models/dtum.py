"""ResUNet-DTUM: direction-coded temporal U-shape module (spec ``pstfnet.md`` Part B).

Li R., An W., Xiao C., Li B., Wang Y., Li M., Guo Y., "Direction-Coded Temporal U-Shape Module
for Multiframe Infrared Small Target Detection", IEEE TNNLS, doi 10.1109/TNNLS.2023.3331004.

A per-frame ResUNet (DTUM-repo ``res_UNet`` ending in 32 channels, 227,808 parameters) feeds the
stacked features ``(B, 32, T, H, W)`` to the DTUM (70,497 parameters); 298,305 in total.

Switches for the reference quirks (spec §B7): ``detach`` (D1, faithful ``True``: the deeper
temporal layers never learn), the direction code works on any device (D2) and any T (D3), the last
decoder conv has kernel ``(T, 1, 1)`` (D4; 5 at T = 5).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.registry import register_model
from mirstd.models.resunet import ClipNorm, ResUNet, check_clip, init_head_prior

__all__ = ["DTUM", "DTUMNet", "direction_code", "dtum"]


def direction_code(indices: torch.Tensor, in_hw: tuple[int, int]) -> torch.Tensor:
    """Direction code of 2x2 max-pool positions (spec §B4).

    ``indices`` index the flattened ``(T, H_in, W_in)`` volume per channel (``MaxPool3d`` with
    kernel (1, 2, 2)). With ``r = i mod (H_in W_in)``, ``h = r // W_in``, ``w = r mod W_in``:
    ``code = (w mod 2) + 2 (h mod 2) - 1.5`` in {-1.5 top-left, -0.5 top-right, +0.5 bottom-left,
    +1.5 bottom-right}.
    """
    h_in, w_in = in_hw
    r = indices % (h_in * w_in)
    return ((r % w_in) % 2 + 2 * ((r // w_in) % 2)).to(torch.float32) - 1.5


class _TConv(nn.Module):
    """Temporal conv ``Conv3d (k,1,1)`` + BN3d; ``abs_first`` puts ``|.|`` between them."""

    def __init__(self, cin: int, cout: int, k: int = 5, pad: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (k, 1, 1), padding=(k // 2 if pad else 0, 0, 0))
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor, abs_first: bool = False) -> torch.Tensor:
        y = self.conv(x)
        return F.relu(self.bn(y.abs() if abs_first else y))


class DTUM(nn.Module):
    """Direction-coded temporal U-module (spec §B4), features ``(B, c, T, H, W)`` -> logits
    ``(B, num_classes, H, W)`` of the last frame::

        x  = ReLU(BN0(f));  x1 = T(x)                      (T = ReLU(BN(Conv (5,1,1))))
        x_{k+1} = ReLU(BN(|Conv(P(x_k) * code(i_k))|))    k = 1..3 (P = 2x2 max-pool, indices i_k)
        o3 = T(cat[up x4, x3]);  o2 = T(cat[up o3, x2]) (detached when faithful)
        o1 = T_nopad(cat[up o2, x1])  (kernel (T,1,1): T -> 1)
        y  = Conv1x1(Dropout3d(ReLU(BN(Conv(1,3,3)(cat[o1, x[:, :, -1:]])))))
    """

    def __init__(
        self,
        in_channels: int = 32,
        num_classes: int = 1,
        num_frames: int = 5,
        detach: bool = True,
        head_prior: float | None = None,
    ) -> None:
        super().__init__()
        c = in_channels
        self.detach = detach
        self.bn0 = nn.BatchNorm3d(c)
        self.enc = nn.ModuleList(_TConv(c, c) for _ in range(4))  # x1..x4
        self.dec3, self.dec2 = _TConv(2 * c, c), _TConv(2 * c, c)
        self.dec1 = _TConv(2 * c, c, k=num_frames, pad=False)
        self.head = nn.Sequential(
            nn.Conv3d(2 * c, c, (1, 3, 3), padding=(0, 1, 1)),
            nn.BatchNorm3d(c),
            nn.ReLU(inplace=True),
            nn.Dropout3d(0.5),
            nn.Conv3d(c, num_classes, 1),
        )
        init_head_prior(self.head[-1], head_prior)

    @staticmethod
    def _up(x: torch.Tensor) -> torch.Tensor:
        return F.interpolate(x, scale_factor=(1.0, 2.0, 2.0), mode="nearest")

    def forward(self, feats: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.bn0(feats))
        xs = [self.enc[0](x)]
        for conv in self.enc[1:]:
            prev = xs[-1]
            pooled, idx = F.max_pool3d(prev, (1, 2, 2), (1, 2, 2), return_indices=True)
            xs.append(conv(pooled * direction_code(idx, prev.shape[-2:]), abs_first=True))
        o3 = self.dec3(torch.cat([self._up(xs[3]), xs[2]], dim=1))
        o2 = self.dec2(torch.cat([self._up(o3), xs[1]], dim=1))
        if self.detach:  # quirk D1: blocks gradients to dec2, dec3 and enc[1:]
            o2 = o2.detach()
        o1 = self.dec1(torch.cat([self._up(o2), xs[0]], dim=1))
        y = self.head(torch.cat([o1, x[:, :, -1:]], dim=1))
        return y[:, :, 0]


class DTUMNet(SegmentMethod):
    """ResUNet-DTUM for clips ``(B, C, T, H, W)`` in [0, 1] -> logits ``(B, 1, H, W)``.

    Args:
        detach: faithful ``o2.detach()`` (quirk D1); ``False`` for the fixed model.
        mean, std: on [0, 1] inputs; default = NUDT-MIRSDT raw statistics 105.4025 / 26.6452
            divided by 255 (spec §B2).
        head_prior: prior probability of the DTUM's final 1x1x1 logit conv
            (``resunet.init_head_prior``; default ``None``, PyTorch's
            default init as the reference code; 0.01 for ``loss=bce`` / ``focal``).
    """

    task = "segment"
    size_divisor = 8

    def __init__(
        self,
        in_channels: int = 3,
        num_frames: int = 5,
        channels: Sequence[int] = (8, 16, 32, 64),
        feat_channels: int = 32,
        detach: bool = True,
        mean: float | Sequence[float] = 105.4025 / 255.0,
        std: float | Sequence[float] = 26.6452 / 255.0,
        head_prior: float | None = None,  # resunet.HEAD_PRIOR explains why not 0.01
    ) -> None:
        super().__init__()
        if num_frames < 2:
            raise ValueError(f"DTUMNet: num_frames must be >= 2, got {num_frames}")
        self.in_channels, self.num_frames = in_channels, num_frames
        self.norm = ClipNorm(in_channels, mean, std)
        self.backbone = ResUNet(in_channels, channels, variant="dtum", out_channels=feat_channels)
        self.dtum = DTUM(feat_channels, 1, num_frames, detach, head_prior)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        check_clip(clip, self, min_frames=self.num_frames, exact_frames=self.num_frames)
        x = self.norm(clip)
        feats = torch.stack([self.backbone.forward_frame(x[:, :, t]) for t in range(x.shape[2])], dim=2)
        return self.dtum(feats)

    # Streaming (mirstd.infer.stream): the per-frame ResUNet features are cached. The DTUM itself
    # is not: its (5,1,1) temporal convs are zero-padded at the clip ends, so every level's value
    # at a given frame changes as the window slides; it runs once per new frame on the cached maps.
    def encode_frame(self, frame: torch.Tensor) -> torch.Tensor:
        """One frame ``(B, C, H, W)`` in [0, 1] -> its backbone features ``(B, feat, H, W)`` (eval)."""
        if self.training:
            raise RuntimeError("DTUMNet.encode_frame is for eval mode")
        return self.backbone.forward_frame(self.norm(frame.unsqueeze(2))[:, :, 0])

    def predict_from_features(self, feats: Sequence[torch.Tensor]):  # noqa: ANN201
        """``num_frames`` outputs of :meth:`encode_frame`, oldest first -> ``Prediction`` of the last."""
        from mirstd.models.base import Prediction

        if len(feats) != self.num_frames:
            raise ValueError(f"DTUMNet: {len(feats)} frames of features, num_frames={self.num_frames}")
        return Prediction(scores=torch.sigmoid(self.dtum(torch.stack(list(feats), dim=2)).float()))


@register_model("dtum")
def dtum(**kwargs: object) -> DTUMNet:
    """ResUNet-DTUM (direction-coded temporal U-module, TNNLS 2023); detach=False fixes quirk D1."""
    return DTUMNet(**kwargs)  # type: ignore[arg-type]
