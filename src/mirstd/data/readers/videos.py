"""Folders of videos with per-video box CSVs (the ``drone-ir`` layout is one case of it).

Layout::

    <root>/videos/<name>.mp4|.avi|.mkv|.mov   one sequence per video (decoded with PyAV)
    <root>/labels/<name>.csv                  frame,x,y,w,h  (0-based frame; empty x = no target)
    <root>/videos.csv                         optional: video, class, distance_bin, decoded_frames, ...

Boxes are read in MATLAB spatial coordinates (the image's top-left corner is (0.5, 0.5), the video
labeler's convention), so the 0-based edge box is ``(x - 0.5, y - 0.5, x - 0.5 + w, y - 0.5 + h)``;
``box_origin=0`` reads them as 0-based pixel-edge coordinates instead. Label rows past the last
decoded frame are dropped (reported as a warning): ``decoded_frames`` in ``videos.csv`` is the
frame count; without it the video's header is asked.

Frames are decoded lazily, in chunks of :data:`CHUNK` consecutive frames: the first frame needed from
a chunk seeks to the key frame before it and decodes the chunk (0.1 s for 64 frames of 320x256,
against 1 s for a whole 300-frame video), into a byte-bounded LRU cache shared by all videos
(``cache_mb``, default 3072 MB or ``$MIRSTD_VIDEO_CACHE_MB``: about 600 chunks). Random training
clips then cost one chunk each, not one video, and a sequential pass decodes each chunk once.
:func:`read_video_frames` reads any range.

Splits are by video, never by frame (neighbouring frames are near-duplicates). Every ``videos.csv``
column value becomes a split too (``distant``, ``airplane``, ...), and named protocols
(:mod:`mirstd.data.protocols`) add ``train``/``val``/``test`` for known datasets.
"""

from __future__ import annotations

import csv
import os
import threading
from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.data.findings import Collector
from mirstd.data.readers._common import natural_key
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset

NAME = "videos"
FORMATS = {"videos": {}, "drone-ir": {}}
VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".mov", ".m4v", ".webm")
_SPLIT_COLUMNS = ("class", "distance_bin")


def detect(path: Path) -> bool:
    vdir = path / "videos"
    return path.is_dir() and vdir.is_dir() and any(p.suffix.lower() in VIDEO_SUFFIXES for p in vdir.iterdir())


def _av():
    try:
        import av
    except ImportError as e:  # pragma: no cover - the video extra is in dev
        raise ImportError(
            "reading videos needs the optional 'av' package: pip install 'mirstd[video]'"
        ) from e
    return av


def _grey(frame: Any) -> np.ndarray:
    return frame.to_ndarray(format="gray")


def decode_video(path: str | Path) -> np.ndarray:
    """All frames of ``path`` as uint8 (T, H, W) grey (luma for colour video)."""
    av = _av()
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        frames = [_grey(f) for f in container.decode(stream)]
    if not frames:
        raise ValueError(f"{path}: no decodable video frames")
    return np.stack(frames)


def read_video_frames(path: str | Path, start: int, count: int) -> np.ndarray:
    """Frames ``start .. start+count-1`` (uint8, grey) by seeking to the key frame before ``start``.

    Frame indices are decode order from 0 (as in the label CSVs); constant frame rate is assumed to
    turn an index into a timestamp, then frames are decoded forward until their index is reached.
    """
    av = _av()
    out: list[np.ndarray] = []
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate or stream.guessed_rate
        tb = stream.time_base
        t0 = stream.start_time or 0
        if start > 0 and rate and tb:
            container.seek(int(t0 + start / rate / tb), stream=stream, backward=True, any_frame=False)
        for f in container.decode(stream):
            idx = round(float((f.pts - t0) * tb * rate)) if (f.pts is not None and rate and tb) else None
            if idx is None or idx < start:
                continue
            out.append(_grey(f))
            if len(out) == count:
                break
    return np.stack(out) if out else np.zeros((0, 0, 0), np.uint8)


CHUNK = 64  # frames per decoded chunk


class VideoCache:
    """Decoded chunks of videos kept in memory up to ``limit_mb`` (least recently used evicted first)."""

    def __init__(self, limit_mb: float | None = None) -> None:
        if limit_mb is None:
            limit_mb = float(os.environ.get("MIRSTD_VIDEO_CACHE_MB", 3072))
        self.limit = int(limit_mb * 2**20)
        self._items: OrderedDict[tuple[str, int], np.ndarray] = OrderedDict()
        self._bytes = 0
        self._lock = threading.Lock()

    def chunk(self, path: str, k: int) -> np.ndarray:
        """Frames ``k*CHUNK .. (k+1)*CHUNK - 1`` of ``path`` (fewer at the end of the video)."""
        key = (path, k)
        with self._lock:
            arr = self._items.get(key)
            if arr is not None:
                self._items.move_to_end(key)
                return arr
        arr = read_video_frames(path, k * CHUNK, CHUNK)
        with self._lock:
            if key not in self._items:
                self._items[key] = arr
                self._bytes += arr.nbytes
            while len(self._items) > 1 and self._bytes > self.limit:
                _, old = self._items.popitem(last=False)
                self._bytes -= old.nbytes
        return arr

    def frame(self, path: str, i: int) -> np.ndarray:
        arr = self.chunk(path, i // CHUNK)
        j = i % CHUNK
        if j >= len(arr):
            raise IndexError(f"{path}: frame {i} requested, the video has fewer decodable frames")
        return arr[j]

    def __len__(self) -> int:
        return len(self._items)

    def set_limit(self, limit_mb: float) -> None:
        self.limit = int(limit_mb * 2**20)


CACHE = VideoCache()


class _FrameLoader:
    """Zero-argument loader of frame ``i`` of a video (picklable for DataLoader workers)."""

    __slots__ = ("path", "i")

    def __init__(self, path: str, i: int) -> None:
        self.path, self.i = path, i

    def __call__(self) -> np.ndarray:
        return CACHE.frame(self.path, self.i).astype(np.float32)


def _video_meta(root: Path, col: Collector) -> dict[str, dict[str, str]]:
    table = root / "videos.csv"
    if not table.is_file():
        return {}
    with open(table, newline="") as f:
        rows = list(csv.DictReader(f))
    key = "video" if rows and "video" in rows[0] else None
    if key is None:
        col.error(table, "videos.csv has no 'video' column", kind="bad_label")
        return {}
    return {r[key]: r for r in rows}


def _probe(path: Path) -> tuple[int, tuple[int, int]]:
    av = _av()
    with av.open(str(path)) as container:
        s = container.streams.video[0]
        return int(s.frames or 0), (int(s.height), int(s.width))


def parse_box_csv(path: Path, n_frames: int, col: Collector, box_origin: float = 0.5) -> list[FrameLabels]:
    """Per-frame labels from ``frame,x,y,w,h`` rows (see the module docstring for the convention)."""
    labels = [FrameLabels(has_boxes=True, has_points=False) for _ in range(n_frames)]
    boxes: dict[int, list[list[float]]] = {}
    past = 0
    with open(path, newline="") as f:
        reader = csv.reader(f)
        header = next(reader, None)
        if header is None or [h.strip().lower() for h in header[:5]] != ["frame", "x", "y", "w", "h"]:
            col.error(path, f"header {header!r}; expected frame,x,y,w,h", 1, kind="bad_label")
            return labels
        for lineno, row in enumerate(reader, 2):
            if not row or not row[0].strip():
                continue
            try:
                k = int(row[0])
                vals = [c.strip() for c in row[1:5]]
                if not any(vals):
                    continue
                x, y, w, h = (float(v) for v in vals)
            except ValueError:
                col.error(path, f"cannot parse {','.join(row)!r} as frame,x,y,w,h", lineno, kind="bad_label")
                continue
            if k >= n_frames:
                past += 1
                continue
            if w <= 0 or h <= 0 or not np.isfinite([x, y, w, h]).all():
                col.error(path, f"empty or non-finite box {row[1:5]}", lineno, kind="bad_label")
                continue
            x0, y0 = x - box_origin, y - box_origin
            boxes.setdefault(k, []).append([x0, y0, x0 + w, y0 + h])
    if past:
        col.warn(path, f"{past} label row(s) past the last decoded frame ({n_frames}); ignored",
                    kind="label_without_frame")  # fmt: skip
    for k, b in boxes.items():
        labels[k] = FrameLabels(boxes=b, has_boxes=True)
    return labels


def read(
    path: Path,
    col: Collector,
    videos: list[str] | None = None,
    box_origin: float = 0.5,
    cache_mb: float | None = None,
) -> SequenceDataset:
    """Read a folder of videos (see the module docstring). ``videos`` restricts to those names."""
    if cache_mb is not None:
        CACHE.set_limit(float(cache_mb))
    vdir, ldir = path / "videos", path / "labels"
    files = sorted((p for p in vdir.iterdir() if p.suffix.lower() in VIDEO_SUFFIXES), key=natural_key)
    if videos is not None:
        want = set(videos)
        files = [p for p in files if p.stem in want]
    meta = _video_meta(path, col)
    seqs: dict[str, Sequence] = {}
    splits: dict[str, list[str]] = {}
    for vf in files:
        info = meta.get(vf.stem, {})
        n = int(info["decoded_frames"]) if str(info.get("decoded_frames", "")).isdigit() else 0
        size = (int(info["height"]), int(info["width"])) if info.get("height") and info.get("width") else None
        if not n or size is None:
            n_hdr, size_hdr = _probe(vf)
            n, size = n or n_hdr, size or size_hdr
        if n <= 0:
            col.error(vf, "cannot tell the frame count (no videos.csv row, no count in the header)",
                      kind="empty_sequence")  # fmt: skip
            continue
        lab = ldir / f"{vf.stem}.csv"
        if lab.is_file():
            labels = parse_box_csv(lab, n, col, box_origin)
        else:
            col.warn(lab, "no label file: the video is read unlabelled", kind="missing_labels")
            labels = [FrameLabels() for _ in range(n)]
        frames = [_FrameLoader(str(vf), i) for i in range(n)]
        vmeta = {k: v for k, v in info.items() if k in _SPLIT_COLUMNS}
        seqs[vf.stem] = Sequence(vf.stem, frames, labels, None, "semantic", 8, size,
                                 [f"{i:05d}" for i in range(n)], {"video": str(vf), **vmeta})  # fmt: skip
        for c in _SPLIT_COLUMNS:
            if info.get(c):
                splits.setdefault(info[c].lower(), []).append(vf.stem)
    return SequenceDataset(
        seqs, splits, path.name, path, NAME, None,
        {"clip_pad": "repeat", "labels": "boxes (MATLAB spatial x, y, w, h)" if box_origin == 0.5 else "boxes"},
    )  # fmt: skip
