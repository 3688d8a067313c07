"""ISNet: shape-aware infrared small target segmentation.

Zhang M., Zhang R., Yang Y., Bai H., Zhang J., Guo J., "ISNet: Shape Matters for Infrared Small
Target Detection", CVPR 2022 (code ``RuiZhang97/ISNet``, branch ``master``, ``model/ISNet.py``,
``model/train_ISNet.py``). Key frame only; ``layer_blocks = (4, 4, 4)``, ``channels = (8, 16, 32,
64)``, 3 input channels (ImageNet normalisation, as the authors' loader)::

    texture: stem (BN, conv s2, 2 convs, maxpool) -> c1 (H/4, 16) -> c2 (H/8, 32) -> c3 (H/16, 64)
             u2 = Res(TTOA(deconv c3, c2));  u1 = Res(TTOA(deconv u2, c1))
    TTOA(a, b) = P(a) + σ(DCN_{3x1}(P a))·P(b) + P(a) + σ(DCN_{1x3}(P a))·P(b)   (P: shared 1x1 pair)
    shape:   s1, s2, s3 = up(1x1(c3)), up(1x1(u2)), up(1x1(u1));  g = 1x1(∇x) (∇ = ``gradient_magnitude``)
             TFD(u, s):  (u1, δu0) = Res1(u);  (_, u2) = Res2(u1);  u3 = 3·δu0 + u2 + Gate(u2, s)
             e = fuse(TFD3(TFD2(TFD1(g, s1), s2), s3))      edge logits (B, 1, H, W)
    out = FCNHead(σ(e)·up(u1) + up(u1))                    mask logits (B, 1, H, W)

``Gate(u, s) = W·(u·(1 + σ(BN(conv(ReLU(conv(BN[u, s])))))))`` (gated spatial conv, GSCNN).
TFD is the paper's Taylor-finite-difference-inspired edge block: ``3·δu0 + u2 + ...`` mirrors the
third-order finite-difference combination of successive residual states.

The DCNv2 layers of TTOA are the compiled extension in the reference; here
:class:`mirstd.models.layers.ModulatedDeformConv2d` reimplements them in torch. The reference
also builds modules its forward never calls (``res1..3``, ``d1..3``, ``gate1..3``, ``cw``, ``SA``,
``SA_att``, ``head2``, ``conv2_1``, ``conv16``); ``keep_unused=True`` (default) builds them too,
so the parameter count (1,090,671) and the state dict equal the reference. 62.28 GFLOPs
(2 x MACs) at 1x3x1x256x256.

``forward`` returns ``(mask_logits, edge_logits)``; the loss is :class:`losses.ISNetLoss`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import SegmentMethod
from mirstd.models.layers import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    FCNHead,
    FrameNorm,
    ModulatedDeformConv2d,
    key_frame,
)
from mirstd.models.losses import ISNetLoss, build_loss, gradient_magnitude
from mirstd.models.registry import register_model
from mirstd.models.resunet import HEAD_PRIOR, FastConv2d, init_head_prior

__all__ = ["ISNet", "TFD", "TTOA", "GatedSpatialConv2d", "isnet"]


def _conv3(cin: int, cout: int, stride: int = 1) -> nn.Conv2d:
    return (
        FastConv2d(cin, cout, 3, stride, 1, bias=False)
        if stride == 1
        else nn.Conv2d(cin, cout, 3, stride, 1, bias=False)
    )


class ResidualBlock(nn.Module):
    """``ReLU(BN(conv3(ReLU(BN(conv3_s x)))) + shortcut x)``; shortcut ``BN(conv1x1_s)`` if the
    width or stride changes (``body``/``downsample`` names of the reference)."""

    def __init__(self, cin: int, cout: int, stride: int, downsample: bool) -> None:
        super().__init__()
        self.body = nn.Sequential(
            _conv3(cin, cout, stride),
            nn.BatchNorm2d(cout),
            nn.ReLU(True),
            _conv3(cout, cout),
            nn.BatchNorm2d(cout),
        )
        self.downsample = (
            nn.Sequential(nn.Conv2d(cin, cout, 1, stride, 0, bias=False), nn.BatchNorm2d(cout))
            if downsample
            else None
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        res = x if self.downsample is None else self.downsample(x)
        return F.relu(self.body(x) + res)


class BasicBlock(nn.Module):
    """torchvision-style basic block (GSCNN ``Resnet.BasicBlock``); ``two_outputs`` returns
    ``(ReLU(y + x), ReLU(y))`` (``BasicBlock1``)."""

    def __init__(self, channels: int, two_outputs: bool = False) -> None:
        super().__init__()
        self.conv1 = _conv3(channels, channels)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = _conv3(channels, channels)
        self.bn2 = nn.BatchNorm2d(channels)
        self.two_outputs = two_outputs
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def forward(self, x: torch.Tensor) -> Any:
        y = self.bn2(self.conv2(F.relu(self.bn1(self.conv1(x)))))
        out = F.relu(x + y)
        return (out, F.relu(y)) if self.two_outputs else out


class GatedSpatialConv2d(nn.Module):
    """GSCNN gated conv (1x1, no bias): ``α = σ(BN(conv(ReLU(conv(BN[u, s])))))``,
    ``out = conv_W(u · (α + 1))``."""

    def __init__(self, cin: int, cout: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(cout, cin, 1, 1))
        nn.init.xavier_normal_(self.weight)
        self._gate_conv = nn.Sequential(
            nn.BatchNorm2d(cin + 1),
            nn.Conv2d(cin + 1, cin + 1, 1),
            nn.ReLU(),
            nn.Conv2d(cin + 1, 1, 1),
            nn.BatchNorm2d(1),
            nn.Sigmoid(),
        )

    def forward(self, u: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        alpha = self._gate_conv(torch.cat([u, s], 1))
        return F.conv2d(u * (alpha + 1), self.weight)


class TFD(nn.Module):
    """Taylor-finite-difference edge block: ``(u1, δu0) = Res1(u0)``, ``(_, u2) = Res2(u1)``,
    ``u3 = 3·δu0 + u2 + Gate(u2, s)``."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.res1 = BasicBlock(channels, two_outputs=True)
        self.res2 = BasicBlock(channels, two_outputs=True)
        self.gate = GatedSpatialConv2d(channels, channels)

    def forward(self, u0: torch.Tensor, s: torch.Tensor) -> torch.Tensor:
        u1, du0 = self.res1(u0)
        _, u2 = self.res2(u1)
        return 3 * du0 + u2 + self.gate(u2, s)


class TTOA(nn.Module):
    """Two-orientation attention: ``a = P(low), b = P(high)`` (shared 1x1 pair ``preprocess``),
    ``out = (a + σ(DCN_{3x1} a)·b) + (a + σ(DCN_{1x3} a)·b)``."""

    def __init__(self, channels: int, kernel: int = 3) -> None:
        super().__init__()
        c = channels
        self.dcn_row = ModulatedDeformConv2d(c, c, (1, kernel), 1, (0, kernel // 2))
        self.dcn_colum = ModulatedDeformConv2d(c, c, (kernel, 1), 1, (kernel // 2, 0))
        self.preprocess = nn.Sequential(nn.Conv2d(c, c // 2, 1), nn.Conv2d(c // 2, c, 1))

    def forward(self, low: torch.Tensor, high: torch.Tensor) -> torch.Tensor:
        a, b = self.preprocess(low), self.preprocess(high)
        col = a + torch.sigmoid(self.dcn_colum(a)) * b
        row = a + torch.sigmoid(self.dcn_row(a)) * b
        return row + col


class SALayer(nn.Module):
    """Parameters of the reference's (unused) shuffle-attention ``sa_layer`` (kept for the state dict)."""

    def __init__(self, channel: int, groups: int) -> None:
        super().__init__()
        k = channel // (2 * groups)
        self.cweight = nn.Parameter(torch.zeros(1, k, 1, 1))
        self.cbias = nn.Parameter(torch.ones(1, k, 1, 1))
        self.sweight = nn.Parameter(torch.zeros(1, k, 1, 1))
        self.sbias = nn.Parameter(torch.ones(1, k, 1, 1))
        self.gn = nn.GroupNorm(k, k)


def isnet_reference_init(module: nn.Module) -> None:
    """``Trainer.weight_init`` of ``train_ISNet.py`` (applied after construction): Conv2d weights
    ``N(0, 0.02)``; BN weights ``N(1, 0.02)``, BN biases ``N(0, 1)`` (``nn.init.normal_(m.bias, 0)``:
    std defaults to 1 -- faithful). ConvTranspose2d, the gated and deformable convs keep theirs."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.normal_(m.weight, 0.0, 0.02)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, 0.02)
            nn.init.normal_(m.bias, 0.0)


class ISNet(SegmentMethod):
    """ISNet on the key frame (see the module docstring).

    Args:
        in_channels: 3 (grey replicated; BasicIRSTD uses 1).
        layer_blocks, channels: the reference ``[4]*3`` and ``[8, 16, 32, 64]``.
        keep_unused: build the reference's never-called modules (state dict / parameter parity).
        init: ``"reference"`` (``isnet_reference_init``) or ``"default"`` (PyTorch's).
        edge_weight, double_sigmoid: :class:`losses.ISNetLoss` settings (reference: 10, True).
        head_prior: prior probability of the mask head's final conv (None: reference init).
    """

    task = "segment"
    size_divisor = 16
    num_frames = 1

    def __init__(
        self,
        in_channels: int = 3,
        layer_blocks: Sequence[int] = (4, 4, 4),
        channels: Sequence[int] = (8, 16, 32, 64),
        keep_unused: bool = True,
        init: str = "reference",
        edge_weight: float = 10.0,
        double_sigmoid: bool = True,
        num_frames: int = 1,
        mean: float | Sequence[float] = IMAGENET_MEAN,
        std: float | Sequence[float] = IMAGENET_STD,
        head_prior: float | None = HEAD_PRIOR,
    ) -> None:
        super().__init__()
        if init not in ("reference", "default"):
            raise ValueError(f"ISNet: init must be 'reference' or 'default', got {init!r}")
        ch = [int(c) for c in channels]
        self.in_channels, self.num_frames = int(in_channels), int(num_frames)
        self.norm = FrameNorm(self.in_channels, mean, std)
        self.edge_weight, self.double_sigmoid = float(edge_weight), bool(double_sigmoid)
        ic, sw = self.in_channels, ch[0]
        self.stem = nn.Sequential(
            nn.BatchNorm2d(ic),
            nn.Conv2d(ic, sw, 3, 2, 1, bias=False),
            nn.BatchNorm2d(sw),
            nn.ReLU(True),
            _conv3(sw, sw),
            nn.BatchNorm2d(sw),
            nn.ReLU(True),
            _conv3(sw, 2 * sw),
            nn.BatchNorm2d(2 * sw),
            nn.ReLU(True),
            nn.MaxPool2d(3, 2, 1),
        )
        self.TTOA_low = TTOA(ch[2])
        self.TTOA_high = TTOA(ch[1])
        self.layer1 = self._make_layer(layer_blocks[0], ch[1], ch[1], 1)
        self.layer2 = self._make_layer(layer_blocks[1], ch[1], ch[2], 2)
        self.layer3 = self._make_layer(layer_blocks[2], ch[2], ch[3], 2)
        self.deconv2 = nn.ConvTranspose2d(ch[3], ch[2], 4, 2, 1)
        self.uplayer2 = self._make_layer(layer_blocks[1], ch[2], ch[2], 1)
        self.deconv1 = nn.ConvTranspose2d(ch[2], ch[1], 4, 2, 1)
        self.uplayer1 = self._make_layer(layer_blocks[0], ch[1], ch[1], 1)
        self.head = FCNHead(ch[1], 1)
        e = 4 * ch[1]  # width of the shape stream (64 in the reference)
        self.dsn1 = nn.Conv2d(ch[3], 1, 1)
        self.dsn2 = nn.Conv2d(ch[2], 1, 1)
        self.dsn3 = nn.Conv2d(ch[1], 1, 1)
        # the reference calls it ``fuse``, a name taken by ``Method.fuse()``; reference state dicts
        # load through ``_rename_fuse`` (``fuse.weight`` -> ``edge_fuse.weight``)
        self.edge_fuse = nn.Conv2d(e, 1, 1, bias=False)
        self._register_load_state_dict_pre_hook(self._rename_fuse)
        self.dsup = nn.Conv2d(ic, e, 1)
        self.myb1, self.myb2, self.myb3 = TFD(e), TFD(e), TFD(e)
        self.keep_unused = bool(keep_unused)
        if keep_unused:  # built by the reference, never called by its forward
            self.res1, self.d1 = BasicBlock(e), nn.Conv2d(e, e // 2, 1)
            self.res2, self.d2 = BasicBlock(e // 2), nn.Conv2d(e // 2, e // 4, 1)
            self.res3, self.d3 = BasicBlock(e // 4), nn.Conv2d(e // 4, e // 8, 1)
            self.cw = nn.Conv2d(4, 1, 1, bias=False)
            self.gate1 = GatedSpatialConv2d(e // 2, e // 2)
            self.gate2 = GatedSpatialConv2d(e // 4, e // 4)
            self.gate3 = GatedSpatialConv2d(e // 8, e // 8)
            self.SA, self.SA_att = SALayer(4, 2), SALayer(17, 2)
            self.head2 = FCNHead(ch[1], 3)
            self.conv2_1 = nn.Conv2d(3, 1, 1)
            self.conv16 = nn.Conv2d(3, 16, 1)
        if init == "reference":
            isnet_reference_init(self)
        init_head_prior(self.head.block[-1], head_prior)

    @staticmethod
    def _rename_fuse(state_dict: dict[str, Any], prefix: str, *args: Any) -> None:
        old = prefix + "fuse.weight"
        if old in state_dict and prefix + "edge_fuse.weight" not in state_dict:
            state_dict[prefix + "edge_fuse.weight"] = state_dict.pop(old)

    @staticmethod
    def _make_layer(n: int, cin: int, cout: int, stride: int) -> nn.Sequential:
        down = cin != cout or stride != 1
        return nn.Sequential(
            ResidualBlock(cin, cout, stride, down),
            *[ResidualBlock(cout, cout, 1, False) for _ in range(n - 1)],
        )

    def forward_frame(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Normalised frame ``(B, C, H, W)`` -> ``(mask_logits, edge_logits)``."""
        h, w = x.shape[-2:]

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, size=(h, w), mode="bilinear", align_corners=True)

        c1 = self.layer1(self.stem(x))
        c2 = self.layer2(c1)
        c3 = self.layer3(c2)
        u2 = self.uplayer2(self.TTOA_low(self.deconv2(c3), c2))
        u1 = self.uplayer1(self.TTOA_high(self.deconv1(u2), c1))
        s1, s2, s3 = up(self.dsn1(c3)), up(self.dsn2(u2)), up(self.dsn3(u1))
        g = self.dsup(gradient_magnitude(x))
        edge = self.edge_fuse(self.myb3(self.myb2(self.myb1(g, s1), s2), s3))
        u1 = F.interpolate(u1, size=(h, w), mode="bilinear", align_corners=False)
        fused = torch.sigmoid(edge) * u1 + u1
        return self.head(fused), edge

    def forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Clip ``(B, C, T, H, W)`` in [0, 1] -> ``(mask_logits, edge_logits)``, each ``(B, 1, H, W)``."""
        return self.forward_frame(self.norm(key_frame(self, clip)))

    def set_loss(self, name: str | None, **kwargs: Any) -> None:
        """``None``/``"isnet"``: :class:`ISNetLoss` (mask + edge); any other name: that loss on the
        mask logits plus the ISNet edge terms."""
        if name is None or str(name).lower() == "isnet":
            kw = {"edge_weight": self.edge_weight, "double_sigmoid": self.double_sigmoid, **kwargs}
            self._loss_fn, self._mask_loss = ISNetLoss(**kw), None
        else:
            self._loss_fn = ISNetLoss(self.edge_weight, self.double_sigmoid)
            self._mask_loss = build_loss(name, **kwargs)

    def loss(self, outputs: Any, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        if getattr(self, "_loss_fn", None) is None:
            self.set_loss(None)
        total = self._loss_fn(outputs, batch["mask"])
        parts = dict(self._loss_fn.last_parts)
        if self._mask_loss is not None:  # swap the mask term for the chosen loss
            m = self._mask_loss(outputs[0].float(), batch["mask"])
            total = total - self._loss_fn.iou(outputs[0].float(), batch["mask"]) + m
            parts["mask"] = m.detach()
        return {"loss": total, **parts}

    def final_logits(self, outputs: Any) -> torch.Tensor:
        """The mask logits (``forward`` returns mask and edge logits)."""
        return outputs[0]


@register_model("isnet")
def isnet(**kwargs: Any) -> ISNet:
    """ISNet (shape-aware segmentation with TFD edge blocks and TTOA, Zhang et al., CVPR 2022); key frame only."""
    return ISNet(**kwargs)
