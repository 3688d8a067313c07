"""COCO json (datasets.md §1): the UESTC evaluation files, read and written.

Images ``{id, width, height, file_name}`` with ``file_name`` relative to the dataset root
(``images/test/data6/0.bmp``); annotations ``{id, image_id, category_id 1, bbox [x, y, w, h],
area = w*h, iscrowd 0, segmentation [[]]}``; categories ``[{id 1, name "target"}]``. bbox -> edge box
``(x, y, x + w, y + h)``. Images are grouped into sequences by their folder, ordered by numeric stem.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from mirstd.data.convert import points_to_boxes
from mirstd.data.findings import Collector
from mirstd.data.probe import probe_image
from mirstd.data.readers._common import natural_key, probe_sequence
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.utils.io import atomic_write_text

NAME = "coco"


def detect(path: Path) -> bool:
    if path.suffix != ".json" or not path.is_file():
        return False
    with open(path, errors="replace") as f:
        head = f.read(65536)
    return '"images"' in head or '"annotations"' in head


def _image_root(doc: dict, path: Path, image_root: str | Path | None) -> Path:
    if image_root:
        return Path(image_root)
    cands = [path.parent, path.parent.parent, path.parent.parent.parent]
    first = next((im["file_name"] for im in doc.get("images", [])), None)
    for c in cands:
        if first is not None and (c / first).is_file():
            return c
    return path.parent


def read(path: Path, col: Collector, image_root: str | Path | None = None) -> SequenceDataset:
    try:
        doc = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: line {e.lineno}: invalid JSON ({e.msg})") from e
    for key in ("images", "annotations"):
        if key not in doc:
            raise ValueError(f"{path}: missing key {key!r} (not a COCO detection file)")
    root = _image_root(doc, path, image_root)
    anns: dict[int, list[dict]] = {}
    image_ids = {im["id"] for im in doc["images"]}
    for k, a in enumerate(doc["annotations"]):
        if a.get("image_id") not in image_ids:
            col.error(
                path,
                f"annotation {a.get('id', k)} refers to image_id {a.get('image_id')} that does not exist",
                kind="label_without_frame",
            )
            continue
        anns.setdefault(a["image_id"], []).append(a)
    groups: dict[Path, list[tuple[Path, dict]]] = {}
    for im in doc["images"]:
        f = root / im["file_name"]
        if not f.is_file():
            col.error(
                path, f"image {im['id']}: file {im['file_name']} not found under {root}", kind="missing_frame"
            )
            continue
        groups.setdefault(f.parent, []).append((f, im))
    base = [d.name for d in groups]
    seqs: dict[str, Sequence] = {}
    for d, items in sorted(groups.items(), key=lambda kv: natural_key(kv[0].name)):
        name = d.name if base.count(d.name) == 1 else f"{d.parent.name}__{d.name}"
        items.sort(key=lambda t: natural_key(t[0].name))
        labels = []
        for _f, im in items:
            a = sorted(anns.get(im["id"], []), key=lambda r: r.get("id", 0))
            b = np.asarray([[x, y, x + w, y + h] for x, y, w, h in (r["bbox"] for r in a)], np.float32)
            labels.append(
                FrameLabels(boxes=b.reshape(-1, 4), has_boxes=True, extra={"coco_image_id": im["id"]})
            )
        frames = [t[0] for t in items]
        size, bd = probe_sequence(frames, col)
        seqs[name] = Sequence(name, frames, labels, None, "semantic", bd, size, None, {})
    return SequenceDataset(seqs, {}, path.stem, root, NAME, None, {"clip_pad": "repeat"})


def to_coco(
    dataset: SequenceDataset,
    split: str | None = None,
    image_root: str | Path | None = None,
    point_box: float | None = None,
) -> dict:
    """COCO dict of a dataset (split). Frames without boxes but with points get ``point_box``-sized boxes
    when given (DAUB rule: 8); otherwise a frame without boxes has no annotations."""
    root = Path(image_root) if image_root else dataset.root
    images, annotations = [], []
    for seq in dataset.split(split):
        size = seq.size
        for i, f in enumerate(seq.frames):
            if isinstance(f, Path):
                h, w, _ = probe_image(f) if size is None else (*size, 0)
                try:
                    fname = str(Path(f).resolve().relative_to(Path(root).resolve())) if root else str(f)
                except ValueError:
                    fname = str(Path(f).resolve())
            else:
                h, w = size or seq.load_frame(i).shape
                fname = f"{seq.name}/{seq.frame_ids[i]}"
            iid = len(images) + 1
            images.append({"id": iid, "width": int(w), "height": int(h), "file_name": fname})
            lab = seq.labels[i]
            boxes = (
                lab.boxes
                if lab.has_boxes
                else (
                    points_to_boxes(lab.points, point_box, (h, w))
                    if point_box and lab.has_points
                    else np.zeros((0, 4))
                )
            )
            for x1, y1, x2, y2 in np.asarray(boxes, np.float64):
                bw, bh = x2 - x1, y2 - y1
                annotations.append(
                    {
                        "id": len(annotations) + 1,
                        "image_id": iid,
                        "category_id": 1,
                        "bbox": [_n(x1), _n(y1), _n(bw), _n(bh)],
                        "area": _n(bw * bh),
                        "iscrowd": 0,
                        "segmentation": [[]],
                    }
                )
    return {"images": images, "annotations": annotations, "categories": [{"id": 1, "name": "target"}]}


def _n(v: float) -> float | int:
    v = round(float(v), 4)
    return int(v) if v.is_integer() else v


def write_coco(
    dataset: SequenceDataset,
    path: str | Path,
    split: str | None = None,
    image_root: str | Path | None = None,
    point_box: float | None = None,
) -> Path:
    """Write :func:`to_coco` atomically. ``file_name`` is relative to ``image_root`` (default dataset.root)."""
    return atomic_write_text(path, json.dumps(to_coco(dataset, split, image_root, point_box)))
