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

**Real targets are excluded, not relabelled.** When a source has known target points — a TensorISTD
layout ``<root>/anno/<dir name>.txt`` (1-based ``x y`` per frame, e.g. airground-real) — the crop
window is chosen so that every real target position of the clip lies at least ``exclusion`` px
outside it. A real target without a mask cannot get a trustworthy mask/box/SCR, so it is cropped
away rather than labelled. Frames with unknown real targets must be target-free (user's duty).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from mirstd.data.image import IMAGE_SUFFIXES, read_frame


@dataclass(frozen=True)
class RealSource:
    name: str
    frames: tuple[Path, ...]
    points: np.ndarray | None  # (n_frames, 2) 0-based (x, y) of the real target, or None
    still: bool = False  # one target-free still image (camera moved over it), not a sequence


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


@lru_cache(maxsize=8)
def scan_folder(path: str) -> tuple[RealSource, ...]:
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


def has_kind(path: str, still: bool) -> bool:
    return any(s.still == still for s in scan_folder(str(path)))


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


def real_clip(
    path: str, rng: np.random.Generator, num_frames: int, size: tuple[int, int], exclusion: int = 12
) -> tuple[np.ndarray, dict]:
    """(T, H, W) frames cropped from a real source, real targets kept ≥ ``exclusion`` px outside."""
    sources = [s for s in scan_folder(str(path)) if not s.still]
    if not sources:
        raise ValueError(f"synth: {path} holds no real sequences (only stills)")
    h, w = size
    for _ in range(50):
        src = sources[int(rng.integers(len(sources)))]
        n = len(src.frames)
        start = int(rng.integers(n))
        idx = [_pingpong(start + t, n) for t in range(num_frames)]
        fh, fw = _load(src.frames[idx[0]]).shape
        if fh < h or fw < w:
            raise ValueError(f"synth: real frames of {src.name} are {fh}x{fw}, smaller than size={h}x{w}")
        oy, ox = int(rng.integers(fh - h + 1)), int(rng.integers(fw - w + 1))
        if src.points is not None:
            pts = src.points[idx]
            inside = (
                (pts[:, 0] > ox - exclusion)
                & (pts[:, 0] < ox + w - 1 + exclusion)
                & (pts[:, 1] > oy - exclusion)
                & (pts[:, 1] < oy + h - 1 + exclusion)
            )
            if inside.any():
                continue
        frames = np.stack([_load(src.frames[i])[oy : oy + h, ox : ox + w] for i in idx])
        return frames, {
            "source": src.name,
            "start": start,
            "crop_yx": [oy, ox],
            "real_target_excluded": src.points is not None,
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
