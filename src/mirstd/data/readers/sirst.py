"""SIRST v1 (NUAA-SIRST) and SIRST v2 (open-sirst-v2), datasets.md §6-7.

v1: ``images/<id>.png``, ``masks/<id>_pixels0.png``, ``masks/<id>.xml``, ``idx_427/*.txt`` (or
``idx_320``; option ``idx``). v2: ``mixed/<id>.png``, ``annotations/masks/<id>_pixels0.png``,
``annotations/bboxes/<id>.xml``, ``annotations/centroids/<id>.xml``, ``splits/*.txt``.

Boxes and points always come from the 8-connected mask components when a mask exists (v1 XML boxes
merge targets and are off by one; spec §6). The XML boxes are compared with the mask boxes by
``mirstd data check`` (``verify``), which reports each disagreement as a warning. v2 XML rule:
0-based edge box = ``(xmin - 1, ymin - 1, xmax - 1, ymax - 1)``; v1 XML boxes are read as 0-based
inclusive. Placeholder ``<object>``s without ``<bndbox>`` (v2 backgrounds) count as zero boxes.
Images are one-frame sequences (see ``basicirstd``); colour images become grey.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np

from mirstd.data.findings import Collector, Finding
from mirstd.data.probe import probe_ok
from mirstd.data.readers._common import find_image, list_images, read_split_list, single_frame_sequence
from mirstd.data.sequence import Sequence, SequenceDataset

NAME = "sirst_v1"
FORMATS = {"sirst_v1": {"version": 1}, "sirst_v2": {"version": 2}}


def detect(path: Path) -> str | bool:
    if not path.is_dir():
        return False
    if (path / "mixed").is_dir() and (path / "annotations" / "masks").is_dir():
        return "sirst_v2"
    if (
        (path / "images").is_dir()
        and (path / "masks").is_dir()
        and any((path / "masks").glob("*_pixels0.png"))
    ):
        if any(path.glob("idx_*")) or any((path / "masks").glob("*.xml")):
            return "sirst_v1"
    return False


def parse_xml_boxes(path: Path, version: int) -> np.ndarray:
    """Edge boxes (N, 4) of a VOC-like XML; objects without ``<bndbox>`` are placeholders (skipped)."""
    try:
        root = ET.parse(path).getroot()
    except ET.ParseError as e:
        raise ValueError(f"{path}: line {e.position[0]}: invalid XML ({e})") from e
    out = []
    for obj in root.iter("object"):
        bb = obj.find("bndbox")
        if bb is None:
            continue
        x1, y1, x2, y2 = (float(bb.findtext(k)) for k in ("xmin", "ymin", "xmax", "ymax"))
        out.append([x1 - 1, y1 - 1, x2 - 1, y2 - 1] if version == 2 else [x1, y1, x2 + 1, y2 + 1])
    return np.asarray(out, np.float32).reshape(-1, 4)


def read(path: Path, col: Collector, version: int = 1, idx: str | None = None) -> SequenceDataset:
    if version == 2:
        img_dir, mask_dir, xml_dir, split_dir = (
            path / "mixed",
            path / "annotations" / "masks",
            path / "annotations" / "bboxes",
            path / "splits",
        )
    else:
        img_dir, mask_dir, xml_dir = path / "images", path / "masks", path / "masks"
        cands = [path / idx] if idx else sorted(path.glob("idx_*"), reverse=True)
        split_dir = next((c for c in cands if c.is_dir()), path / "idx_427")
    seqs: dict[str, Sequence] = {}
    for img in list_images(img_dir):
        mask = find_image(mask_dir, f"{img.stem}_pixels0") or find_image(mask_dir, img.stem)
        if mask is None:
            col.error(
                mask_dir / f"{img.stem}_pixels0.png",
                f"mask missing for image {img.name}",
                kind="missing_mask",
            )
        xml = xml_dir / f"{img.stem}.xml"
        meta = {"xml": str(xml)} if xml.is_file() else {}
        seq = single_frame_sequence(img.stem, img, mask, **meta)
        r = probe_ok(img)
        if r is not None:
            seq.size, seq.bit_depth = (r[0], r[1]), r[2]
        seqs[img.stem] = seq
    splits: dict[str, list[str]] = {}
    for sf in sorted(split_dir.glob("*.txt")) if split_dir.is_dir() else []:
        names = []
        for lineno, ln in read_split_list(sf, col):
            if ln not in seqs:
                col.error(
                    sf, f"lists {ln!r}, but {img_dir / ln}.png does not exist", lineno, kind="split_missing"
                )
            else:
                names.append(ln)
        splits[sf.stem] = names
    return SequenceDataset(
        seqs,
        splits,
        path.name,
        path,
        f"sirst_v{version}",
        None,
        {"single_frame": True, "split_level": "frame", "sirst_version": version},
    )


def verify(ds: SequenceDataset) -> list[Finding]:
    """Compare XML boxes with the mask-derived boxes (warnings; the mask boxes are used)."""
    version = int(ds.meta.get("sirst_version", 1))
    out = []
    for seq in ds:
        xml = seq.meta.get("xml")
        if not xml or not seq.has_masks:
            continue
        try:
            xb = parse_xml_boxes(Path(xml), version)
        except (ValueError, TypeError) as e:
            out.append(Finding(xml, str(e), kind="bad_label"))
            continue
        mb = seq.labels[0].boxes
        same = xb.shape == mb.shape and np.allclose(np.sort(xb, 0), np.sort(mb, 0), atol=0)
        if not same:
            out.append(
                Finding(
                    xml,
                    f"XML boxes {xb.astype(int).tolist()} disagree with the mask components "
                    f"{mb.astype(int).tolist()}; boxes are taken from the mask",
                    severity="warning",
                    kind="xml_mask_disagree",
                )
            )
    return out
