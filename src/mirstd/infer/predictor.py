"""Streaming inference: a rolling buffer of the last T frames, so any sequence length works frame by frame.

Clips follow the training data: frames ``t-T+1 .. t`` oldest first, current last, scaled to [0, 1] by
``2**bit_depth - 1``, grey replicated to the model's ``in_channels``; before frame ``T-1`` the clip is
padded by repeating the first frame (``pad="repeat"``) or with zeros (``pad="zeros"``). Frames are
zero-padded at the bottom/right to a multiple of ``model.size_divisor`` and outputs cropped back, so
boxes stay in the frame's own pixel grid (edge boxes, docs/design.md).
"""

from __future__ import annotations

import collections
import csv
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

IMAGE_EXTS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
CSV_FIELDS = ["sequence", "frame", "x", "y", "x1", "y1", "x2", "y2", "score"]


@torch.no_grad()
def infer_clip(model: nn.Module, clip: torch.Tensor) -> list[dict[str, np.ndarray | None]]:
    """Run ``model.predict`` on clips ``(B, C, T, H, W)`` of equal size; pad to ``size_divisor``, crop back.

    Returns per sample ``{"scores": HxW float32 or None, "boxes": Nx5 (edge box, score) or None}``.
    """
    h, w = clip.shape[-2:]
    div = int(getattr(model, "size_divisor", 1) or 1)
    ph, pw = (-h) % div, (-w) % div
    x = F.pad(clip, (0, pw, 0, ph)) if (ph or pw) else clip
    out = model.predict(x)
    scores, boxes = out.get("scores"), out.get("boxes")
    res = []
    for b in range(clip.shape[0]):
        s = None if scores is None else scores[b, 0, :h, :w].float().cpu().numpy()
        bx = None
        if boxes is not None:
            t = boxes[b].float().cpu()
            t = t[:, :5].clone()
            t[:, 0:4:2] = t[:, 0:4:2].clamp(0, w)
            t[:, 1:4:2] = t[:, 1:4:2].clamp(0, h)
            bx = t.numpy()
        res.append({"scores": s, "boxes": bx})
    return res


def targets_from_scores(prob: np.ndarray, conf: float) -> np.ndarray:
    """Connected components (8-connected) of ``prob >= conf`` as rows ``x, y, x1, y1, x2, y2, score``.

    ``(x, y)`` is the component centroid, the box its edge box, the score its peak probability.
    """
    import cv2

    binary = (prob >= conf).astype(np.uint8)
    n, lab, stats, cent = cv2.connectedComponentsWithStats(binary, connectivity=8)
    rows = []
    for k in range(1, n):
        x1, y1, bw, bh = (int(v) for v in stats[k, :4])
        rows.append([cent[k, 0], cent[k, 1], x1, y1, x1 + bw, y1 + bh, float(prob[lab == k].max())])
    return np.asarray(rows, dtype=np.float32).reshape(-1, 7)


def targets_from_boxes(boxes: np.ndarray, conf: float) -> np.ndarray:
    """Boxes ``(N, 5)`` with score ≥ ``conf`` as rows ``x, y, x1, y1, x2, y2, score`` (point = box centre)."""
    b = boxes[boxes[:, 4] >= conf]
    cx, cy = (b[:, 0] + b[:, 2]) / 2 - 0.5, (b[:, 1] + b[:, 3]) / 2 - 0.5
    return np.concatenate([cx[:, None], cy[:, None], b[:, :5]], axis=1).astype(np.float32).reshape(-1, 7)


class Predictor:
    """Frame-by-frame predictor for a checkpoint path or a model instance.

    >>> p = Predictor("runs/segment/exp/weights/best.pt")
    >>> for r in p.predict_sequence(seq): r["targets"]  # rows x, y, x1, y1, x2, y2, score
    """

    def __init__(
        self,
        weights: str | Path | nn.Module,
        device: str | torch.device | None = None,
        frames: int | None = None,
        pad: str | None = None,
        conf: float = 0.5,
    ) -> None:
        self.device = torch.device(device or ("cuda" if torch.cuda.is_available() else "cpu"))
        cfg: dict[str, Any] = {}
        if isinstance(weights, nn.Module):
            self.model = weights.to(self.device).eval()
        else:
            from mirstd.engine.checkpoint import model_from_checkpoint

            self.model, ckpt = model_from_checkpoint(weights, self.device)
            cfg = ckpt.get("config") or {}
        self.frames = int(frames or cfg.get("frames") or getattr(self.model, "num_frames", 5))
        self.pad = str(pad or cfg.get("pad") or "repeat")
        if self.pad in ("skip", "source"):  # no stored history when streaming: repeat the first frame
            self.pad = "repeat"
        if self.pad not in ("repeat", "zeros"):
            raise ValueError(f"pad={self.pad!r}: choose repeat or zeros")
        self.conf = float(conf)
        self.task = str(getattr(self.model, "task", "segment"))
        self.channels = int(getattr(self.model, "in_channels", 1))
        self.reset()

    def reset(self) -> None:
        """Forget the buffered frames (call between sequences)."""
        self._buf: collections.deque[torch.Tensor] = collections.deque(maxlen=self.frames)

    def step(self, frame: np.ndarray) -> dict[str, Any]:
        """Push one frame (H, W float in [0, 1]) and predict it from the last T frames."""
        f = torch.as_tensor(np.asarray(frame, dtype=np.float32))
        if f.ndim != 2:
            raise ValueError(f"expected a single-channel (H, W) frame, got shape {tuple(f.shape)}")
        if not self._buf:
            first = f if self.pad == "repeat" else torch.zeros_like(f)
            self._buf.extend([first] * (self.frames - 1))
        self._buf.append(f)
        clip = torch.stack(list(self._buf))[None, None].expand(1, self.channels, -1, -1, -1)
        r = infer_clip(self.model, clip.to(self.device))[0]
        if r["scores"] is not None and self.task == "segment":
            r["targets"] = targets_from_scores(r["scores"], self.conf)
        elif r["boxes"] is not None:
            r["targets"] = targets_from_boxes(r["boxes"], self.conf)
        else:
            r["targets"] = np.zeros((0, 7), np.float32)
        return r

    def predict_frames(self, frames: Iterable[np.ndarray]) -> Iterator[dict[str, Any]]:
        self.reset()
        for f in frames:
            yield self.step(f)

    def predict_sequence(self, seq: Any) -> Iterator[dict[str, Any]]:
        """Predict every frame of a ``mirstd.data.Sequence`` (frames scaled by its bit depth)."""
        scale = float(2**seq.bit_depth - 1)
        yield from self.predict_frames(seq.load_frame(i) / scale for i in range(len(seq)))

    def predict_folder(
        self, path: str | Path, out: str | Path | None = None, **kw: Any
    ) -> list[dict[str, Any]]:
        """Predict a folder of frames (one sequence, sorted by name); write outputs to ``out`` if given."""
        name, frames = read_frame_folder(path)
        results = []
        for i, r in enumerate(self.predict_frames(f for f, _ in frames)):
            results.append(r)
            if out is not None:
                write_frame_outputs(Path(out), name, frames[i][1], frames[i][0], r, self.task)
        if out is not None:
            write_csv(Path(out) / "predictions.csv", rows_for(name, [f[1] for f in frames], results))
        return results


def read_frame_folder(path: str | Path) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """``(sequence name, [(frame in [0, 1], stem), ...])`` for a folder of single-channel images."""
    from mirstd.data.image import read_frame

    path = Path(path)
    files = sorted(p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS)
    if not files:
        raise FileNotFoundError(f"{path} holds no image frames ({', '.join(IMAGE_EXTS)})")
    out = []
    for p in files:
        arr, bit_depth = read_frame(p)
        out.append((arr / float(2**bit_depth - 1), p.stem))
    return path.name, out


def read_video(path: str | Path) -> tuple[str, list[tuple[np.ndarray, str]]]:
    """Grey frames in [0, 1] of a video file (needs the optional ``av`` package: pip install mirstd[video])."""
    try:
        import av
    except ImportError as e:
        raise ValueError(
            f"reading video {path} needs the optional 'av' package: pip install 'mirstd[video]'"
        ) from e
    frames = []
    with av.open(str(path)) as container:
        for i, fr in enumerate(container.decode(video=0)):
            frames.append((fr.to_ndarray(format="gray").astype(np.float32) / 255.0, f"{i:05d}"))
    return Path(path).stem, frames


def overlay(frame: np.ndarray, targets: np.ndarray, task: str) -> np.ndarray:
    """BGR uint8 frame with targets circled (segment) or boxes drawn (detect)."""
    import cv2

    g = np.clip(frame * 255.0, 0, 255).astype(np.uint8)
    img = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
    for x, y, x1, y1, x2, y2, _ in targets:
        if task == "segment":
            r = int(max(x2 - x1, y2 - y1, 6) / 2 + 3)
            cv2.circle(img, (int(round(x)), int(round(y))), r, (0, 0, 255), 1)
        else:
            cv2.rectangle(
                img,
                (int(x1), int(y1)),
                (max(int(x2) - 1, int(x1)), max(int(y2) - 1, int(y1))),
                (0, 255, 0),
                1,
            )
    return img


def write_frame_outputs(
    out: Path, seq: str, stem: str, frame: np.ndarray, r: dict[str, Any], task: str
) -> None:
    """``out/<seq>/prob/<stem>.png`` (segment, uint8 probability ×255) and ``out/<seq>/overlay/<stem>.png``."""
    from mirstd.data.image import write_png

    if r.get("scores") is not None:
        write_png(
            out / seq / "prob" / f"{stem}.png", np.clip(np.round(r["scores"] * 255), 0, 255).astype(np.uint8)
        )
    write_png(out / seq / "overlay" / f"{stem}.png", overlay(frame, r["targets"], task))


def rows_for(seq: str, stems: list[str], results: list[dict[str, Any]]) -> list[list[Any]]:
    rows = []
    for stem, r in zip(stems, results):
        for t in r["targets"]:
            rows.append([seq, stem, *(round(float(v), 3) for v in t[:6]), round(float(t[6]), 5)])
    return rows


def write_csv(path: Path, rows: list[list[Any]]) -> None:
    import io

    from mirstd.utils.io import atomic_write_text

    buf = io.StringIO()
    w = csv.writer(buf)
    w.writerow(CSV_FIELDS)
    w.writerows(rows)
    atomic_write_text(path, buf.getvalue())
