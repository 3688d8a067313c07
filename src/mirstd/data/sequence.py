"""The sequence data model every reader produces and every consumer reads.

Conventions (see docs/data.md):
- pixel indices are 0-based; x = column, y = row;
- boxes are *edge* boxes ``(x1, y1, x2, y2)`` in pixels with ``x2 = last column + 1`` (COCO w = x2 - x1);
- points are 0-based ``(x, y)`` floats (a target centre, not necessarily integer);
- frames load lazily as single-channel ``float32`` arrays in the file's raw units; ``bit_depth``
  records the source range so consumers normalise by ``2**bit_depth - 1``;
- masks load lazily as ``uint8`` arrays: 0 = background, k > 0 = instance k when ``mask_kind ==
  "instance"``, 1 = target when ``mask_kind == "semantic"``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from collections.abc import Sequence as _Seq
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.data.image import BitDepthError, container_depth, read_frame, read_mask

FrameLoader = Callable[[], np.ndarray]


def _empty(shape: tuple[int, ...], dtype: Any = np.float32) -> np.ndarray:
    return np.zeros(shape, dtype=dtype)


@dataclass
class FrameLabels:
    """Annotations of one frame. All arrays have one row per target (N may be 0)."""

    boxes: np.ndarray = field(default_factory=lambda: _empty((0, 4)))  # (N,4) float32 edge boxes
    points: np.ndarray = field(default_factory=lambda: _empty((0, 2)))  # (N,2) float32 (x, y)
    ids: np.ndarray = field(default_factory=lambda: _empty((0,), np.int64))  # (N,) target ids, -1 unknown
    scr: np.ndarray = field(default_factory=lambda: _empty((0,)))  # (N,) float32, NaN when unknown
    has_boxes: bool = False  # boxes are real annotations (or derived from masks), not absent
    has_points: bool = False
    extra: dict[str, Any] = field(default_factory=dict)  # reader-specific per-frame records

    def __post_init__(self) -> None:
        self.boxes = np.asarray(self.boxes, dtype=np.float32).reshape(-1, 4)
        self.points = np.asarray(self.points, dtype=np.float32).reshape(-1, 2)
        n = max(len(self.boxes), len(self.points))
        ids = np.asarray(self.ids, dtype=np.int64).reshape(-1)
        self.ids = ids if len(ids) == n else np.full(n, -1, dtype=np.int64)
        scr = np.asarray(self.scr, dtype=np.float32).reshape(-1)
        self.scr = scr if len(scr) == n else np.full(n, np.nan, dtype=np.float32)

    @property
    def num_targets(self) -> int:
        return max(len(self.boxes), len(self.points))

    def same_as(self, other: FrameLabels, atol: float = 1e-4) -> bool:
        """Annotation equality used by round-trip tests (NaN SCRs compare equal)."""
        return (
            self.boxes.shape == other.boxes.shape
            and self.points.shape == other.points.shape
            and np.allclose(self.boxes, other.boxes, atol=atol)
            and np.allclose(self.points, other.points, atol=atol)
            and np.array_equal(self.ids, other.ids)
            and np.allclose(self.scr, other.scr, atol=atol, equal_nan=True)
        )


@dataclass
class Sequence:
    """Ordered frames of one scene with per-frame labels. Pixels are loaded only on request.

    ``frames`` holds one loader per frame (a path or a zero-argument callable returning float32 HxW);
    ``masks`` likewise (None where a frame has no mask).
    """

    name: str
    frames: list[Path | FrameLoader]
    labels: list[FrameLabels]
    masks: list[Path | FrameLoader | None] | None = None
    mask_kind: str = "semantic"  # "semantic" (0/1) or "instance" (ids)
    bit_depth: int = 8
    size: tuple[int, int] | None = None  # (H, W) when known without reading pixels
    frame_ids: list[str] | None = None  # stems or original indices, for messages and writers
    meta: dict[str, Any] = field(default_factory=dict)  # e.g. {"mSCR": 2.4, "split_scr": "low"}

    def __post_init__(self) -> None:
        if len(self.labels) != len(self.frames):
            raise ValueError(
                f"sequence {self.name!r}: {len(self.frames)} frames but {len(self.labels)} label entries"
            )
        if self.masks is not None and len(self.masks) != len(self.frames):
            raise ValueError(f"sequence {self.name!r}: {len(self.frames)} frames but {len(self.masks)} masks")
        if self.frame_ids is None:
            self.frame_ids = [
                Path(f).stem if isinstance(f, (str, Path)) else str(i) for i, f in enumerate(self.frames)
            ]

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def has_masks(self) -> bool:
        return self.masks is not None and any(m is not None for m in self.masks)

    def load_frame(self, i: int) -> np.ndarray:
        """Frame ``i`` as float32 (H, W) in raw units (0 .. 2**bit_depth - 1)."""
        src = self.frames[i]
        if callable(src) and not isinstance(src, Path):
            return np.asarray(src(), dtype=np.float32)
        arr, depth = read_frame(src)
        want = container_depth(self.bit_depth)
        if want and depth and depth != want:  # one scale per sequence: a mixed depth would be mis-scaled
            raise BitDepthError(
                f"{src}: {depth}-bit frame in sequence {self.name!r} of {self.bit_depth}-bit frames; "
                "convert the sequence to one bit depth"
            )
        return arr

    def load_mask(self, i: int) -> np.ndarray | None:
        """Mask of frame ``i`` as uint8 (H, W), or None when the frame has no mask."""
        if self.masks is None or self.masks[i] is None:
            return None
        src = self.masks[i]
        if callable(src) and not isinstance(src, Path):
            return np.asarray(src(), dtype=np.uint8)
        return read_mask(src)

    def frame_name(self, i: int) -> str:
        return f"{self.name}/{self.frame_ids[i]}"


@dataclass
class SequenceDataset:
    """Named sequences plus named splits (lists of sequence names)."""

    sequences: dict[str, Sequence]
    splits: dict[str, list[str]] = field(default_factory=dict)
    name: str = "dataset"
    root: Path | None = None
    format: str = "native"
    norm: tuple[float, float] | None = None  # (mean, std) on [0,1]-scaled frames, when the source defines one
    meta: dict[str, Any] = field(default_factory=dict)
    findings: list[Any] = field(default_factory=list)  # problems a reader tolerated (data check reports them)

    def __len__(self) -> int:
        return len(self.sequences)

    def __iter__(self) -> Iterator[Sequence]:
        return iter(self.sequences.values())

    def __getitem__(self, name: str) -> Sequence:
        return self.sequences[name]

    @property
    def num_frames(self) -> int:
        return sum(len(s) for s in self.sequences.values())

    def split(self, name: str | None) -> list[Sequence]:
        """Sequences of split ``name`` (all sequences when None or "all"; ``a+b`` = the union of splits a
        and b). Unknown names list the valid ones."""
        if name in (None, "all"):
            return list(self.sequences.values())
        if "+" in name and name not in self.splits:  # a union of splits: "train_distant+train_medium"
            seen: dict[str, Sequence] = {}
            for part in name.split("+"):
                for s in self.split(part):
                    seen.setdefault(s.name, s)
            return list(seen.values())
        if name not in self.splits:
            valid = ", ".join(sorted(self.splits)) or "(none: use split=all)"
            raise KeyError(f"dataset {self.name!r} has no split {name!r}; valid splits: {valid}")
        missing = [s for s in self.splits[name] if s not in self.sequences]
        if missing:
            raise KeyError(f"split {name!r} names sequences that do not exist: {missing[:5]}")
        return [self.sequences[s] for s in self.splits[name]]

    def subset(self, names: _Seq[str]) -> SequenceDataset:
        return SequenceDataset(
            {n: self.sequences[n] for n in names}, {}, self.name, self.root, self.format, self.norm, self.meta
        )
