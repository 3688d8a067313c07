"""BasicIRSTD / DNANet single-frame folders (datasets.md §4, §5).

``<root>/images/<stem>.png|bmp``, ``<root>/masks/<stem>.png|bmp`` (0/255, same stem; ``<stem>_pixels0``
also accepted), split lists ``img_idx/{train,test}_<Name>.txt`` or directly under ``<root>``
(BasicIRSTD), or ``<root>/<split_method>/{train,test}.txt`` (DNANet, ``format=dnanet_split``,
``split_dir=50_50``). One stem per line; IRDST-real lines like ``/41/1(297)`` name a sub-folder.

Single-frame data become **one one-frame sequence per image** (named by the stem, ``/`` -> ``__``):
frames differ in size across images, and split lists select images. Such sequences carry
``meta["single_frame"] = True``; their splits are per frame, so ``ClipDataset`` refuses them for
multi-frame training (``num_frames > 1, train=True``) with an explicit error.
"""

from __future__ import annotations

from pathlib import Path

from mirstd.data.findings import Collector
from mirstd.data.probe import probe_ok
from mirstd.data.readers._common import (
    find_image,
    natural_key,
    read_split_list,
    safe_name,
    single_frame_sequence,
)
from mirstd.data.sequence import Sequence, SequenceDataset

NAME = "basicirstd"
FORMATS = {"basicirstd": {}, "dnanet_split": {"dnanet": True}}


def detect(path: Path) -> bool:
    return path.is_dir() and (path / "images").is_dir() and (path / "masks").is_dir()


def _split_files(path: Path, dnanet: bool, split_dir: str | None) -> dict[str, Path]:
    out: dict[str, Path] = {}
    if dnanet or split_dir:
        dirs = (
            [path / split_dir]
            if split_dir
            else [d for d in sorted(path.iterdir()) if (d / "train.txt").is_file()]
        )
        for d in dirs[:1]:
            for split in ("train", "test", "val"):
                if (d / f"{split}.txt").is_file():
                    out[split] = d / f"{split}.txt"
        return out
    for d in (path / "img_idx", path):
        for split in ("train", "test", "val"):
            for f in sorted(d.glob(f"{split}_*.txt")) if d.is_dir() else []:
                out.setdefault(split, f)
    return out


def _mask_for(masks_dir: Path, rel: str) -> Path | None:
    stem = Path(rel).name
    sub = masks_dir / Path(rel).parent
    return find_image(sub, stem) or find_image(sub, f"{stem}_pixels0")


def read(path: Path, col: Collector, dnanet: bool = False, split_dir: str | None = None) -> SequenceDataset:
    images, masks_dir = path / "images", path / "masks"
    split_files = _split_files(path, dnanet, split_dir)
    listed: dict[str, list[tuple[str, Path, int]]] = {}
    for split, sf in split_files.items():
        listed[split] = [(ln.strip("/\\"), sf, k) for k, ln in read_split_list(sf, col)]
    if listed:
        rels = list(dict.fromkeys(r for items in listed.values() for r, _, _ in items))
        where = {r: (sf, k) for items in listed.values() for r, sf, k in items}
    else:
        rels = [
            str(p.relative_to(images).with_suffix(""))
            for p in sorted(images.rglob("*"), key=natural_key)
            if p.is_file() and probe_ok(p)
        ]
        where = {}
    seqs: dict[str, Sequence] = {}
    for rel in rels:
        img = find_image(images / Path(rel).parent, Path(rel).name)
        if img is None:
            sf, k = where.get(rel, (images, None))
            col.error(
                sf, f"lists {rel!r}, but no image {images / rel}.png|bmp exists", k, kind="split_missing"
            )
            continue
        mask = _mask_for(masks_dir, rel)
        if mask is None:
            col.error(masks_dir / f"{rel}.png", f"mask missing for image {img.name}", kind="missing_mask")
        name = safe_name(rel)
        seq = single_frame_sequence(name, img, mask)
        r = probe_ok(img)
        if r is not None:
            seq.size, seq.bit_depth = (r[0], r[1]), r[2]
        seqs[name] = seq
    splits = {s: [safe_name(r) for r, _, _ in items if safe_name(r) in seqs] for s, items in listed.items()}
    return SequenceDataset(
        seqs,
        splits,
        path.name,
        path,
        "dnanet_split" if dnanet else NAME,
        None,
        {"single_frame": True, "split_level": "frame"},
    )
