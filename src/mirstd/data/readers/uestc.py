"""UESTC-nnLab box lists for DAUB, IRDST and ITSDT-15K (datasets.md §1).

One line per annotated frame: ``<path>/<seq>/<idx>.bmp x1,y1,x2,y2,cls x1,y1,x2,y2,cls ...``
(whitespace separated, integer corners whose difference is the COCO width: edge boxes; a frame without
targets is the path alone). Frames of a sequence are ordered by their numeric stem (0-based,
consecutive); a gap is a finding. Sequences are named by their parent folder (``data5``, ``41``).

Splits: the ``train`` list -> ``train_all``; the ``val`` list is the test split -> ``test``. A
validation split is carved from the training *sequences* (never frames): ``val_sequences=[...]`` or
``val_fraction`` (default 0.1, at least one sequence, seeded) -> ``val``; ``train`` = the rest.

Paths in the lists are absolute on the authors' machines (``/home/public/...``; Windows paths in
``new_coco_val_ITSDT.txt``). ``root_remap={"/home/public/ITSDT": "/data/ITSDT"}`` rewrites prefixes;
otherwise a missing file is looked up under ``root`` (default: the list's folder) from its last
``images/`` component on. The lab loaders repeat frame 0 at sequence starts (``clip_pad: repeat``).
"""

from __future__ import annotations

import re
from pathlib import Path, PurePosixPath

import numpy as np

from mirstd.data.findings import Collector
from mirstd.data.readers._common import natural_key, probe_sequence
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.utils.io import atomic_write_text

NAME = "uestc"
FORMATS = {"uestc": {}, "uestc_list": {}}
_BOX = re.compile(r"^-?\d+(\.\d+)?(,-?\d+(\.\d+)?){3,4}$")
IMAGENET_NORM = (0.485, 0.229)  # grey approximation used by the UESTC detectors (R channel mean/std)


def _is_list(p: Path) -> bool:
    if p.suffix != ".txt" or not p.is_file():
        return False
    with open(p, errors="replace") as f:
        for ln in f:
            parts = ln.split()
            if parts:
                return Path(parts[0].replace("\\", "/")).suffix.lower() in (
                    ".bmp",
                    ".png",
                    ".jpg",
                    ".tif",
                    ".tiff",
                ) and all(_BOX.match(t) for t in parts[1:])
    return False


def _lists_in(d: Path) -> list[Path]:
    return sorted(
        p
        for p in d.glob("*.txt")
        if ("train" in p.name or "val" in p.name or "test" in p.name) and _is_list(p)
    )


def detect(path: Path) -> bool:
    return _is_list(path) or (path.is_dir() and bool(_lists_in(path)))


def _resolve(raw: str, list_path: Path, root: Path, remap: list[tuple[str, str]]) -> Path:
    s = raw.replace("\\", "/")
    for src, dst in remap:
        if s.startswith(src):
            s = dst.rstrip("/") + s[len(src) :]
            break
    p = Path(s) if PurePosixPath(s).is_absolute() or re.match(r"^[A-Za-z]:/", s) else list_path.parent / s
    if p.is_file():
        return p
    parts = PurePosixPath(s).parts
    if "images" in parts:
        k = len(parts) - 1 - parts[::-1].index("images")
        alt = root.joinpath(*parts[k:])
        if alt.is_file():
            return alt
    return p


def parse_list(list_path: Path, col: Collector, root: Path, remap: list[tuple[str, str]]):
    """Yield ``(lineno, frame_path, FrameLabels)`` for each valid line."""
    for lineno, ln in enumerate(list_path.read_text(errors="replace").splitlines(), 1):
        parts = ln.split()
        if not parts:
            continue
        frame = _resolve(parts[0], list_path, root, remap)
        boxes, extras, ok = [], [], True
        for tok in parts[1:]:
            try:
                vals = [float(v) for v in tok.split(",")]
                if len(vals) not in (4, 5):
                    raise ValueError
            except ValueError:
                col.error(
                    list_path,
                    f"cannot parse box {tok!r} (expected x1,y1,x2,y2,cls)",
                    lineno,
                    kind="bad_label",
                )
                ok = False
                continue
            if vals[2] <= vals[0] or vals[3] <= vals[1]:
                col.error(list_path, f"empty box {tok!r} (x2 <= x1 or y2 <= y1)", lineno, kind="bad_box")
                ok = False
                continue
            boxes.append(vals[:4])
            extras.append({"cls": int(vals[4]) if len(vals) == 5 else 0})
        if not frame.is_file():
            col.error(
                list_path,
                f"frame file {parts[0]} not found (looked at {frame}); use root_remap=",
                lineno,
                kind="missing_frame",
            )
            continue
        extra = {"source": (str(list_path), lineno)}
        if extras:
            extra["targets"] = extras
        yield (
            lineno,
            frame,
            FrameLabels(boxes=np.asarray(boxes, np.float32).reshape(-1, 4), has_boxes=True, extra=extra),
            ok,
        )


def read(
    path: Path,
    col: Collector,
    root: str | Path | None = None,
    root_remap: dict[str, str] | None = None,
    train_list: str | Path | None = None,
    test_list: str | Path | None = None,
    val_fraction: float = 0.1,
    val_sequences: list[str] | None = None,
    seed: int = 0,
) -> SequenceDataset:
    if path.is_dir():
        lists = _lists_in(path)
        if not lists and not (train_list or test_list):
            raise FileNotFoundError(f"{path}: no UESTC list files (coco_train_*.txt / coco_val_*.txt) found")
        base = path
    else:
        lists, base = [path], path.parent
    chosen: dict[str, list[Path]] = {"train_all": [], "test": []}
    if train_list or test_list:
        lists = []
        if train_list:
            chosen["train_all"].append(Path(train_list))
        if test_list:
            chosen["test"].append(Path(test_list))
    for lp in lists:
        chosen["train_all" if "train" in lp.name else "test"].append(lp)
    root = Path(root) if root else base
    remap = sorted(
        ((k.replace("\\", "/"), str(v)) for k, v in (root_remap or {}).items()), key=lambda kv: -len(kv[0])
    )
    frames_by_dir: dict[Path, dict[str, tuple[Path, FrameLabels, str, int]]] = {}
    split_dirs: dict[str, list[Path]] = {"train_all": [], "test": []}
    for split, lps in chosen.items():
        for lp in lps:
            if not lp.is_file():
                raise FileNotFoundError(f"{lp}: list file not found")
            for lineno, frame, lab, _ in parse_list(lp, col, root, remap):
                d = frame.parent
                fr = frames_by_dir.setdefault(d, {})
                if frame.name in fr:
                    col.error(
                        lp,
                        f"frame {frame.name} of {d.name} listed twice (first at {fr[frame.name][2]}:"
                        f"{fr[frame.name][3]})",
                        lineno,
                        kind="duplicate",
                    )
                    continue
                fr[frame.name] = (frame, lab, str(lp), lineno)
                if d not in split_dirs[split]:
                    split_dirs[split].append(d)
    # name sequences by their folder; disambiguate with the parent folder when names collide
    base_names = [d.name for d in frames_by_dir]
    names = {
        d: (d.name if base_names.count(d.name) == 1 else f"{d.parent.name}__{d.name}") for d in frames_by_dir
    }
    seqs: dict[str, Sequence] = {}
    for d, fr in sorted(frames_by_dir.items(), key=lambda kv: natural_key(names[kv[0]])):
        items = sorted(fr.values(), key=lambda t: natural_key(t[0].name))
        nums = [int(t[0].stem) for t in items if t[0].stem.isdigit()]
        if len(nums) == len(items):
            have = set(nums)
            for k in range(nums[0], nums[-1] + 1):
                if k not in have:
                    col.error(
                        items[0][2],
                        f"sequence {names[d]}: frame {k}{items[0][0].suffix} is not listed "
                        f"(gap between frames {nums[0]} and {nums[-1]})",
                        kind="missing_frame",
                    )
        frames = [t[0] for t in items]
        size, bd = probe_sequence(frames, col)
        seqs[names[d]] = Sequence(
            names[d], frames, [t[1] for t in items], None, "semantic", bd, size, None, {"folder": str(d)}
        )
    splits = {k: [names[d] for d in v] for k, v in split_dirs.items() if v}
    train_all = splits.get("train_all", [])
    if train_all:
        val = _carve(train_all, val_fraction, val_sequences, seed)
        splits["val"] = val
        splits["train"] = [n for n in train_all if n not in set(val)]
    return SequenceDataset(
        seqs,
        splits,
        (path if path.is_dir() else path.parent).name,
        base,
        NAME,
        IMAGENET_NORM,
        {"clip_pad": "repeat", "val_split": {"fraction": val_fraction, "seed": seed}},
    )


def _carve(names: list[str], fraction: float, explicit: list[str] | None, seed: int) -> list[str]:
    """Validation sequences: the explicit list, or a seeded ``fraction`` of the training sequences."""
    if explicit is not None:
        unknown = [n for n in explicit if n not in names]
        if unknown:
            raise ValueError(f"val_sequences {unknown} are not training sequences ({names})")
        return list(explicit)
    if fraction <= 0 or len(names) < 2:
        return []
    k = min(max(1, int(round(fraction * len(names)))), len(names) - 1)
    idx = np.random.default_rng(seed).choice(len(names), size=k, replace=False)
    return [names[i] for i in sorted(idx)]


def write_list(dataset: SequenceDataset, path: str | Path, split: str | None = None) -> Path:
    """Write a UESTC list (absolute frame paths, ``x1,y1,x2,y2,0`` rounded integer boxes)."""
    lines = []
    for seq in dataset.split(split):
        for i, f in enumerate(seq.frames):
            if not isinstance(f, Path):
                raise ValueError(f"sequence {seq.name}: frames are in memory; write the native layout first")
            b = seq.labels[i].boxes
            toks = [
                f"{int(round(x1))},{int(round(y1))},{int(round(x2))},{int(round(y2))},0"
                for x1, y1, x2, y2 in b
            ]
            lines.append(" ".join([str(Path(f).resolve()), *toks]))
    return atomic_write_text(path, "\n".join(lines) + "\n")
