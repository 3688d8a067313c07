"""YOLOX building blocks shared by SMFNet and SSTNet (spec ``smfnet.md`` §2, §3, §7).

Module and attribute names follow YOLOX (Ge et al., 2021, "YOLOX: Exceeding YOLO Series in 2021")
so a YOLOX-S checkpoint loads by name and shape: ``stem``, ``dark2`` … ``dark5`` in
:class:`CSPDarknet`; ``stems``, ``cls_convs``, ``reg_convs``, ``cls_preds``, ``reg_preds``,
``obj_preds`` in :class:`YOLOXHead`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn as nn
import torch.nn.functional as F

from mirstd.models.base import Method, Prediction
from mirstd.models.fuse import inference_copy
from mirstd.models.yolox_loss import postprocess, yolox_loss

# YOLOX BatchNorm settings (spec §2); the 3D branch and the channel encoder use PyTorch defaults.
YOLOX_BN = {"eps": 1e-3, "momentum": 0.03}
TORCH_BN = {"eps": 1e-5, "momentum": 0.1}


def make_act(name: str) -> nn.Module:
    """Activation by name: ``silu`` (x·σ(x)), ``sigmoid``, ``lrelu`` (slope 0.1), ``relu``, ``none``."""
    acts = {
        "silu": lambda: nn.SiLU(inplace=True),
        "sigmoid": nn.Sigmoid,
        "lrelu": lambda: nn.LeakyReLU(0.1, inplace=True),
        "relu": lambda: nn.ReLU(inplace=True),
        "none": nn.Identity,
    }
    if name not in acts:
        raise ValueError(f"unknown activation {name!r}; expected one of {sorted(acts)}")
    return acts[name]()


class BaseConv(nn.Module):
    """Conv2d(k, s, pad (k-1)//2, no bias) → BatchNorm2d → activation.

    BN defaults to the YOLOX setting (eps 1e-3, momentum 0.03); ``bn=TORCH_BN`` gives the PyTorch
    defaults used by the "CBL" layers of SMFNet's channel encoder. ``fuse()`` folds
    ``bn`` into ``conv`` (sets ``bn`` to Identity and gives ``conv`` a bias).
    """

    folds_bn = True  # fuse(): bn(conv(x)) folds into one conv

    def __init__(
        self,
        cin: int,
        cout: int,
        k: int = 1,
        s: int = 1,
        act: str = "silu",
        groups: int = 1,
        bn: dict[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, s, (k - 1) // 2, groups=groups, bias=False)
        self.bn = nn.BatchNorm2d(cout, **(bn or YOLOX_BN))
        self.act = make_act(act)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.act(self.bn(self.conv(x)))


def space_to_depth(x: torch.Tensor) -> torch.Tensor:
    """Focus slicing: concat (even r, even c), (odd r, even c), (even r, odd c), (odd r, odd c)."""
    return torch.cat(
        [x[..., ::2, ::2], x[..., 1::2, ::2], x[..., ::2, 1::2], x[..., 1::2, 1::2]],
        dim=1,
    )


class Focus(nn.Module):
    """Space-to-depth by 2 then BaseConv 3×3 (4·cin → cout). The slice order matters for YOLOX weights."""

    def __init__(self, cin: int, cout: int, k: int = 3) -> None:
        super().__init__()
        self.conv = BaseConv(cin * 4, cout, k, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(space_to_depth(x))


class Bottleneck(nn.Module):
    """BaseConv 1×1 c→c, BaseConv 3×3 c→c, optional identity shortcut (expansion 1.0)."""

    def __init__(self, cin: int, cout: int, shortcut: bool = True) -> None:
        super().__init__()
        self.conv1 = BaseConv(cin, cout, 1)
        self.conv2 = BaseConv(cout, cout, 3)
        self.use_add = shortcut and cin == cout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.conv2(self.conv1(x))
        return y + x if self.use_add else y


class CSPLayer(nn.Module):
    """CSP block: path A = 1×1 cin→h then n Bottlenecks; path B = 1×1 cin→h; 1×1 over [A, B]. h = cout/2."""

    def __init__(self, cin: int, cout: int, n: int = 1, shortcut: bool = True) -> None:
        super().__init__()
        h = cout // 2
        self.conv1 = BaseConv(cin, h, 1)
        self.conv2 = BaseConv(cin, h, 1)
        self.conv3 = BaseConv(2 * h, cout, 1)
        self.m = nn.Sequential(*[Bottleneck(h, h, shortcut) for _ in range(n)])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv3(torch.cat([self.m(self.conv1(x)), self.conv2(x)], dim=1))


class SPPBottleneck(nn.Module):
    """1×1 c→c/2; max-pools 5, 9, 13 (stride 1, same size); 1×1 over [x, p5, p9, p13] → c."""

    def __init__(self, cin: int, cout: int, kernels: tuple[int, ...] = (5, 9, 13)) -> None:
        super().__init__()
        h = cin // 2
        self.conv1 = BaseConv(cin, h, 1)
        self.m = nn.ModuleList([nn.MaxPool2d(k, 1, k // 2) for k in kernels])
        self.conv2 = BaseConv(h * (len(kernels) + 1), cout, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.conv1(x)
        return self.conv2(torch.cat([x] + [m(x) for m in self.m], dim=1))


def yolox_depth(dep_mul: float, n: int) -> int:
    return max(round(n * dep_mul), 1)


class CSPDarknet(nn.Module):
    """YOLOX CSPDarknet backbone (no PAFPN); YOLOX-S = ``dep_mul=0.33, wid_mul=0.50``.

    Returns the dark3, dark4, dark5 maps (strides 8, 16, 32) with 4w, 8w, 16w channels, w = 64·wid_mul.
    4,212,672 parameters for YOLOX-S (spec §3).
    """

    def __init__(self, dep_mul: float = 0.33, wid_mul: float = 0.50, in_channels: int = 3) -> None:
        super().__init__()
        w = int(wid_mul * 64)
        d = yolox_depth(dep_mul, 3)
        self.out_channels = (4 * w, 8 * w, 16 * w)
        self.stem = Focus(in_channels, w, 3)
        self.dark2 = nn.Sequential(BaseConv(w, 2 * w, 3, 2), CSPLayer(2 * w, 2 * w, d))
        self.dark3 = nn.Sequential(BaseConv(2 * w, 4 * w, 3, 2), CSPLayer(4 * w, 4 * w, 3 * d))
        self.dark4 = nn.Sequential(BaseConv(4 * w, 8 * w, 3, 2), CSPLayer(8 * w, 8 * w, 3 * d))
        self.dark5 = nn.Sequential(
            BaseConv(8 * w, 16 * w, 3, 2),
            SPPBottleneck(16 * w, 16 * w),
            CSPLayer(16 * w, 16 * w, d, shortcut=False),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.dark2(self.stem(x))
        c3 = self.dark3(x)
        c4 = self.dark4(c3)
        return c3, c4, self.dark5(c4)


class YOLOXHead(nn.Module):
    """Single-level YOLOX decoupled head (spec §7).

    stem 1×1 cin→hid; cls: two 3×3 hid→hid then 1×1 → nc; reg: two 3×3 then 1×1 → 4 (box) and,
    from the same features, 1×1 → 1 (objectness). Output ``concat[box, obj, cls]`` = (B, 5+nc, h, w)
    raw logits. Kept as one-element ModuleLists so YOLOX/lab checkpoints load by name.
    2,396,166 parameters for cin=128, hid=256, nc=1.
    """

    def __init__(self, num_classes: int = 1, in_channels: int = 128, hidden: int = 256) -> None:
        super().__init__()
        self.num_classes = num_classes
        self.stems = nn.ModuleList([BaseConv(in_channels, hidden, 1)])
        self.cls_convs = nn.ModuleList(
            [nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3))]
        )
        self.reg_convs = nn.ModuleList(
            [nn.Sequential(BaseConv(hidden, hidden, 3), BaseConv(hidden, hidden, 3))]
        )
        self.cls_preds = nn.ModuleList([nn.Conv2d(hidden, num_classes, 1)])
        self.reg_preds = nn.ModuleList([nn.Conv2d(hidden, 4, 1)])
        self.obj_preds = nn.ModuleList([nn.Conv2d(hidden, 1, 1)])

    def init_prior(self, prior_prob: float = 0.01) -> None:
        """YOLOX's bias prior for obj/cls logits: b = −log((1−p)/p). Not used by the lab (spec §12)."""
        b = -torch.log(torch.tensor((1 - prior_prob) / prior_prob)).item()
        for conv in (self.cls_preds[0], self.obj_preds[0]):
            nn.init.constant_(conv.bias, b)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stems[0](x)
        cls_feat = self.cls_convs[0](x)
        reg_feat = self.reg_convs[0](x)
        return torch.cat(
            [self.reg_preds[0](reg_feat), self.obj_preds[0](reg_feat), self.cls_preds[0](cls_feat)], 1
        )


def lab_weights_init(model: nn.Module, std: float = 0.02) -> None:
    """The lab's ``weights_init`` (spec §12): every Conv* weight ~ N(0, 0.02) (Conv3d included);
    BatchNorm2d weight ~ N(1, 0.02), bias 0. Conv biases keep their PyTorch defaults; BN3d untouched."""
    for m in model.modules():
        if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            nn.init.normal_(m.weight, 0.0, std)
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.normal_(m.weight, 1.0, std)
            nn.init.zeros_(m.bias)


def count_params(module: nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


class YOLOXDetector(Method):
    """Shared contract methods of the stride-8 YOLOX detectors (SMFNet, SSTNet): input check,
    ``loss(raw, batch)`` and ``predict(clip)`` (docs/design.md model contract)."""

    task: ClassVar[str] = "detect"
    default_metric: ClassVar[str] = "ap50"
    in_channels = 3
    num_frames = 5  # the lab's clip length; SSTNet sets its own
    size_divisor = 32
    conf: float = 0.001
    nms_iou: float = 0.65
    # The lab resizes every frame to 512 px before the network (spec §11.4): DAUB's 256 px frames are
    # enlarged 2x, so its 8x8 boxes cover 16x16 px on the stride-8 grid. ``input_scale`` does that
    # resize inside the model, so data, evaluation and prediction stay in frame pixels.
    input_scale: float = 1.0

    def _rescale_input(self, clip: torch.Tensor) -> torch.Tensor:
        s = float(self.input_scale)
        if s == 1.0:
            return clip
        b, c, t, h, w = clip.shape
        x = F.interpolate(clip.reshape(b, c * t, h, w), scale_factor=s, mode="bilinear", align_corners=False)
        return x.reshape(b, c, t, *x.shape[-2:])

    def _check(self, clip: torch.Tensor) -> None:
        name = type(self).__name__
        if clip.ndim != 5 or clip.shape[1] != self.in_channels:
            raise ValueError(
                f"{name} expects a clip (B, {self.in_channels}, T, H, W); got shape {tuple(clip.shape)}"
            )
        if clip.shape[-1] % self.size_divisor or clip.shape[-2] % self.size_divisor:
            raise ValueError(
                f"{name}: H and W must be multiples of {self.size_divisor}; got {tuple(clip.shape[-2:])}"
            )

    def loss(self, outputs: torch.Tensor, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """YOLOX loss with SimOTA on the stride-8 output (spec §10); see ``mirstd.models.yolox_loss``.

        ``batch["boxes"]``: B tensors (N, 4) of edge boxes in input pixels; optional ``batch["classes"]``.
        Returns ``{"loss": total, "iou": ..., "obj": ..., "cls": ..., ...}``.
        """
        boxes = batch["boxes"]
        if float(self.input_scale) != 1.0:
            boxes = [b * float(self.input_scale) for b in boxes]
        total, parts = yolox_loss(outputs, boxes, batch.get("classes"), stride=8)
        return {"loss": total, **parts}

    @torch.inference_mode()
    def predict(
        self, clip: torch.Tensor, conf: float | None = None, nms_iou: float | None = None
    ) -> Prediction:
        """Eval path (spec §7, §13): decode, keep σ(obj)·max σ(cls) ≥ conf (default 0.001), class-aware
        NMS at nms_iou (default 0.65). Boxes: B × (N, 6) = edge box x1, y1, x2, y2 in input pixels,
        score, class."""
        was_training = self.training
        self.eval()
        try:
            raw = self(clip)
        finally:
            self.train(was_training)
        conf = self.conf if conf is None else conf
        nms_iou = self.nms_iou if nms_iou is None else nms_iou
        dets = postprocess(raw, stride=8, conf=conf, nms_iou=nms_iou)
        if float(self.input_scale) != 1.0:
            dets = [torch.cat([d[:, :4] / float(self.input_scale), d[:, 4:]], 1) for d in dets]
        return Prediction(boxes=dets)

    def fuse(self) -> nn.Module:
        """Eval copy with BN folded into the convs and channels_last weights (exact up to rounding)."""
        return inference_copy(self)

    # ONNX export (mirstd.infer.export): decoding inside, NMS outside (conf, nms_iou in the card).
    export_outputs: ClassVar[tuple[str, ...]] = ("boxes", "scores", "classes")

    def export_forward(self, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``boxes (B, N, 4)`` edge x1, y1, x2, y2 in input pixels, ``scores (B, N)`` = sigmoid(obj) *
        max sigmoid(cls), ``classes (B, N)``: one row per stride-8 cell, before the conf cut and NMS."""
        from mirstd.models.yolox_loss import decode

        d = decode(self(clip), 8)
        cls_prob, cls_id = torch.sigmoid(d[..., 5:]).max(dim=-1)
        score = torch.sigmoid(d[..., 4]) * cls_prob
        cxcy, wh = d[..., :2], d[..., 2:4]
        boxes = torch.cat([cxcy - wh / 2, cxcy + wh / 2], dim=-1)
        if float(self.input_scale) != 1.0:
            boxes = boxes / float(self.input_scale)
        return boxes, score, cls_id

    def export_card(self) -> dict[str, Any]:
        return {"conf": float(self.conf), "nms_iou": float(self.nms_iou),
                "nms": "outside: keep scores >= conf, then class-aware NMS at nms_iou"}  # fmt: skip
