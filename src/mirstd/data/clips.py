"""Clips of T frames ending at a key frame, with labels, for training and evaluation (docs/design.md).

``ClipDataset`` yields, per key frame, ``{"clip": (C, T, H, W) float32 in [0, 1], "mask": (1, H, W)
0/1 float, "has_mask": bool, "boxes": (N, 4) edge boxes, "points": (N, 2), "meta": {...}}``. Frames are
ordered oldest first, key frame last. Scaling: ``raw / (2**bit_depth - 1)``; float sources
(``bit_depth == 0``) are used as they are.

History before the sequence start (``pad``): ``"repeat"`` repeats frame 0 (UESTC lab loaders),
``"zeros"`` uses black frames, ``"skip"`` never uses the first T-1 frames as key frames (MIST),
``"source"`` takes the history stored with each frame (NUDT-MIRSDT ``Mix``; falls back to "repeat"
for sequences without one).

Randomness is a pure function of ``(seed, epoch, index)`` (``set_epoch``), so a resumed run draws
exactly the same crops, flips and rotations, with any number of DataLoader workers.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from typing import Any

import numpy as np
import torch

from mirstd.data import transforms as tf
from mirstd.data.convert import (
    box_centers,
    boxes_to_mask,
    points_to_boxes,
    points_to_mask,
    points_to_peak_mask,
)
from mirstd.data.sequence import Sequence, SequenceDataset

PADS = ("repeat", "zeros", "skip", "source")


class ClipDataset(torch.utils.data.Dataset):
    """Map-style dataset of clips; one item per key frame.

    Args:
        sequences: a SequenceDataset or sequences.
        num_frames: T, frames per clip (key frame last).
        pad: history rule at sequence starts (module docstring).
        channels: 1, or 3 (grey replicated).
        crop: square crop size (train: target-aware random; eval: centre), zero-padded if larger
            than the frame; None keeps the full frame.
        train: enable random crop/flip/rotation.
        target_crop_prob: probability that a training crop contains a (randomly chosen) target.
        flip: random horizontal and vertical flips (p = 0.5 each) in training.
        rotate_deg: random rotation in [-rotate_deg, rotate_deg] degrees in training (0 = off).
        pad_to: zero-pad H, W (bottom/right) to a multiple of this (e.g. 32 for full-size eval);
            ``meta["orig_size"]`` keeps the size before padding.
        mask_from: for frames without a mask: ``"points"`` ((2r+1)^2 squares, r = ``mask_radius``),
            ``"boxes"`` (filled boxes), ``"auto"`` (boxes where the frame has boxes, else points) or
            None (zeros, ``has_mask`` False).
        point_mask: how a point becomes a mask: ``"square"`` (the square above) or ``"peak"`` (grown
            from the point to its target's pixels on the key frame, square where no target stands
            out: :func:`mirstd.data.convert.points_to_peak_mask`).
        point_box: for frames with points but no boxes: fixed box size (8 = DAUB rule) or None (no boxes).
        allow_single_frame: permit multi-frame training on single-frame datasets (frames repeated).
        seed: base seed.
    """

    def __init__(
        self,
        sequences: SequenceDataset | Iterable[Sequence],
        num_frames: int = 5,
        pad: str = "repeat",
        channels: int = 1,
        crop: int | None = None,
        train: bool = False,
        target_crop_prob: float = 0.8,
        flip: bool = True,
        rotate_deg: float = 0.0,
        pad_to: int | None = None,
        mask_from: str | None = None,
        mask_radius: int = 0,
        point_box: float | None = None,
        point_mask: str = "square",
        allow_single_frame: bool = False,
        cache_frames: int = 64,
        seed: int = 0,
        intensity_jitter: float = 0.0,
    ):
        self.sequences = list(sequences)
        if pad not in PADS:
            raise ValueError(f"pad={pad!r}; valid: {', '.join(PADS)}")
        if channels not in (1, 3):
            raise ValueError(f"channels={channels}; valid: 1, 3")
        mask_from = None if mask_from == "none" else mask_from  # "none" overrides a checkpoint's choice
        if mask_from not in (None, "points", "boxes", "auto"):
            raise ValueError(f"mask_from={mask_from!r}; valid: None, 'points', 'boxes', 'auto'")
        if point_mask not in ("square", "peak"):
            raise ValueError(f"point_mask={point_mask!r}; valid: 'square', 'peak'")
        if num_frames < 1:
            raise ValueError(f"num_frames must be >= 1, got {num_frames}")
        single = [s.name for s in self.sequences if s.meta.get("single_frame")]
        if single and num_frames > 1 and train and not allow_single_frame:
            raise ValueError(
                f"multi-frame training (num_frames={num_frames}) on a single-frame dataset with a per-frame "
                f"split ({len(single)} one-frame sequences, e.g. {single[0]!r}): there is no real temporal "
                "history and a random per-frame split leaks neighbouring frames between splits. Use a "
                "sequence dataset, num_frames=1, or allow_single_frame=True to repeat the frame."
            )
        self.T, self.pad, self.channels, self.crop, self.train = num_frames, pad, channels, crop, train
        self.target_crop_prob, self.flip, self.rotate_deg = target_crop_prob, flip, rotate_deg
        self.pad_to, self.mask_from, self.mask_radius, self.point_box = (
            pad_to,
            mask_from,
            mask_radius,
            point_box,
        )
        self.point_mask = point_mask
        self.seed, self.epoch = seed, 0
        self.intensity_jitter = float(intensity_jitter)
        start = num_frames - 1 if pad == "skip" else 0
        self.index = [(si, i) for si, s in enumerate(self.sequences) for i in range(start, len(s))]
        self._cache: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._cache_size = cache_frames

    def __len__(self) -> int:
        return len(self.index)

    def set_epoch(self, epoch: int) -> None:
        """Select the random stream of ``epoch`` (call before each epoch; resumes reproduce it)."""
        self.epoch = int(epoch)

    # ------------------------------------------------------------------------------------------ loading
    def _frame(self, si: int, i: int) -> np.ndarray:
        key = (si, i)
        if key in self._cache:
            self._cache.move_to_end(key)
            return self._cache[key]
        f = self.sequences[si].load_frame(i)
        self._cache[key] = f
        if len(self._cache) > self._cache_size:
            self._cache.popitem(last=False)
        return f

    def load_clip(self, si: int, i: int) -> np.ndarray:
        """(T, H, W) raw float32 frames ending at frame ``i`` (history per ``pad``)."""
        seq = self.sequences[si]
        if self.pad == "source" and hasattr(seq, "load_history"):
            return seq.load_history(i, self.T)
        key = self._frame(si, i)
        out = []
        for j in range(i - self.T + 1, i + 1):
            if j < 0:
                out.append(np.zeros_like(key) if self.pad == "zeros" else self._frame(si, 0))
            else:
                out.append(key if j == i else self._frame(si, j))
        shapes = {a.shape for a in out}
        if len(shapes) > 1:
            raise ValueError(
                f"sequence {seq.name!r}: frames {i - self.T + 1}..{i} differ in size {sorted(shapes)}"
            )
        return np.stack(out)

    def _labels(self, seq: Sequence, i: int, shape: tuple[int, int], frame: np.ndarray | None = None):
        lab = seq.labels[i]
        boxes = lab.boxes if lab.has_boxes else np.zeros((0, 4), np.float32)
        points = lab.points if lab.has_points else np.zeros((0, 2), np.float32)
        if not lab.has_boxes and lab.has_points and self.point_box:
            boxes = points_to_boxes(points, self.point_box, shape)
        if lab.has_boxes and not lab.has_points:
            points = box_centers(boxes)  # point metrics need a point per target
        mask = seq.load_mask(i)
        has_mask = mask is not None
        if mask is not None:
            mask = (mask > 0).astype(np.uint8)
        elif self.mask_from == "auto" and lab.has_boxes:  # mixed data: boxes where a frame has them
            mask, has_mask = boxes_to_mask(boxes, shape), True
        elif self.mask_from in ("points", "auto") and (lab.has_points or lab.has_boxes):
            if self.point_mask == "peak":
                frame = seq.load_frame(i) if frame is None else frame
                mask = points_to_peak_mask(points, frame, self.mask_radius)
            else:
                mask = points_to_mask(points, shape, self.mask_radius)
            has_mask = True
        elif self.mask_from == "boxes" and (lab.has_boxes or (lab.has_points and self.point_box)):
            mask, has_mask = boxes_to_mask(boxes, shape), True
        return np.asarray(boxes, np.float32).copy(), np.asarray(points, np.float32).copy(), mask, has_mask

    # ---------------------------------------------------------------------------------------- sampling
    def __getitem__(self, idx: int) -> dict[str, Any]:
        si, i = self.index[idx]
        seq = self.sequences[si]
        clip = self.load_clip(si, i)
        H, W = clip.shape[1:]
        boxes, points, mask, has_mask = self._labels(seq, i, (H, W), clip[-1])
        rng = np.random.default_rng([self.seed, self.epoch, idx])
        crop_xy = None
        if self.crop:
            x0, y0 = self._crop_origin(rng, H, W, boxes, points)
            crop_xy = (x0, y0)
            clip, mask, boxes, points = tf.crop(clip, mask, boxes, points, x0, y0, self.crop)
        ops = []
        if self.train and self.flip:
            if rng.random() < 0.5:
                clip, mask, boxes, points = tf.hflip(clip, mask, boxes, points)
                ops.append("hflip")
            if rng.random() < 0.5:
                clip, mask, boxes, points = tf.vflip(clip, mask, boxes, points)
                ops.append("vflip")
        if self.train and self.rotate_deg:
            deg = float(rng.uniform(-self.rotate_deg, self.rotate_deg))
            clip, mask, boxes, points = tf.rotate(clip, mask, boxes, points, deg)
            ops.append(f"rot{deg:.2f}")
        size = clip.shape[1:]
        if self.pad_to:
            clip, mask = tf.pad_to_multiple(clip, mask, self.pad_to)
        scale = 1.0 / (2**seq.bit_depth - 1) if seq.bit_depth > 0 else 1.0
        x = torch.from_numpy(np.ascontiguousarray(clip, dtype=np.float32) * np.float32(scale))[None]
        if self.train and self.intensity_jitter > 0:
            # Scene brightness and contrast vary between sensors and scenes far more than within a
            # training set: one gain g in [1-j, 1+j] about the clip mean and one offset in [-j/2, j/2]
            # (in [0, 1] units) for all frames, so temporal differences keep their meaning.
            j = self.intensity_jitter
            g, o = float(rng.uniform(1 - j, 1 + j)), float(rng.uniform(-j / 2, j / 2))
            mu = x.mean()
            x = ((x - mu) * g + mu + o).clamp_(0.0, 1.0)
            ops.append(f"int{g:.2f},{o:+.2f}")
        if self.channels == 3:
            x = x.expand(3, -1, -1, -1).contiguous()
        m = (
            torch.zeros((1, *clip.shape[1:]))
            if mask is None
            else torch.from_numpy(mask.astype(np.float32))[None]
        )
        meta = self._meta(seq, i, size, (H, W), crop_xy, ops)
        return {
            "clip": x,
            "mask": m,
            "has_mask": bool(has_mask),
            "boxes": torch.from_numpy(boxes.reshape(-1, 4)),
            "points": torch.from_numpy(points.reshape(-1, 2)),
            "meta": meta,
        }

    def _meta(
        self, seq: Sequence, i: int, size: Any, source: Any, crop_xy: Any, ops: list[str]
    ) -> dict[str, Any]:
        return {
            "sequence": seq.name,
            "frame": seq.frame_ids[i],
            "index": i,
            "orig_size": (int(size[0]), int(size[1])),
            "source_size": (int(source[0]), int(source[1])),
            "crop": crop_xy,
            "ops": ops,
            "has_boxes": bool(seq.labels[i].has_boxes or (self.point_box and seq.labels[i].has_points)),
            # Per-sequence mean SCR when the source records one (synth, native): evaluation splits by it.
            "mscr": _float_or_none(seq.meta.get("mSCR")),
        }

    def target(self, idx: int) -> dict[str, Any]:
        """The ground truth of item ``idx`` without reading its clip: the sample dict of an evaluation
        item (no crop) minus ``"clip"``. Scoring saved predictions uses it."""
        if self.train or self.crop:
            raise ValueError("ClipDataset.target is for evaluation datasets (train=False, crop=None)")
        si, i = self.index[idx]
        seq = self.sequences[si]
        shape = tuple(int(v) for v in seq.size) if seq.size else self.sequences[si].load_frame(i).shape[-2:]
        frame = self._frame(si, i) if self.point_mask == "peak" else None
        boxes, points, mask, has_mask = self._labels(seq, i, shape, frame)
        m = torch.zeros((1, *shape)) if mask is None else torch.from_numpy(mask.astype(np.float32))[None]
        return {
            "mask": m,
            "has_mask": bool(has_mask),
            "boxes": torch.from_numpy(boxes.reshape(-1, 4)),
            "points": torch.from_numpy(points.reshape(-1, 2)),
            "meta": self._meta(seq, i, shape, shape, None, []),
        }

    def _crop_origin(self, rng: np.random.Generator, H: int, W: int, boxes, points) -> tuple[int, int]:
        c = self.crop
        hi_x, hi_y = max(W - c, 0), max(H - c, 0)
        if not self.train:
            return hi_x // 2, hi_y // 2
        centres = points if len(points) else box_centers(boxes)
        if len(centres) and rng.random() < self.target_crop_prob:
            cx, cy = centres[rng.integers(len(centres))]
            cx, cy = int(np.clip(round(float(cx)), 0, W - 1)), int(np.clip(round(float(cy)), 0, H - 1))
            # any origin whose window holds (cx, cy), kept inside the frame where possible
            lo_x, up_x = max(cx - c + 1, 0), min(cx, hi_x)
            lo_y, up_y = max(cy - c + 1, 0), min(cy, hi_y)
            if W <= c:
                lo_x = up_x = 0
            if H <= c:
                lo_y = up_y = 0
            return int(rng.integers(lo_x, up_x + 1)), int(rng.integers(lo_y, up_y + 1))
        return int(rng.integers(0, hi_x + 1)), int(rng.integers(0, hi_y + 1))


def collate_clips(items: list[dict[str, Any]]) -> dict[str, Any]:
    """Stack clip/mask/has_mask; keep boxes, points and meta as lists (N varies per sample)."""
    shapes = {tuple(it["clip"].shape) for it in items}
    if len(shapes) > 1:
        raise ValueError(
            f"collate_clips: clips differ in shape {sorted(shapes)}; use crop= or pad_to= with batch size 1"
        )
    return {
        "clip": torch.stack([it["clip"] for it in items]),
        "mask": torch.stack([it["mask"] for it in items]),
        "has_mask": torch.tensor([it["has_mask"] for it in items], dtype=torch.bool),
        "boxes": [it["boxes"] for it in items],
        "points": [it["points"] for it in items],
        "meta": [it["meta"] for it in items],
    }


def _float_or_none(v: object) -> float | None:
    try:
        return None if v is None else float(v)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
