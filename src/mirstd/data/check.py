"""Dataset validation (``mirstd data check``) and summary statistics (``mirstd data info``)."""

from __future__ import annotations

from collections import Counter
from pathlib import Path
from typing import Any

import numpy as np

from mirstd.data.convert import mask_to_instances
from mirstd.data.findings import DataError, Finding
from mirstd.data.image import BitDepthError
from mirstd.data.probe import probe_ok
from mirstd.data.readers import load_dataset, verify
from mirstd.data.sequence import Sequence, SequenceDataset
from mirstd.utils.scr import frame_scr


def _frame_path(seq: Sequence, i: int) -> str:
    f = seq.frames[i]
    return str(getattr(f, "path", f)) if not callable(f) or hasattr(f, "path") else seq.frame_name(i)


def _label_where(seq: Sequence, i: int) -> tuple[str, int | None]:
    src = seq.labels[i].extra.get("source")
    return (src[0], src[1]) if src else (_frame_path(seq, i), None)


def check_sequence(seq: Sequence) -> list[Finding]:
    """Read every frame and mask; report unreadable files, size changes and labels off the image."""
    out: list[Finding] = []
    ref: tuple[int, int] | None = None
    for i in range(len(seq)):
        path = _frame_path(seq, i)
        try:
            shape = seq.load_frame(i).shape
        except BitDepthError as e:
            out.append(Finding(path, str(e).split(": ", 1)[-1], kind="mixed_bit_depth"))
            continue
        except Exception as e:  # noqa: BLE001 - every failure is reported, none stops the check
            out.append(Finding(path, f"unreadable frame ({e})", kind="unreadable"))
            continue
        if ref is None:
            ref = shape
        elif shape != ref:
            out.append(
                Finding(
                    path,
                    f"frame size {shape[0]}x{shape[1]} differs from the sequence's "
                    f"{ref[0]}x{ref[1]} (sequence {seq.name})",
                    kind="size_mismatch",
                )
            )
        try:
            m = seq.load_mask(i)
        except Exception as e:  # noqa: BLE001
            out.append(Finding(str(seq.masks[i]), f"unreadable mask ({e})", kind="unreadable"))
            m = None
        if m is not None and m.shape != shape:
            out.append(
                Finding(
                    str(seq.masks[i]),
                    f"mask size {m.shape[0]}x{m.shape[1]} differs from its frame {shape[0]}x{shape[1]}",
                    kind="size_mismatch",
                )
            )
        try:
            lab = seq.labels[i]
        except Exception as e:  # noqa: BLE001
            out.append(Finding(path, f"labels cannot be derived ({e})", kind="bad_label"))
            continue
        H, W = shape
        file, line = _label_where(seq, i)
        for b in lab.boxes if lab.has_boxes else []:
            if b[0] < 0 or b[1] < 0 or b[2] > W or b[3] > H:
                out.append(
                    Finding(
                        file,
                        f"box {[round(float(v), 2) for v in b]} of frame {seq.frame_name(i)} "
                        f"lies outside the {W}x{H} image",
                        line,
                        kind="box_outside",
                    )
                )
        for p in lab.points if lab.has_points else []:
            if p[0] < 0 or p[1] < 0 or p[0] > W - 1 or p[1] > H - 1:
                out.append(
                    Finding(
                        file,
                        f"point {[round(float(v), 2) for v in p]} of frame {seq.frame_name(i)} "
                        f"lies outside the {W}x{H} image",
                        line,
                        kind="point_outside",
                    )
                )
    return out


def check_dataset(
    path: str | Path, format: str = "auto", progress: bool = False, **opts: Any
) -> list[Finding]:
    """All findings: what the reader skipped or tolerated, plus a full read of every file."""
    try:
        ds = load_dataset(path, format=format, strict=False, **opts)
    except DataError as e:
        return list(e.findings)
    except (ValueError, FileNotFoundError, KeyError) as e:
        return [Finding(str(path), str(e), kind="unreadable")]
    findings = list(ds.findings)
    seqs = list(ds)
    it = seqs
    if progress:
        from tqdm import tqdm

        it = tqdm(seqs, desc="checking", unit="seq")
    for seq in it:
        findings += check_sequence(seq)
    findings += verify(ds)
    return findings


def dataset_info(ds: SequenceDataset, scr_frames: int = 200, progress: bool = False) -> dict[str, Any]:
    """Counts, sizes, targets per frame, target size statistics and (with masks) SCR statistics.

    SCR is ``mirstd.utils.scr.scr_clean`` per target on up to ``scr_frames`` evenly spaced masked
    frames (the number used is reported).
    """
    sizes: Counter = Counter()
    per_frame, widths, heights = [], [], []
    n_boxes = n_points = 0
    masked: list[tuple[Sequence, int]] = []
    seqs = list(ds)
    it = seqs
    if progress:
        from tqdm import tqdm

        it = tqdm(seqs, desc="scanning", unit="seq")
    for seq in it:
        size = seq.size
        if size is None and isinstance(seq.frames[0], Path):
            r = probe_ok(seq.frames[0])
            size = (r[0], r[1]) if r else None
        if size is None:
            size = seq.load_frame(0).shape
        sizes[f"{size[0]}x{size[1]}"] += len(seq)
        for i, lab in enumerate(seq.labels):
            per_frame.append(lab.num_targets)
            if lab.has_boxes and len(lab.boxes):
                n_boxes += len(lab.boxes)
                widths += (lab.boxes[:, 2] - lab.boxes[:, 0]).tolist()
                heights += (lab.boxes[:, 3] - lab.boxes[:, 1]).tolist()
            if lab.has_points:
                n_points += len(lab.points)
            if seq.masks is not None and seq.masks[i] is not None:
                masked.append((seq, i))
    pf = np.asarray(per_frame, np.float64)
    info: dict[str, Any] = {
        "name": ds.name,
        "format": ds.format,
        "root": str(ds.root) if ds.root else None,
        "sequences": len(ds),
        "frames": ds.num_frames,
        "frames_per_sequence": {"min": min(len(s) for s in seqs), "max": max(len(s) for s in seqs)},
        "sizes": dict(sizes),
        "bit_depths": dict(Counter(str(s.bit_depth) for s in seqs)),
        "splits": {k: len(v) for k, v in ds.splits.items()},
        "targets_per_frame": {
            "mean": float(pf.mean()),
            "min": int(pf.min()),
            "max": int(pf.max()),
            "frames_without_targets": int((pf == 0).sum()),
        },
        "boxes": n_boxes,
        "points": n_points,
    }
    if widths:
        w, h = np.asarray(widths), np.asarray(heights)
        info["box_size"] = {
            k: {"min": float(v.min()), "median": float(np.median(v)), "max": float(v.max())}
            for k, v in (("width", w), ("height", h))
        }
    if masked:
        info["scr"] = _scr_stats(masked, scr_frames)
    if ds.findings:
        info["reader_findings"] = len(ds.findings)
    return info


def _scr_stats(masked: list[tuple[Sequence, int]], n: int) -> dict[str, Any]:
    pick = np.unique(np.linspace(0, len(masked) - 1, min(n, len(masked))).round().astype(int))
    vals: list[float] = []
    for k in pick:
        seq, i = masked[k]
        inst, _ = mask_to_instances(seq.load_mask(i))
        vals += frame_scr(seq.load_frame(i), inst)
    v = np.asarray(vals, np.float64)
    if not len(v):
        return {"frames_used": int(len(pick)), "targets": 0}
    return {
        "frames_used": int(len(pick)),
        "targets": int(len(v)),
        "convention": "scr_clean",
        "mean": float(v.mean()),
        "median": float(np.median(v)),
        "min": float(v.min()),
        "max": float(v.max()),
        "fraction_below_3": float((v < 3).mean()),
    }
