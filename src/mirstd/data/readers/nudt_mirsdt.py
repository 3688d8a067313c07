"""NUDT-MIRSDT (DTUM layout, datasets.md §2).

``<root>/SequenceK/Mix/NNNNN.mat`` (MATLAB v5, key ``Mix`` = frame stack (T_k, H, W), last slice = the
current frame), ``SequenceK/masks/NNNNN.png`` (0/255), ``SequenceK/masks_centroid/NNNNN.png`` (centroid
pixels = point labels), lists ``train.txt`` / ``test.txt`` with lines ``SequenceK/Mix/NNNNN.mat``.
Splits are by sequence: ``train``, ``test`` and DTUM's subsets ``test_low`` (SNR <= 3:
{47, 56, 59, 76, 92, 101, 105, 119}) and ``test_high`` (the other 12 test sequences). The history
that DTUM stores inside each ``.mat`` is available via ``MatSequence.load_history`` (ClipDataset uses
it with ``pad="source"``). Normalisation (x - 105.4025) / 26.6452 on raw values.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from mirstd.data.convert import LazyLabels
from mirstd.data.findings import Collector
from mirstd.data.image import read_mask
from mirstd.data.readers._common import check_consecutive, mask_labels, natural_key, read_split_list
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset

NAME = "nudt_mirsdt"
LOW_SNR = {47, 56, 59, 76, 92, 101, 105, 119}
HIGH_SNR = {85, 86, 87, 88, 89, 90, 91, 93, 94, 95, 96, 97}
NORM_RAW = (105.4025, 26.6452)


def load_mix(path: Path) -> np.ndarray:
    """The ``Mix`` stack (T, H, W) of one .mat file; a clear error naming the file otherwise."""
    from scipy.io import loadmat

    try:
        doc = loadmat(str(path))
    except Exception as e:  # noqa: BLE001 - any SciPy parse failure is a read error for the user
        raise ValueError(f"{path}: cannot read MATLAB file ({e})") from e
    if "Mix" not in doc:
        keys = [k for k in doc if not k.startswith("__")]
        raise ValueError(f"{path}: no key 'Mix' in the .mat file (keys: {keys})")
    mix = np.asarray(doc["Mix"])
    if mix.ndim == 2:
        mix = mix[None]
    if mix.ndim != 3:
        raise ValueError(f"{path}: 'Mix' has shape {mix.shape}, expected (T, H, W)")
    if mix.shape[0] > mix.shape[2] and mix.shape[2] <= 16:  # stored (H, W, T) by MATLAB
        mix = np.moveaxis(mix, 2, 0)
    return mix


class MatSequence(Sequence):
    """A sequence whose frames are the last slices of per-frame ``Mix`` stacks."""

    def load_history(self, i: int, num_frames: int) -> np.ndarray:
        """``(num_frames, H, W)`` float32, oldest first, from frame ``i``'s own stack (DTUM's ``Mix[-T:]``).

        Stacks shorter than ``num_frames`` repeat their first slice.
        """
        mix = load_mix(self.frames[i].path)  # type: ignore[union-attr]
        idx = np.clip(np.arange(len(mix) - num_frames, len(mix)), 0, None)
        return mix[idx].astype(np.float32)


class _MatFrame:
    def __init__(self, path: Path):
        self.path = path

    def __call__(self) -> np.ndarray:
        return load_mix(self.path)[-1].astype(np.float32)

    def __repr__(self) -> str:
        return f"MatFrame({self.path})"


def _centroid_labels(files: list[Path]):
    """Point labels from ``masks_centroid`` PNGs: every non-zero pixel is one target centre."""

    def fn(i: int) -> FrameLabels:
        if not files[i].is_file():
            return FrameLabels()
        rr, cc = np.nonzero(read_mask(files[i]))
        return FrameLabels(points=np.stack([cc, rr], 1).astype(np.float32), has_points=True)

    return LazyLabels(len(files), fn)


def detect(path: Path) -> bool:
    return path.is_dir() and any((d / "Mix").is_dir() for d in path.iterdir() if d.is_dir())


def _seq_num(name: str) -> int | None:
    digits = "".join(c for c in name if c.isdigit())
    return int(digits) if digits else None


def read(path: Path, col: Collector) -> SequenceDataset:
    seqs: dict[str, Sequence] = {}
    for d in sorted((p for p in path.iterdir() if (p / "Mix").is_dir()), key=natural_key):
        mats = sorted((d / "Mix").glob("*.mat"), key=natural_key)
        if not mats:
            col.error(d / "Mix", "no .mat frames", kind="empty_sequence")
            continue
        check_consecutive(mats, col, d / "Mix")
        masks = [d / "masks" / f"{m.stem}.png" for m in mats]
        if (d / "masks").is_dir():
            for m in masks:
                if not m.is_file():
                    col.error(m, "mask missing", kind="missing_mask")
            masks_or_none: list[Path | None] | None = [m if m.is_file() else None for m in masks]
            labels = mask_labels(masks_or_none)
        else:
            masks_or_none, labels = None, [FrameLabels() for _ in mats]
        cents = d / "masks_centroid"
        if masks_or_none is None and cents.is_dir():
            labels = _centroid_labels([cents / f"{m.stem}.png" for m in mats])
        size = None
        try:
            mix = load_mix(mats[0])
            bit_depth, size = (8 if mix.max() <= 255 else 16), tuple(int(v) for v in mix.shape[1:])
        except ValueError as e:
            col.error(mats[0], str(e).split(": ", 1)[-1], kind="unreadable")
            bit_depth = 8
        seqs[d.name] = MatSequence(
            d.name,
            [_MatFrame(m) for m in mats],
            labels,
            masks_or_none,
            "semantic",
            bit_depth,
            size,
            [m.stem for m in mats],
            {},
        )
    splits: dict[str, list[str]] = {}
    for split in ("train", "test"):
        sf = path / f"{split}.txt"
        if not sf.is_file():
            continue
        names: list[str] = []
        for lineno, ln in read_split_list(sf, col):
            f = path / ln.replace("\\", "/")
            seq = Path(ln.replace("\\", "/")).parts[0]
            if not f.is_file():
                col.error(sf, f"names {ln!r}, which does not exist", lineno, kind="split_missing")
            elif seq not in names:
                names.append(seq)
        splits[split] = names
    if "test" in splits:
        splits["test_low"] = [n for n in splits["test"] if _seq_num(n) in LOW_SNR]
        splits["test_high"] = [n for n in splits["test"] if _seq_num(n) in HIGH_SNR]
    norm = (NORM_RAW[0] / 255.0, NORM_RAW[1] / 255.0)
    return SequenceDataset(
        seqs, splits, path.name, path, NAME, norm, {"clip_pad": "source", "norm_raw": list(NORM_RAW)}
    )
