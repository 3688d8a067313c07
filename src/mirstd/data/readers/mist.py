"""MIST-style sequence folders (datasets.md §8; spec name ``seq_folders``).

``<root>/image/<seq>/*.png`` frames, ``<root>/mask/<seq>/*.png`` masks paired by sorted file name,
split files ``<root>/<split>.txt`` listing sequence names (MIST: train.txt, val_all.txt = the test
set, val_hard.txt = its 11 hard sequences). Every ``*.txt`` at the root becomes a split of that name;
MIST's ``val_all``/``val_hard`` are also exposed as ``test``/``test_hard``. MIST masks were resized
bilinearly (soft values): they are binarised at 127. MIST never uses the first 4 frames as key frames
(``clip_pad: skip``).
"""

from __future__ import annotations

from pathlib import Path

from mirstd.data.findings import Collector
from mirstd.data.readers._common import (
    check_consecutive,
    list_images,
    mask_labels,
    natural_key,
    probe_sequence,
    read_split_list,
)
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset

NAME = "mist"
FORMATS = {"mist": {}, "seq_folders": {}}
_ALIASES = {"val_all": "test", "val_hard": "test_hard"}


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "image").is_dir() and any(p.is_dir() for p in (path / "image").iterdir())


def read(path: Path, col: Collector, mask_dir: str = "mask") -> SequenceDataset:
    seqs: dict[str, Sequence] = {}
    for d in sorted((p for p in (path / "image").iterdir() if p.is_dir()), key=natural_key):
        frames = list_images(d)
        if not frames:
            col.error(d, "sequence folder holds no images", kind="empty_sequence")
            continue
        check_consecutive(frames, col, d)
        md = path / mask_dir / d.name
        masks = None
        if md.is_dir():
            mfiles = list_images(md)
            by_stem = {m.stem: m for m in mfiles}
            masks = [by_stem.get(f.stem) for f in frames]
            for f, m in zip(frames, masks):
                if m is None:
                    col.error(md / f"{f.stem}.png", f"mask missing for frame {f.name}", kind="missing_mask")
            for m in mfiles:
                if m.stem not in {f.stem for f in frames}:
                    col.error(m, "mask for a frame that does not exist", kind="label_without_frame")
        labels = mask_labels(masks) if masks is not None else [FrameLabels() for _ in frames]
        size, bd = probe_sequence(frames, col)
        seqs[d.name] = Sequence(d.name, frames, labels, masks, "semantic", bd, size, None, {})
    splits: dict[str, list[str]] = {}
    for sf in sorted(path.glob("*.txt")):
        names = []
        for lineno, ln in read_split_list(sf, col):
            if ln not in seqs:
                col.error(
                    sf,
                    f"split names sequence {ln!r}, which has no folder under image/",
                    lineno,
                    kind="split_missing",
                )
            else:
                names.append(ln)
        splits[sf.stem] = names
        if sf.stem in _ALIASES and _ALIASES[sf.stem] not in splits:
            splits[_ALIASES[sf.stem]] = names
    return SequenceDataset(seqs, splits, path.name, path, NAME, (0.359, 0.15), {"clip_pad": "skip"})
