"""Helpers shared by the readers: file listing, natural sort, split lists, lazy mask labels."""

from __future__ import annotations

import re
from pathlib import Path

from mirstd.data.convert import LazyLabels, mask_to_labels
from mirstd.data.findings import Collector
from mirstd.data.image import IMAGE_SUFFIXES, read_mask
from mirstd.data.probe import probe_ok
from mirstd.data.sequence import FrameLabels, Sequence

_NUM = re.compile(r"(\d+)")


def natural_key(s: str | Path) -> list:
    """Sort key treating digit runs as numbers: 2.bmp < 10.bmp, sequence2 < sequence10."""
    name = Path(s).name if isinstance(s, Path) else s
    return [int(t) if t.isdigit() else t.lower() for t in _NUM.split(name)]


def list_images(d: Path) -> list[Path]:
    return sorted(
        (p for p in d.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file()), key=natural_key
    )


def find_image(d: Path, stem: str, suffixes: tuple[str, ...] = IMAGE_SUFFIXES) -> Path | None:
    for suf in suffixes:
        p = d / f"{stem}{suf}"
        if p.is_file():
            return p
    return None


def check_consecutive(frames: list[Path], col: Collector, where: Path) -> None:
    """Report gaps in numerically named frames (a missing frame breaks every clip across it)."""
    nums = [int(p.stem) for p in frames if p.stem.isdigit()]
    if len(nums) != len(frames) or len(nums) < 2:
        return
    width = len(frames[0].stem)
    have = set(nums)
    for k in range(nums[0], nums[-1] + 1):
        if k not in have:
            col.error(
                where / f"{k:0{width}d}{frames[0].suffix}",
                "missing frame (gap in the frame numbers)",
                kind="missing_frame",
            )


def read_split_list(path: Path, col: Collector) -> list[tuple[int, str]]:
    """Non-empty stripped lines with their 1-based line numbers."""
    out = []
    for lineno, ln in enumerate(path.read_text(errors="replace").splitlines(), 1):
        ln = ln.strip()
        if ln:
            out.append((lineno, ln))
    return out


def safe_name(s: str) -> str:
    """Sequence names become folder names in the native layout: no path separators."""
    return s.strip().strip("/\\").replace("/", "__").replace("\\", "__")


def probe_sequence(frames: list, col: Collector) -> tuple[tuple[int, int] | None, int]:
    """(size, bit_depth) from the first readable frame header; the rest is checked by `data check`."""
    for f in frames[:3]:
        if isinstance(f, Path):
            r = probe_ok(f)
            if r is not None:
                return (r[0], r[1]), r[2]
    return None, 8


def mask_labels(masks: list[Path | None], instance: bool = False) -> LazyLabels:
    """Labels derived from the masks on first access (boxes and centroid points)."""

    def fn(i: int) -> FrameLabels:
        m = masks[i]
        if m is None:
            return FrameLabels()
        return mask_to_labels(read_mask(m), instance=instance)

    return LazyLabels(len(masks), fn)


def single_frame_sequence(name: str, image: Path, mask: Path | None, labels=None, **meta) -> Sequence:
    """One image of a single-frame dataset as a one-frame sequence (docs/data.md, "single-frame data")."""
    labels = labels if labels is not None else mask_labels([mask])
    return Sequence(
        name,
        [image],
        labels,
        [mask] if mask is not None else None,
        "semantic",
        8,
        None,
        [image.stem],
        {"single_frame": True, **meta},
    )
