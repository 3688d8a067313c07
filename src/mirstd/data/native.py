"""The mirstd native dataset layout (MIST-compatible), reader and writer.

::

    <root>/dataset.yaml                   format: mirstd-native, version, name, bit_depth, splits, norm, meta
    <root>/image/<seq>/<frame>.png        8- or 16-bit single-channel PNG, frame = 5-digit index from 00000
    <root>/mask/<seq>/<frame>.png         uint8 0/255 union mask (optional; all frames of a sequence or none)
    <root>/instance/<seq>/<frame>.png     uint8 instance ids, 0 = background (optional)
    <root>/annotations/<seq>.json         per-frame target records
    <root>/<split>.txt                    sequence names, one per line

MIST tools read ``image/`` + ``mask/`` + split files directly. Target records carry ``id``, ``box``
(edge box ``[x1, y1, x2, y2]``), ``point`` (``[x, y]``), ``scr`` (float or null) and any extra keys,
which come back in ``FrameLabels.extra["targets"]``. See docs/data.md.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from mirstd.data.findings import Collector
from mirstd.data.image import write_png
from mirstd.data.readers._common import check_consecutive, natural_key
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.utils.io import atomic_write_text, check_component, inside, to_jsonable

FORMAT_NAME = "mirstd-native"
FORMAT_VERSION = 1
_CORE_KEYS = {"id", "box", "point", "scr"}


def frame_stem(i: int) -> str:
    return f"{i:05d}"


def _num(v: float) -> float | None:
    v = float(v)
    return None if math.isnan(v) else round(v, 6)


def _target_records(lab: FrameLabels) -> list[dict[str, Any]]:
    extras = lab.extra.get("targets") or [{}] * lab.num_targets
    recs = []
    for k in range(lab.num_targets):
        rec: dict[str, Any] = {"id": int(lab.ids[k])}
        if lab.has_boxes and k < len(lab.boxes):
            rec["box"] = [_num(v) for v in lab.boxes[k]]
        if lab.has_points and k < len(lab.points):
            rec["point"] = [_num(v) for v in lab.points[k]]
        rec["scr"] = _num(lab.scr[k])
        extra = extras[k] if k < len(extras) else {}
        rec.update({key: val for key, val in extra.items() if key not in _CORE_KEYS})
        recs.append(rec)
    return recs


def _to_dtype(frame: np.ndarray, bit_depth: int) -> np.ndarray:
    hi = 255 if bit_depth <= 8 else 65535
    out = np.clip(np.round(frame), 0, hi)
    return out.astype(np.uint8 if bit_depth <= 8 else np.uint16)


def write_sequence(root: str | Path, seq: Sequence, write_masks: bool = True) -> None:
    """Write one sequence's frames, masks and annotations file under ``root``."""
    root = Path(root)
    has_masks = write_masks and seq.has_masks
    frames_json = []
    for i in range(len(seq)):
        stem = frame_stem(i)
        write_png(root / "image" / seq.name / f"{stem}.png", _to_dtype(seq.load_frame(i), seq.bit_depth))
        if has_masks:
            m = seq.load_mask(i)
            if m is None:
                raise ValueError(f"sequence {seq.name!r}: frame {i} has no mask but others do")
            write_png(root / "mask" / seq.name / f"{stem}.png", ((m > 0) * 255).astype(np.uint8))
            if seq.mask_kind == "instance":
                write_png(root / "instance" / seq.name / f"{stem}.png", m.astype(np.uint8))
        lab = seq.labels[i]
        entry: dict[str, Any] = {"frame": stem, "source": seq.frame_ids[i], "targets": _target_records(lab)}
        entry["has_boxes"], entry["has_points"] = bool(lab.has_boxes), bool(lab.has_points)
        frames_json.append(entry)
    doc = {"sequence": seq.name, "bit_depth": seq.bit_depth, "meta": seq.meta, "frames": frames_json}
    atomic_write_text(
        root / "annotations" / f"{seq.name}.json", json.dumps(to_jsonable(doc, strict=True), indent=1)
    )


def write_index(
    root: str | Path,
    sequence_names: list[str],
    splits: dict[str, list[str]] | None = None,
    name: str = "dataset",
    bit_depth: int = 8,
    norm: tuple[float, float] | None = None,
    meta: dict[str, Any] | None = None,
) -> None:
    """Write ``dataset.yaml`` and one ``<split>.txt`` per split."""
    root = Path(root)
    splits = splits or {}
    for split, names in splits.items():
        unknown = [n for n in names if n not in sequence_names]
        if unknown:
            raise ValueError(f"split {split!r} names sequences not in the dataset: {unknown[:5]}")
        atomic_write_text(root / f"{split}.txt", "".join(f"{n}\n" for n in names))
    doc = {
        "format": FORMAT_NAME,
        "version": FORMAT_VERSION,
        "name": name,
        "bit_depth": bit_depth,
        "sequences": list(sequence_names),
        "splits": sorted(splits),
        "norm": list(norm) if norm else None,
        "meta": to_jsonable(meta or {}, strict=True),
    }
    atomic_write_text(root / "dataset.yaml", yaml.safe_dump(doc, sort_keys=False))


def write_native(
    data: SequenceDataset | Iterable[Sequence],
    root: str | Path,
    splits: dict[str, list[str]] | None = None,
    name: str | None = None,
    meta: dict[str, Any] | None = None,
    progress: bool = False,
) -> Path:
    """Write a whole dataset in the native layout. Returns ``root``."""
    root = Path(root)
    if isinstance(data, SequenceDataset):
        seqs = list(data)
        splits = data.splits if splits is None else splits
        name = name or data.name
        meta = {**data.meta, **(meta or {})}
        norm = data.norm
    else:
        seqs, norm = list(data), None
    if not seqs:
        raise ValueError("write_native: no sequences to write")
    it: Iterable[Sequence] = seqs
    if progress:
        from tqdm import tqdm

        it = tqdm(seqs, desc=f"writing {root}", unit="seq")
    for seq in it:
        write_sequence(root, seq)
    write_index(
        root, [s.name for s in seqs], splits, name or "dataset", max(s.bit_depth for s in seqs), norm, meta
    )
    return root


# ---------------------------------------------------------------------------------------------- reading


def is_native(root: str | Path) -> bool:
    """True for a native dataset folder. Never a silent fall-back to another format: a folder with a
    ``dataset.yaml`` that does not parse, or with ``annotations/`` and ``image/`` but no
    ``dataset.yaml`` (a write that did not finish), raises ValueError naming the file."""
    root = Path(root)
    p = root / "dataset.yaml"
    if not p.is_file():
        if (root / "annotations").is_dir() and (root / "image").is_dir():
            raise ValueError(
                f"{p}: missing, but {root} has annotations/ and image/ (an unfinished mirstd native "
                "dataset?); write it again, or pass format=<name> to read it as another layout"
            )
        return False
    try:
        doc = yaml.safe_load(p.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise ValueError(
            f"{p}: does not parse as YAML ({first}); fix or regenerate the dataset index"
        ) from None
    if not isinstance(doc, dict):
        raise ValueError(f"{p}: expected a mapping (format: {FORMAT_NAME}, ...), got {type(doc).__name__}")
    return doc.get("format") == FORMAT_NAME


def _labels_from_record(frame: dict[str, Any], where: str) -> FrameLabels:
    targets = frame.get("targets", [])
    if not isinstance(targets, list):
        raise ValueError(f"{where}: 'targets' must be a list")
    boxes, points, ids, scr, extras = [], [], [], [], []
    for j, t in enumerate(targets):
        try:
            if "box" in t:
                boxes.append([float(v) for v in t["box"]])
            if "point" in t:
                points.append([float(v) for v in t["point"]])
        except (TypeError, ValueError) as e:
            raise ValueError(f"{where}: target {j} has a malformed box/point ({e})") from e
        ids.append(int(t.get("id", -1)))
        scr.append(float("nan") if t.get("scr") is None else float(t["scr"]))
        extras.append({k: v for k, v in t.items() if k not in _CORE_KEYS})
    has_boxes = bool(frame.get("has_boxes", bool(boxes)))
    has_points = bool(frame.get("has_points", bool(points)))
    if boxes and len(boxes) != len(targets) or points and len(points) != len(targets):
        raise ValueError(f"{where}: every target of a frame must have the same fields (box/point)")
    extra = {"targets": extras} if any(extras) else {}
    return FrameLabels(boxes, points, ids, scr, has_boxes=has_boxes, has_points=has_points, extra=extra)


def read_sequence(root: Path, name: str, bit_depth: int = 8, col: Collector | None = None) -> Sequence:
    """Read one native sequence. Frames and masks stay on disk until loaded. A missing annotation
    file and gaps in the frame numbers are errors (findings in ``col`` when given, else raised)."""
    img_dir = root / "image" / name
    frames = sorted(img_dir.glob("*.png"), key=natural_key)
    if not frames:
        raise FileNotFoundError(f"{img_dir}: no frames (expected image/{name}/00000.png ...)")
    ann_path = root / "annotations" / f"{name}.json"
    if col is not None:
        check_consecutive(frames, col, img_dir)
    if not ann_path.is_file():
        msg = f"annotation file missing (sequence {name!r} has {len(frames)} frames); its frames would read as target-free"
        if col is None:
            raise FileNotFoundError(f"{ann_path}: {msg}")
        col.error(ann_path, msg, kind="missing_labels")
    if ann_path.is_file():
        try:
            doc = json.loads(ann_path.read_text())
        except json.JSONDecodeError as e:
            raise ValueError(f"{ann_path}: line {e.lineno}: invalid JSON ({e.msg})") from e
        recs = doc.get("frames", []) if isinstance(doc, dict) else None
        if not isinstance(recs, list):
            raise ValueError(f"{ann_path}: expected a mapping with a 'frames' list")
        if len(recs) != len(frames):
            raise ValueError(f"{ann_path}: {len(recs)} frame records but {len(frames)} frames in {img_dir}")
        labels = [_labels_from_record(r, f"{ann_path} frame {r.get('frame', i)}") for i, r in enumerate(recs)]
        frame_ids = [str(r.get("source", frames[i].stem)) for i, r in enumerate(recs)]
        meta, bit_depth = doc.get("meta", {}) or {}, int(doc.get("bit_depth", bit_depth))
    else:
        labels, frame_ids, meta = [FrameLabels() for _ in frames], None, {}
    masks, kind = None, "semantic"
    for sub, k in (("instance", "instance"), ("mask", "semantic")):
        d = root / sub / name
        if d.is_dir():
            masks = [d / f.name for f in frames]
            missing = [m for m in masks if not m.is_file()]
            if missing:
                raise FileNotFoundError(f"{missing[0]}: mask missing ({len(missing)} of {len(masks)} in {d})")
            kind = k
            break
    return Sequence(name, list(frames), labels, masks, kind, bit_depth, None, frame_ids, meta)


def read_native(root: str | Path, col: Collector | None = None) -> SequenceDataset:
    """Read a native dataset folder. Sequence names must be plain names (no ``/``, ``..`` or absolute
    paths: they become folder names under every output) and stay inside ``root``."""
    root = Path(root)
    idx_path = root / "dataset.yaml"
    if not idx_path.is_file():
        raise FileNotFoundError(f"{idx_path}: not found (is {root} a mirstd native dataset?)")
    try:
        idx = yaml.safe_load(idx_path.read_text()) or {}
    except yaml.YAMLError as e:
        raise ValueError(f"{idx_path}: invalid YAML ({e})") from e
    if idx.get("format") != FORMAT_NAME:
        raise ValueError(f"{idx_path}: 'format' is {idx.get('format')!r}, expected {FORMAT_NAME!r}")
    names = idx.get("sequences") or sorted(p.name for p in (root / "image").iterdir() if p.is_dir())
    if not names:
        raise ValueError(f"{root}: dataset has no sequences")
    if not isinstance(names, list):
        raise ValueError(f"{idx_path}: 'sequences' must be a list of names")
    names = [str(n) for n in names]
    for n in names:
        try:
            check_component(n, "sequence name")
            inside(root / "image", root / "image" / n)
        except ValueError as e:
            raise ValueError(f"{idx_path}: {e}") from None
    bit_depth = int(idx.get("bit_depth", 8))
    seqs = {n: read_sequence(root, n, bit_depth, col) for n in names}
    splits = {}
    for split in idx.get("splits", []):
        p = root / f"{split}.txt"
        if not p.is_file():
            raise FileNotFoundError(f"{p}: split file listed in {idx_path} is missing")
        lines = [ln.strip() for ln in p.read_text().splitlines()]
        for lineno, ln in enumerate(lines, 1):
            if ln and ln not in seqs:
                raise ValueError(f"{p}:{lineno}: split names unknown sequence {ln!r}")
        splits[split] = [ln for ln in lines if ln]
    norm = tuple(idx["norm"]) if idx.get("norm") else None
    return SequenceDataset(
        seqs, splits, idx.get("name", root.name), root, "native", norm, idx.get("meta") or {}
    )
