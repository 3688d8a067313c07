"""ResUNet-DTUM: direction-coded temporal U-shape module (spec ``pstfnet.md`` Part B).

Li R., An W., Xiao C., Li B., Wang Y., Li M., Guo Y., "Direction-Coded Temporal U-Shape Module
for Multiframe Infrared Small Target Detection", IEEE TNNLS, doi 10.1109/TNNLS.2023.3331004.

A per-frame ResUNet (DTUM-repo ``res_UNet`` ending in 32 channels, 227,808 parameters) feeds the
stacked features ``(B, 32, T, H, W)`` to the DTUM (70,497 parameters); 298,305 in total.

Switches for the reference quirks (spec §B7): ``detach`` (D1, faithful ``True``: the deeper
temporal layers never learn), the direction code works on any device (D2) and any T (D3), the last
decoder conv has kernel ``(T, 1, 1)`` (D4; 5 at T = 5).

CPU speed (issue 15): ``DTUM.fast`` (default) runs the module as 2D ops on a time-major
flattening (the section "Fast path" below), in train and eval; in eval ``DTUMNet`` also runs the
backbone on all frames at once and fuses its 1x1 head with BN0. ``fast = False`` is the literal
Conv3d form; ``tests/models/test_fast_paths.py`` checks both agree (float64, train and eval).
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.layers import pointwise_conv
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


# ----------------------------------------------------------------------------------------------
# Fast path: the whole DTUM as 2D ops on the time-major flattening (B, T*C, H, W), index t*C + c
# ----------------------------------------------------------------------------------------------
# Why: PyTorch's CPU Conv3d with a (k, 1, 1) kernel runs the slow native kernel
# (``aten::slow_conv3d_forward``, ~70 % of the faithful forward at 256 px, with 240k page faults for
# its temporaries). On the flattening a (k, 1, 1) conv over T frames is a 1x1 conv with the
# block-banded ``(T'*Cout, T*Cin)`` matrix of ``_temporal_matrix``: one GEMM over the channels_last
# pixels. The (1, 2, 2) pooling and nearest upsampling are their 2D forms per (t, c) plane.
# Time-major (not c*T + t) so that a frame is a contiguous channel block: the last frame's slice is
# a block and the per-frame backbone writes each pixel's frames in order. Parameters are unchanged.
def _temporal_matrix(weight: torch.Tensor, t_in: int, pad: int) -> torch.Tensor:
    """Conv3d weight ``(Cout, Cin, k, 1, 1)`` -> the ``(T_out*Cout, T_in*Cin)`` matrix of the same
    zero-padded temporal conv on time-major flattenings: entry ``(t*Cout + o, s*Cin + c)`` =
    ``w[o, c, s - t + pad]`` inside the kernel, else 0. Differentiable in ``weight``."""
    cout, cin, k = weight.shape[:3]
    t_out = t_in + 2 * pad - k + 1
    ar = torch.arange(max(t_in, t_out), device=weight.device)
    tap = ar[None, :t_in] - ar[:t_out, None] + pad  # (T_out, T_in): kernel tap of each frame pair
    inside = ((tap >= 0) & (tap < k)).to(weight.dtype)
    w = weight.reshape(cout, cin, k)[:, :, tap.clamp(0, k - 1)] * inside  # (Cout, Cin, T_out, T_in)
    return w.permute(2, 0, 3, 1).reshape(t_out * cout, t_in * cin)


def _bn_affine(bn: nn.BatchNorm3d) -> tuple[torch.Tensor, torch.Tensor]:
    """Eval BN as ``y * scale + shift`` per channel."""
    scale = bn.weight / torch.sqrt(bn.running_var + bn.eps)
    return scale, bn.bias - bn.running_mean * scale


def _uses_batch_stats(bn: nn.BatchNorm3d) -> bool:
    return bn.training or bn.running_mean is None


def _bn_flat(bn: nn.BatchNorm3d, x: torch.Tensor, t: int) -> torch.Tensor:
    """``bn`` on a flattening ``(B, T*C, H, W)``: with batch statistics through the 5D view (over
    (B, T, H, W) per channel, running statistics updated as by the faithful call), eval as ``addcmul``."""
    b, tc, h, w = x.shape
    if _uses_batch_stats(bn):
        y = bn(x.view(b, t, tc // t, h, w).transpose(1, 2))
        return y.transpose(1, 2).reshape(b, tc, h, w)
    scale, shift = _bn_affine(bn)
    return torch.addcmul(shift.repeat(t)[:, None, None], x, scale.repeat(t)[:, None, None])


def _bn_relu_flat(bn: nn.BatchNorm3d, x: torch.Tensor, t: int, inplace: bool) -> torch.Tensor:
    """``ReLU(bn(x))`` on a flattening; ``inplace`` (the caller owns ``x``) overwrites ``x`` when no
    gradient is recorded and BN is affine (eval), saving a full-resolution allocation."""
    if not (inplace and not torch.is_grad_enabled() and not _uses_batch_stats(bn)):
        return _bn_flat(bn, x, t).relu_()
    scale, shift = _bn_affine(bn)
    return x.mul_(scale.repeat(t)[:, None, None]).add_(shift.repeat(t)[:, None, None]).relu_()


def flatten_clip_features(feats: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> the time-major flattening ``(B, T*C, H, W)``, channels_last, one copy."""
    b, c, t, h, w = feats.shape
    pix = feats.permute(0, 3, 4, 2, 1).contiguous()  # (B, H, W, T, C): a pixel's frames in order
    return pix.view(b, h, w, t * c).permute(0, 3, 1, 2)


def _direction_table(h_in: int, w_in: int, like: torch.Tensor) -> torch.Tensor:
    """Direction code of every position of an ``h_in x w_in`` plane, flattened (spec §B4): a gather
    with the 2D pool indices replaces the faithful ``remainder`` arithmetic (8 % of its forward)."""
    h = torch.arange(h_in, device=like.device) % 2
    w = torch.arange(w_in, device=like.device) % 2
    return (w[None] + 2 * h[:, None]).to(like.dtype).flatten() - 1.5


def _coded_pool(x: torch.Tensor) -> torch.Tensor:
    """``P(x) * code(i)`` on a flattening (2x2 max-pool per (t, c) plane, indices within the plane;
    first maximum in scan order as ``MaxPool3d`` (1, 2, 2), so ties give the same code)."""
    pooled, idx = F.max_pool2d(x, 2, 2, return_indices=True)
    # advanced indexing keeps idx's channels_last layout (``take`` would not: a slow mixed-layout mul)
    return pooled * _direction_table(x.shape[-2], x.shape[-1], x)[idx]


def _up2(x: torch.Tensor) -> torch.Tensor:
    return F.interpolate(x, scale_factor=2.0, mode="nearest")


class _TConv(nn.Module):
    """Temporal conv ``Conv3d (k,1,1)`` + BN3d; ``abs_first`` puts ``|.|`` between them."""

    def __init__(self, cin: int, cout: int, k: int = 5, pad: bool = True) -> None:
        super().__init__()
        self.conv = nn.Conv3d(cin, cout, (k, 1, 1), padding=(k // 2 if pad else 0, 0, 0))
        self.bn = nn.BatchNorm3d(cout)

    def forward(self, x: torch.Tensor, abs_first: bool = False) -> torch.Tensor:
        y = self.conv(x)
        return F.relu(self.bn(y.abs() if abs_first else y))

    def t_out(self, t_in: int) -> int:
        return t_in + 2 * self.conv.padding[0] - self.conv.kernel_size[0] + 1

    def _weights(self, t_in: int, fold: bool) -> tuple[torch.Tensor, torch.Tensor]:
        """Weight matrix ``(T'*Cout, T*Cin)`` and bias of the flattened conv; with ``fold``
        the eval BN is folded in (``W' = W * scale``, ``b' = b * scale + shift``)."""
        t_out = self.t_out(t_in)
        w = _temporal_matrix(self.conv.weight, t_in, self.conv.padding[0])
        b = self.conv.bias
        if fold:
            scale, shift = _bn_affine(self.bn)
            w = w * scale.repeat(t_out)[:, None]
            b = b * scale + shift
        return w, b.repeat(t_out)

    def flat(self, x: torch.Tensor, t_in: int, abs_first: bool = False) -> torch.Tensor:
        """``forward`` on a flattening ``(B, T*Cin, H, W)`` -> ``(B, T'*Cout, H, W)``."""
        fold = not abs_first and not _uses_batch_stats(self.bn)
        w, b = self._weights(t_in, fold)
        y = pointwise_conv(x, w, b)
        if abs_first:
            y = y.abs()
        return (y if fold else _bn_flat(self.bn, y, self.t_out(t_in))).relu_()

    def flat_up_cat(self, low: torch.Tensor, skip: torch.Tensor, t_in: int) -> torch.Tensor:
        """``flat(cat[up2(low), skip])`` without building the full-resolution concatenation: the
        1x1 conv commutes with nearest copying, so the ``low`` half runs at low resolution and is
        upsampled after (2x less upsampled data at T' = T, 10x less at T' = 1)."""
        fold = not _uses_batch_stats(self.bn)
        w, b = self._weights(t_in, fold)
        halves = w.view(w.shape[0], t_in, 2, -1)  # input index t*2C + c': c' < C from ``low``
        w_low, w_skip = (halves[:, :, i].reshape(w.shape[0], -1) for i in (0, 1))
        y = pointwise_conv(skip, w_skip, b).add_(_up2(pointwise_conv(low, w_low)))
        return (y if fold else _bn_flat(self.bn, y, self.t_out(t_in))).relu_()


class DTUM(nn.Module):
    """Direction-coded temporal U-module (spec §B4), features ``(B, c, T, H, W)`` -> logits
    ``(B, num_classes, H, W)`` of the last frame::

        x  = ReLU(BN0(f));  x1 = T(x)                      (T = ReLU(BN(Conv (5,1,1))))
        x_{k+1} = ReLU(BN(|Conv(P(x_k) * code(i_k))|))    k = 1..3 (P = 2x2 max-pool, indices i_k)
        o3 = T(cat[up x4, x3]);  o2 = T(cat[up o3, x2]) (detached when faithful)
        o1 = T_nopad(cat[up o2, x1])  (kernel (T,1,1): T -> 1)
        y  = Conv1x1(Dropout3d(ReLU(BN(Conv(1,3,3)(cat[o1, x[:, :, -1:]])))))

    ``fast`` (default): the same function as 2D ops on the flattening ``(B, T*c, H, W)`` in
    channels_last memory (``forward_flat``; train and eval, eval BN folded into the convs where no
    ``|.|`` stands between them); ``fast = False``: the literal Conv3d form (``forward_3d``).
    """

    fast: bool = True

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
        if not self.fast:
            return self.forward_3d(feats)
        copied = not feats.permute(0, 3, 4, 2, 1).is_contiguous()  # else the flattening is a view
        return self.forward_flat(flatten_clip_features(feats), feats.shape[2], inplace=copied)

    def forward_3d(self, feats: torch.Tensor) -> torch.Tensor:
        """The literal form (Conv3d, MaxPool3d, direction code from the 3D indices)."""
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

    def forward_flat(
        self, flat: torch.Tensor, t: int, inplace: bool = False, normalized: bool = False
    ) -> torch.Tensor:
        """``forward`` on the time-major flattening ``(B, T*c, H, W)`` of the features (index
        ``t*c + c_i``; channels_last memory is fastest) -> logits ``(B, num_classes, H, W)``.
        ``inplace``: ``flat`` is a scratch copy that BN0 may overwrite (inference only);
        ``normalized``: ``flat`` already is ``ReLU(BN0(features))`` (see ``DTUMNet``)."""
        x = flat if normalized else _bn_relu_flat(self.bn0, flat, t, inplace)
        xs = [self.enc[0].flat(x, t)]
        for conv in self.enc[1:]:
            xs.append(conv.flat(_coded_pool(xs[-1]), t, abs_first=True))
        o3 = self.dec3.flat_up_cat(xs[3], xs[2], t)
        o2 = self.dec2.flat_up_cat(o3, xs[1], t)
        if self.detach:  # quirk D1: blocks gradients to dec2, dec3 and enc[1:]
            o2 = o2.detach()
        o1 = self.dec1.flat_up_cat(o2, xs[0], t)  # kernel (T,1,1) unpadded: T -> 1
        return self._head_flat(torch.cat([o1, x[:, (t - 1) * o1.shape[1] :]], dim=1))

    def _head_flat(self, y: torch.Tensor) -> torch.Tensor:
        """``head`` on ``(B, 2c, H, W)`` (T = 1) with 2D convs; eval BN folded into the 3x3 conv,
        eval Dropout3d (the identity) skipped."""
        conv, bn, _, drop, last = self.head
        w, b = conv.weight[:, :, 0], conv.bias
        if _uses_batch_stats(bn):
            y = _bn_flat(bn, F.conv2d(y, w, b, padding=1), 1).relu_()
        else:
            scale, shift = _bn_affine(bn)
            y = F.conv2d(y, w * scale[:, None, None, None], b * scale + shift, padding=1).relu_()
        if drop.training:  # Dropout3d drops whole channels: the same RNG draw as on the 3D form
            y = drop(y[:, :, None])[:, :, 0]
        return F.conv2d(y, last.weight[:, :, 0], last.bias)


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
        b, c, t, h, w = x.shape
        if self.training or not self.dtum.fast or _uses_batch_stats(self.dtum.bn0):
            # per-frame calls: train-mode BN sees each frame alone (the reference loop)
            feats = torch.stack([self.backbone.forward_frame(x[:, :, i]) for i in range(t)], dim=2)
            return self.dtum(feats)
        # eval: BN is per-sample, so all frames run as one batch (bigger GEMMs, 1 call instead of T),
        # in channels_last (oneDNN's fastest layout); the backbone's 1x1 head and the DTUM's BN0
        # (both affine) are one GEMM whose output already is the DTUM's time-major flattening.
        frames = x.transpose(1, 2).reshape(b * t, c, h, w).contiguous(memory_format=torch.channels_last)
        enc = self.backbone.encoder
        d = self.backbone.decoder.features(enc(frames))  # (B*T, c0, H, W)
        return self.dtum.forward_flat(self._head_bn0(d, t), t, normalized=True)

    def _head_bn0(self, d: torch.Tensor, t: int) -> torch.Tensor:
        """``ReLU(BN0(head(d)))`` of the per-frame decoder maps ``d (B*T, c0, H, W)`` (eval) as the
        time-major flattening ``(B, T*feat, H, W)``, channels_last."""
        head, bn0 = self.backbone.decoder.head, self.dtum.bn0
        scale, shift = _bn_affine(bn0)
        w = head.weight[:, :, 0, 0] * scale[:, None]
        bt, c0, h, wd = d.shape
        pix = d.reshape(bt // t, t, c0, h, wd).permute(0, 3, 4, 1, 2)  # (B, H, W, T, c0)
        y = torch.addmm(head.bias * scale + shift, pix.reshape(-1, c0), w.t()).relu_()
        return y.view(bt // t, h, wd, -1).permute(0, 3, 1, 2)

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
        from mirstd.models.base import Prediction, probabilities

        if len(feats) != self.num_frames:
            raise ValueError(f"DTUMNet: {len(feats)} frames of features, num_frames={self.num_frames}")
        return Prediction(scores=probabilities(self.dtum(torch.stack(list(feats), dim=2))))


@register_model("dtum")
def dtum(**kwargs: object) -> DTUMNet:
    """ResUNet-DTUM (direction-coded temporal U-module, TNNLS 2023); detach=False fixes quirk D1."""
    return DTUMNet(**kwargs)  # type: ignore[arg-type]
