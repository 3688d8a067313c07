"""TensorISTD point sequences (datasets.md §9): ``data/<seq>/<frame>.png|bmp`` + ``anno/<seq>.txt``.

Line k of ``anno/<seq>.txt`` holds ``x y`` (tab or space separated) = 1-based column, row of the
single target in frame k (frames in natural file-name order). mirstd stores the 0-based point
``(x - 1, y - 1)``. A missing trailing newline is fine; extra lines are "labels for frames that do
not exist" and missing lines leave frames unlabelled — both are findings.
"""

from __future__ import annotations

import math
from pathlib import Path

from mirstd.data.findings import Collector
from mirstd.data.image import write_png
from mirstd.data.native import _to_dtype
from mirstd.data.readers._common import check_consecutive, list_images, natural_key, probe_sequence
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.utils.io import atomic_write_text

NAME = "tensoristd"
FORMATS = {"tensoristd": {}, "tensoristd_points": {}}


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "data").is_dir() and (path / "anno").is_dir()


def parse_anno(path: Path, n_frames: int, col: Collector) -> list[FrameLabels]:
    labels = [FrameLabels() for _ in range(n_frames)]
    lines = path.read_text(errors="replace").splitlines()
    k = 0
    for lineno, ln in enumerate(lines, 1):
        parts = ln.replace(",", " ").split()
        if not parts:
            continue
        if k >= n_frames:
            col.error(
                path,
                f"label for frame {k + 1}, but the sequence has {n_frames} frames",
                lineno,
                kind="label_without_frame",
            )
            k += 1
            continue
        try:
            x, y = float(parts[0]), float(parts[1])
        except (ValueError, IndexError):
            col.error(path, f"cannot parse {ln.strip()!r} as 'x y'", lineno, kind="bad_label")
            k += 1
            continue
        if len(parts) != 2:
            col.error(path, f"{len(parts)} columns in {ln.strip()!r}; a point line is 'x y'", lineno,
                      kind="bad_label")  # fmt: skip
            k += 1
            continue
        if not (math.isfinite(x) and math.isfinite(y)):
            col.error(path, f"non-finite point {ln.strip()!r} (NaN or inf)", lineno, kind="bad_label")
            k += 1
            continue
        labels[k] = FrameLabels(points=[[x - 1.0, y - 1.0]], has_points=True)
        k += 1
    if k < n_frames:
        col.error(
            path,
            f"{n_frames - k} frame(s) have no label line (file has {k}, sequence {n_frames})",
            kind="frame_without_label",
        )
    return labels


def read(path: Path, col: Collector, sequences: list[str] | None = None) -> SequenceDataset:
    data, anno = path / "data", path / "anno"
    dirs = sorted((d for d in data.iterdir() if d.is_dir()), key=natural_key)
    if sequences is not None:
        dirs = [d for d in dirs if d.name in set(sequences)]
    seqs: dict[str, Sequence] = {}
    for d in dirs:
        frames = list_images(d)
        if not frames:
            col.error(d, "sequence folder holds no images", kind="empty_sequence")
            continue
        check_consecutive(frames, col, d)
        ann = anno / f"{d.name}.txt"
        if ann.is_file():
            labels = parse_anno(ann, len(frames), col)
        else:
            col.error(ann, "label file missing; the sequence's frames are unlabelled", kind="missing_labels")
            labels = [FrameLabels() for _ in frames]
        size, bd = probe_sequence(frames, col)
        seqs[d.name] = Sequence(d.name, frames, labels, None, "semantic", bd, size, None, {})
    for ann in sorted(anno.glob("*.txt")):
        if (
            ann.stem not in seqs
            and (sequences is None or ann.stem in sequences)
            and not (data / ann.stem).is_dir()
        ):
            col.error(
                ann,
                f"labels for sequence {ann.stem!r}, which has no folder under {data}",
                kind="label_without_frame",
            )
    return SequenceDataset(
        seqs,
        {},
        path.name,
        path,
        NAME,
        None,
        {"clip_pad": "repeat", "labels": "points (1-based x y in the source)"},
    )


def write(dataset: SequenceDataset, root: str | Path) -> Path:
    """Write point labels in the TensorISTD layout (frames as 4-digit 1-based PNGs). First point only."""
    root = Path(root)
    for seq in dataset:
        lines = []
        for i in range(len(seq)):
            write_png(
                root / "data" / seq.name / f"{i + 1:04d}.png", _to_dtype(seq.load_frame(i), seq.bit_depth)
            )
            p = seq.labels[i].points
            lines.append(f"{p[0, 0] + 1:g}\t{p[0, 1] + 1:g}" if len(p) else "")
        atomic_write_text(root / "anno" / f"{seq.name}.txt", "\n".join(lines))
    return root
