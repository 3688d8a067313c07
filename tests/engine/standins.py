"""Tiny stand-ins for the engine tests: a registered segment model and in-memory contract samples.

Importable from subprocesses (torchrun, kill/resume) by putting this folder on sys.path.
"""

from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn as nn

from mirstd.models import register_model
from mirstd.models.base import Prediction, SegmentMethod

TINY = "test_tiny_seg"


class TinySeg(SegmentMethod):
    """Conv3d over the T frames then two 3×3 convs; no BatchNorm, so DDP equals one process exactly."""

    task = "segment"
    size_divisor = 4

    def __init__(self, in_channels: int = 1, num_frames: int = 3, width: int = 8) -> None:
        super().__init__()
        self.in_channels, self.num_frames = in_channels, num_frames
        self.temporal = nn.Conv3d(in_channels, width, (num_frames, 3, 3), padding=(0, 1, 1))
        self.body = nn.Sequential(nn.ReLU(), nn.Conv2d(width, width, 3, padding=1), nn.ReLU())
        self.head = nn.Conv2d(width, 1, 1)
        nn.init.constant_(self.head.bias, -2.0)

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        return self.head(self.body(self.temporal(clip).squeeze(2)))


def tiny_seg(**kw) -> TinySeg:
    return TinySeg(**kw)


try:
    register_model(TINY)(tiny_seg)
except ValueError:  # already registered in this process
    pass


class ClipSamples(torch.utils.data.Dataset):
    """``n`` contract sample dicts: a 3×3 target moving right over noise, mask on the key frame.

    ``augment`` flips left-right with the *global* numpy RNG (what the engine's per-sample seeding
    must make reproducible); ``delay`` seconds of sleep per sample slow a run down for kill tests.
    """

    def __init__(
        self, n: int = 32, size: int = 32, frames: int = 3, augment: bool = False, delay: float = 0.0
    ) -> None:
        self.n, self.size, self.frames, self.augment, self.delay = n, size, frames, augment, delay

    def __len__(self) -> int:
        return self.n

    def __getitem__(self, i: int) -> dict:
        if self.delay:
            time.sleep(self.delay)
        rng = np.random.RandomState(i)
        s, t = self.size, self.frames
        clip = (0.2 + 0.05 * rng.rand(t, s, s)).astype(np.float32)
        y, x0 = rng.randint(3, s - 3), rng.randint(3, s - 3 - t)
        for k in range(t):
            clip[k, y - 1 : y + 2, x0 + k - 1 : x0 + k + 2] = 0.9
        mask = np.zeros((s, s), np.float32)
        xc = x0 + t - 1
        mask[y - 1 : y + 2, xc - 1 : xc + 2] = 1.0
        if self.augment and np.random.rand() < 0.5:
            clip, mask = clip[:, :, ::-1].copy(), mask[:, ::-1].copy()
            xc = s - 1 - xc
        return {
            "clip": torch.from_numpy(clip)[None],
            "mask": torch.from_numpy(mask)[None],
            "has_mask": True,
            "boxes": torch.tensor([[xc - 1.0, y - 1.0, xc + 2.0, y + 2.0]]),
            "points": torch.tensor([[float(xc), float(y)]]),
            "meta": {"sequence": f"s{i % 4}", "frame": i, "index": i, "orig_size": (s, s)},
        }


class IoUEvaluator:
    """Stand-in for mirstd.metrics.Evaluator: dataset IoU of ``scores >= 0.5`` (and a frame count)."""

    def __init__(self) -> None:
        self.inter = self.union = 0.0
        self.frames = 0

    def update(
        self,
        scores=None,
        boxes=None,
        gt_mask=None,
        gt_boxes=None,
        gt_points=None,
        sequence="",
        frame=0,
        scr=None,
        shape=None,
        image=None,
    ):
        p, g = scores >= 0.5, gt_mask > 0
        self.inter += float((p & g).sum())
        self.union += float((p | g).sum())
        self.frames += 1

    def compute(self) -> dict:
        return {"iou": self.inter / max(self.union, 1.0), "frames": self.frames}


class TinyDet(TinySeg):
    """Detect-task stand-in: ``loss(raw, batch)`` returns (total, parts); ``predict`` returns (N, 6) boxes."""

    task = "detect"
    default_metric = "ap50"

    def loss(self, raw: torch.Tensor, batch: dict) -> dict:
        target = torch.zeros_like(raw)
        for b, boxes in enumerate(batch["boxes"]):
            for x1, y1, x2, y2 in boxes.round().long().tolist():
                target[b, 0, y1:y2, x1:x2] = 1.0
        obj = nn.functional.binary_cross_entropy_with_logits(raw, target)
        return {"loss": 2.0 * obj, "obj": obj, "iou": torch.tensor(0.0)}

    @torch.no_grad()
    def predict(self, clip: torch.Tensor) -> Prediction:
        p = torch.sigmoid(self.forward(clip))[:, 0]
        out = []
        for pb in p:
            v, i = pb.flatten().max(0)
            y, x = divmod(int(i), pb.shape[1])
            out.append(torch.tensor([[x - 1.0, y - 1.0, x + 2.0, y + 2.0, float(v), 0.0]]))
        return Prediction(boxes=out)


def tiny_det(**kw) -> TinyDet:
    return TinyDet(**kw)


try:
    register_model("test_tiny_det")(tiny_det)
except ValueError:
    pass


class BoxEvaluator:
    """Stand-in detect evaluator: fraction of frames whose top box centre is within 2 px of the GT point."""

    def __init__(self) -> None:
        self.hits = self.frames = 0

    def update(
        self,
        scores=None,
        boxes=None,
        gt_mask=None,
        gt_boxes=None,
        gt_points=None,
        sequence="",
        frame=0,
        scr=None,
        shape=None,
        image=None,
    ):
        cx, cy = (boxes[0, 0] + boxes[0, 2]) / 2 - 0.5, (boxes[0, 1] + boxes[0, 3]) / 2 - 0.5
        self.hits += int(abs(cx - gt_points[0, 0]) <= 2 and abs(cy - gt_points[0, 1]) <= 2)
        self.frames += 1

    def compute(self) -> dict:
        return {"ap50": self.hits / max(self.frames, 1)}
