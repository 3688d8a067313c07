"""Real infrared frames as backgrounds (spec ``synth.md`` §2.2, "user frames").

A folder is searched recursively. Images in one directory are either **one sequence** (sorted by
name: the directory has a TensorISTD label file, or its first two frames are the same scene —
normalised correlation > 0.8) or **stills** (unrelated target-free frames, e.g. ``ir-backgrounds``).

- A still becomes the scene canvas of a procedural-style sequence: a random crop (random flips,
  scaled up by 1-1.3x, never below the canvas size), the camera moves over it with the ego-motion
  model (pan, jitter, slow rotation and zoom) and the full synthetic sensor model is added on top
  (vignetting, gain/offset non-uniformity, stripes, noise, PSF, bad pixels): sim-to-real domain
  randomisation on a real scene.
- A sequence already holds sensor noise, non-uniformity and its platform's motion, so the synthetic
  sensor layer is off for it (optional extra temporal noise, ``sensor.real_noise``) and there is no
  ego warp (synthetic targets move in frame coordinates).

Either way targets are rendered at the requested SCR measured on the real background (the solve of
``mirstd.synth.render`` runs on the exposed real frames), so the SCR guarantee holds.

**Labelled real datasets and videos.** ``backgrounds`` may also name a data set mirstd reads — a
named real data set (``real:drone-ir``, ``real:airground``) or a videos layout
(``<root>/videos/*.mp4`` + ``labels/*.csv``). Its sequences are moving real
backgrounds (video frames decoded lazily through the reader's cache); only its ``train`` split is
used when it has one (``background_split`` picks another), so the scenes of validation and test
sequences never appear in synthetic training data.

**Real targets are excluded, not relabelled.** When a source has known target points — a TensorISTD
layout ``<root>/anno/<dir name>.txt`` (1-based ``x y`` per frame, e.g. airground-real), or the
boxes / points of a labelled data set — the crop window is chosen so that every real target (point
or box) of the clip lies at least ``exclusion`` px outside it. A real target without a mask cannot get a trustworthy mask/box/SCR, so it is cropped
away rather than labelled. Frames with unknown real targets must be target-free (user's duty).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.data.image import IMAGE_SUFFIXES, read_frame


@dataclass(frozen=True)
class RealSource:
    name: str
    frames: tuple[Path, ...]
    points: np.ndarray | None  # (n_frames, 2) 0-based (x, y) of the real target, or None
    still: bool = False  # one target-free still image (camera moved over it), not a sequence
    seq: Any = None  # a mirstd Sequence of a labelled data set (frames and targets from its reader)

    def __len__(self) -> int:
        return len(self.seq) if self.seq is not None else len(self.frames)

    def frame(self, i: int) -> np.ndarray:
        """Frame ``i`` in nominal 8-bit DN (float64)."""
        if self.seq is None:
            return _load(self.frames[i])
        depth = int(self.seq.bit_depth or 8)
        return self.seq.load_frame(i).astype(np.float64) * (255.0 / (2**depth - 1) if depth != 8 else 1.0)

    def shape(self) -> tuple[int, int]:
        """(H, W) of the frames, without decoding a video when its reader knows the size."""
        if self.seq is not None and self.seq.size:
            return int(self.seq.size[0]), int(self.seq.size[1])
        return self.frame(0).shape  # type: ignore[return-value]

    def targets(self, i: int) -> np.ndarray:
        """Known real targets of frame ``i`` as (k, 4) boxes x1, y1, x2, y2 (points: zero-size boxes)."""
        if self.seq is None:
            if self.points is None:
                return np.zeros((0, 4))
            x, y = self.points[i]
            return np.array([[x, y, x, y]])
        lab = self.seq.labels[i]
        pts = np.asarray(lab.points, np.float64).reshape(-1, 2)
        return np.concatenate([np.asarray(lab.boxes, np.float64).reshape(-1, 4), np.hstack([pts, pts])])


def _anno_for(root: Path, seq_dir: Path, n: int) -> np.ndarray | None:
    cand = root / "anno" / f"{seq_dir.name}.txt"
    if not cand.is_file():
        return None
    rows = [ln.split() for ln in cand.read_text().splitlines() if ln.strip()]
    try:
        pts = np.array([[float(r[0]) - 1.0, float(r[1]) - 1.0] for r in rows])
    except (ValueError, IndexError) as e:
        raise ValueError(f"{cand}: expected 'x y' per line ({e})") from e
    if len(pts) < n:
        raise ValueError(f"{cand}: {len(pts)} points but {n} frames in {seq_dir}")
    return pts[:n]


def _dataset_sources(path: str, split: str | None) -> tuple[RealSource, ...] | None:
    """Sources of a data set a reader detects (or a named ``real:`` one); None for a plain folder."""
    from mirstd.data.readers import load_dataset, videos

    # Image folders keep the directory rules above (a TensorISTD tree such as airground-real included);
    # only named real data sets and video layouts go through their reader.
    if not path.startswith("real:") and not videos.detect(Path(path)):
        return None
    ds = load_dataset(path)
    if split is None and "train" in ds.splits:
        split = "train"  # never the val / test scenes in synthetic training data
    try:
        seqs = ds.split(split)
    except KeyError as e:
        raise ValueError(f"synth key 'background_split': {e}") from e
    if not seqs:
        raise ValueError(f"synth key 'backgrounds': {path} (split {split}) holds no sequences")
    return tuple(RealSource(s.name, (), None, seq=s) for s in seqs)


@lru_cache(maxsize=8)
def scan_folder(path: str, split: str | None = None) -> tuple[RealSource, ...]:
    found = _dataset_sources(str(path), split)
    if found is not None:
        return found
    root = Path(path)
    if not root.is_dir():
        raise FileNotFoundError(f"synth key 'backgrounds': {root} is not a folder of IR frames")
    groups: dict[Path, list[Path]] = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file():
            groups.setdefault(p.parent, []).append(p)
    if not groups:
        raise FileNotFoundError(f"synth key 'backgrounds': no image files under {root}")
    out: list[RealSource] = []
    for d, fs in sorted(groups.items()):
        name = str(d.relative_to(root)) if d != root else d.name
        pts = _anno_for(root, d, len(fs))
        if pts is not None or _same_scene(fs):
            out.append(RealSource(name, tuple(fs), pts))
        else:
            out += [RealSource(f"{name}/{f.name}", (f,), None, still=True) for f in fs]
    return tuple(out)


def _same_scene(frames: list[Path]) -> bool:
    """Whether a directory's images are one sequence: its first two frames correlate (> 0.8)."""
    if len(frames) < 2:
        return False
    a, b = _load(frames[0]), _load(frames[1])
    if a.shape != b.shape:
        return False
    a, b = a - a.mean(), b - b.mean()
    den = float(np.sqrt((a * a).sum() * (b * b).sum()))
    return den > 0 and float((a * b).sum()) / den > 0.8


def has_kind(path: str, still: bool, split: str | None = None) -> bool:
    return any(s.still == still for s in scan_folder(str(path), split))


def real_canvas(path: str, rng: np.random.Generator, size: tuple[int, int]) -> tuple[np.ndarray, dict]:
    """A (h, w) scene canvas in nominal 8-bit DN cut from a random still of ``path`` (see module doc)."""
    import cv2

    stills = [s for s in scan_folder(str(path)) if s.still]
    if not stills:
        raise ValueError(f"synth: {path} holds no still images (only sequences)")
    src = stills[int(rng.integers(len(stills)))]
    img = _load(src.frames[0])
    if rng.random() < 0.5:
        img = img[:, ::-1]
    h, w = size
    scale = max(h / img.shape[0], w / img.shape[1], 1.0) * float(rng.uniform(1.0, 1.3))
    if scale != 1.0:
        nh, nw = max(h, round(img.shape[0] * scale)), max(w, round(img.shape[1] * scale))
        img = cv2.resize(np.ascontiguousarray(img), (nw, nh), interpolation=cv2.INTER_LINEAR)
    oy, ox = int(rng.integers(img.shape[0] - h + 1)), int(rng.integers(img.shape[1] - w + 1))
    canvas = np.ascontiguousarray(img[oy : oy + h, ox : ox + w], dtype=np.float64)
    return canvas, {"source": src.name, "still": True, "scale": round(scale, 4), "crop_yx": [oy, ox]}


@lru_cache(maxsize=4096)
def _load(p: Path) -> np.ndarray:
    img, depth = read_frame(p)
    scale = 1.0 if depth in (8, 0) else 255.0 / (2**depth - 1)  # nominal 8-bit DN
    return img.astype(np.float64) * scale


def _near_window(boxes: np.ndarray, oy: int, ox: int, h: int, w: int, exclusion: int) -> bool:
    """Whether any box (x1, y1, x2, y2) comes within ``exclusion`` px of the crop window."""
    if not len(boxes):
        return False
    return bool(
        np.any(
            (boxes[:, 0] < ox + w - 1 + exclusion)
            & (boxes[:, 2] > ox - exclusion)
            & (boxes[:, 1] < oy + h - 1 + exclusion)
            & (boxes[:, 3] > oy - exclusion)
        )
    )


def real_clip(
    path: str,
    rng: np.random.Generator,
    num_frames: int,
    size: tuple[int, int],
    exclusion: int = 12,
    split: str | None = None,
) -> tuple[np.ndarray, dict]:
    """(T, H, W) frames cropped from a real source, real targets kept ≥ ``exclusion`` px outside."""
    sources = [s for s in scan_folder(str(path), split) if not s.still]
    if not sources:
        raise ValueError(f"synth: {path} holds no real sequences (only stills)")
    h, w = size
    for _ in range(50):
        src = sources[int(rng.integers(len(sources)))]
        n = len(src)
        start = int(rng.integers(n))
        idx = [_pingpong(start + t, n) for t in range(num_frames)]
        fh, fw = src.shape()
        if fh < h or fw < w:
            raise ValueError(f"synth: real frames of {src.name} are {fh}x{fw}, smaller than size={h}x{w}")
        oy, ox = int(rng.integers(fh - h + 1)), int(rng.integers(fw - w + 1))
        labelled = src.points is not None or src.seq is not None
        # targets first: a rejected window costs no decoding
        if labelled and any(_near_window(src.targets(i), oy, ox, h, w, exclusion) for i in idx):
            continue
        frames = np.stack([src.frame(i)[oy : oy + h, ox : ox + w] for i in idx])
        return frames, {
            "source": src.name,
            "start": start,
            "crop_yx": [oy, ox],
            "real_target_excluded": labelled,
        }
    raise ValueError(
        f"synth: no crop of {h}x{w} keeps the known real targets of {path} at least {exclusion} px outside; use a smaller size"
    )


def _pingpong(i: int, n: int) -> int:
    if n == 1:
        return 0
    period = 2 * (n - 1)
    i %= period
    return i if i < n else period - i
