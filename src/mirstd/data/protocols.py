"""Named train / val / test splits of the real data sets mirstd is developed on (docs/real-data.md).

Splits are by sequence (``airground-real``) and by video (``drone-ir``), never by frame: neighbouring
frames are near-duplicates, so a per-frame split would test on the training set.

- ``airground-real`` (8 sequences of 100 frames, one aircraft each, points): train = sequences 1, 4,
  5, 8, 11; val = sequence 2; test = sequences 6 and 9. Scored with the point protocol (a detection
  within 3 px of the point).
- ``drone-ir`` (276 videos, boxes, a distance class per video): inside each (class, distance) group,
  videos in name order take the roles train, train, test, train, val in turn (position mod 5 = 2 ->
  test, = 4 -> val): about 60 / 20 / 20 % with every class and distance in each split. ``test_distant``
  (DISTANT videos of test) is the small-target test; ``val_distant`` and ``train_distant`` likewise.
  Scored with COCO AP50 and point-in-box Pd (a detection counts when its centre lies in the box
  enlarged by 2 px). ``<role>_medium`` and ``<role>_close`` likewise; ``train_distant+train_medium``
  (a union) is the small-target training set.

Each split also exists with the data set's short name in front (``airground_val``, ``drone_val_distant``)
so that a merged dataset (``data=[real:airground, real:drone-ir]``) can name one source's split.

``real:<name>`` (``real:airground``, ``real:drone-ir``) loads a data set from the first data root that
holds it: ``$MIRSTD_DATA``, then ``./shared/data``, ``../shared/data``, and the same beside the
installed source tree.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from mirstd.data.sequence import SequenceDataset

AIRGROUND_SPLITS = {
    "train": ["sequence1", "sequence4", "sequence5", "sequence8", "sequence11"],
    "val": ["sequence2"],
    "test": ["sequence6", "sequence9"],
}
ALIASES = {"airground": "airground-real", "drone": "drone-ir", "backgrounds": "ir-backgrounds"}
# How each real data set is scored (mirstd.infer reads these; the data layer only names them).
SCORING = {
    "airground-real": {"protocol": "point", "distance": 3.0},
    "drone-ir": {"protocol": "point_in_box", "box_margin": 2.0, "boxes": "coco AP50"},
}


def data_roots() -> list[Path]:
    """Folders searched for ``real:<name>`` data sets, in order."""
    roots = []
    if os.environ.get("MIRSTD_DATA"):
        roots.append(Path(os.environ["MIRSTD_DATA"]).expanduser())
    here = Path(__file__).resolve().parents[3]  # the source checkout (src/mirstd/data -> repo)
    for base in (Path.cwd(), here):
        roots += [base / "shared" / "data", base.parent / "shared" / "data"]
    out: list[Path] = []
    for r in roots:
        if r not in out:
            out.append(r)
    return out


def find_real(name: str) -> Path:
    """Path of real data set ``name`` (aliases allowed); FileNotFoundError listing where it looked."""
    name = ALIASES.get(name, name)
    for root in data_roots():
        if (root / name).is_dir():
            return root / name
    where = ", ".join(str(r) for r in data_roots())
    raise FileNotFoundError(f"real:{name}: no folder {name!r} in any data root ({where}); set MIRSTD_DATA")


def drone_ir_splits(ds: SequenceDataset) -> dict[str, list[str]]:
    groups: dict[tuple[str, str], list[str]] = {}
    for s in ds:
        key = (str(s.meta.get("class", "")), str(s.meta.get("distance_bin", "")))
        groups.setdefault(key, []).append(s.name)
    out: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for key in sorted(groups):
        for pos, name in enumerate(sorted(groups[key])):
            role = "test" if pos % 5 == 2 else "val" if pos % 5 == 4 else "train"
            out[role].append(name)
    for role in ("train", "val", "test"):
        out[role].sort()
        for dist in ("DISTANT", "MEDIUM", "CLOSE"):
            out[f"{role}_{dist.lower()}"] = [n for n in out[role] if ds[n].meta.get("distance_bin") == dist]
    return out


def apply_protocol(ds: SequenceDataset) -> SequenceDataset:
    """Add the named splits of a known real data set (by folder name) unless it defines its own."""
    if "train" in ds.splits:
        return ds
    name = ds.root.name if ds.root is not None else ds.name
    if name == "airground-real" and all(n in ds.sequences for v in AIRGROUND_SPLITS.values() for n in v):
        ds.splits.update({k: list(v) for k, v in AIRGROUND_SPLITS.items()})
    elif name == "drone-ir" and ds.format in ("videos", "drone-ir"):
        ds.splits.update(drone_ir_splits(ds))
    else:
        return ds
    short = {"airground-real": "airground", "drone-ir": "drone"}[name]
    for split in list(ds.splits):  # prefixed copies name one source inside a merged dataset
        ds.splits[f"{short}_{split}"] = list(ds.splits[split])
    ds.meta["protocol"] = {"name": name, **SCORING.get(name, {})}
    return ds


def load_real(name: str, **opts: Any) -> SequenceDataset:
    from mirstd.data.readers import load_dataset  # the reader registry imports this module

    return load_dataset(find_real(name), **opts)
