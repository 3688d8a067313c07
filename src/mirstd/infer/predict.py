"""``mirstd predict``: run a method over a dataset, a folder of frames or a video and write what
``mirstd eval`` reads.

Output folder (``out=``, default ``runs/<task>/predict``, ``predict2``, ...)::

    scores/<seq>/<frame_id>.png     score map, 16-bit PNG = prob x 65535 (save_scores=npy: float32 .npy)
    overlay/<seq>/<frame_id>.png    the frame with its targets drawn (save_overlay=false: none)
    predictions.json                COCO results, image_id "<seq>/<frame_id>", bbox [x, y, w, h] (edge box)
    predictions.csv                 sequence, frame, x, y, x1, y1, x2, y2, score — one row per target

Dataset sources are clipped by the same ``ClipDataset`` as ``mirstd val`` (so ``mirstd eval`` on this
folder reproduces ``mirstd val``); folders and videos stream frame by frame in bounded memory.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch

from mirstd.data.image import write_png
from mirstd.data.readers import load_dataset
from mirstd.infer.evaluate import eval_dataset_for, score_file
from mirstd.infer.predictor import (
    IMAGE_EXTS,
    VIDEO_EXTS,
    Predictor,
    frame_files,
    infer_clip,
    iter_frame_folder,
    iter_video,
    overlay,
    with_targets,
)
from mirstd.models.base import Method
from mirstd.models.pretrained import pretrained_names, pretrained_path
from mirstd.models.registry import create
from mirstd.utils.config import ConfigError
from mirstd.utils.device import resolve_device
from mirstd.utils.io import (
    atomic_write_bytes,
    atomic_write_text,
    check_out_dir,
    increment_dir,
    inside,
    staged_dir,
    write_json,
)

CSV_FIELDS = ["sequence", "frame", "x", "y", "x1", "y1", "x2", "y2", "score"]
SAVE_SCORES = ("png", "npy", "none")


class PredictionWriter:
    """Collects and writes one predict run's files (see the module docstring)."""

    def __init__(
        self, out: Path, save_scores: str = "png", save_overlay: bool = True, save_video: bool = False
    ) -> None:
        if save_scores not in SAVE_SCORES:
            raise ConfigError(f"save_scores={save_scores!r}; valid: {', '.join(SAVE_SCORES)}")
        self.out, self.save_scores, self.save_overlay = out, save_scores, save_overlay
        self.rows: list[list[Any]] = []
        self.coco: list[dict[str, Any]] = []
        self._checked: set[tuple[str, str]] = set()
        self.save_video = bool(save_video)  # overlay/<seq>/overlay.mp4 (mirstd.infer.video), streamed
        self._video: Any = None
        self._video_seq: str | None = None

    def _check_names(self, seq: str, frame_id: str) -> None:
        """Sequence and frame names come from dataset files: they must not lead outside ``out``."""
        if (seq, frame_id) in self._checked:
            return
        for sub in ("scores", "overlay"):
            try:
                inside(self.out / sub, self.out / sub / seq / f"{frame_id}.png")
            except ValueError:
                raise ValueError(
                    f"sequence/frame name {seq}/{frame_id!s} would write outside out=; "
                    "names with '..' or absolute paths are refused (run `mirstd data check` on the source)"
                ) from None
        self._checked.add((seq, frame_id))

    def add(self, seq: str, frame_id: str, frame: np.ndarray, r: dict[str, Any]) -> None:
        self._check_names(seq, frame_id)
        if r["scores"] is not None and self.save_scores == "png":
            q = np.clip(np.round(r["scores"].astype(np.float64) * 65535), 0, 65535).astype(np.uint16)
            write_png(score_file(self.out / "scores", seq, frame_id, ".png"), q)
        elif r["scores"] is not None and self.save_scores == "npy":
            p = score_file(self.out / "scores", seq, frame_id, ".npy")
            buf = io.BytesIO()
            np.save(buf, r["scores"].astype(np.float32))
            atomic_write_bytes(p, buf.getvalue())
        if self.save_overlay:
            write_png(
                self.out / "overlay" / seq / f"{frame_id}.png",
                overlay(frame, r["targets"], r["boxes"] is not None),
            )
        if self.save_video:
            from mirstd.infer.video import OverlayVideo, annotate

            if self._video_seq != seq:
                if self._video is not None:
                    self._video.close()
                self._video, self._video_seq = OverlayVideo(self.out / "overlay" / seq / "overlay.mp4"), seq
            label = f"{seq} {frame_id} #{self._video.frames}"
            self._video.write(annotate(frame, r["targets"], r["boxes"] is not None, label))
        for t in r["targets"]:
            self.rows.append([seq, frame_id, *(round(float(v), 3) for v in t[:6]), round(float(t[6]), 5)])
        # COCO results: the method's own boxes (all, with their scores) when it gives boxes, else the
        # score map's components at the target threshold (mirstd eval then reads the score maps).
        boxes = r["boxes"] if r["boxes"] is not None else r["targets"][:, 2:7]
        for x1, y1, x2, y2, s in np.asarray(boxes, np.float64).reshape(-1, 5):
            self.coco.append({"image_id": f"{seq}/{frame_id}", "category_id": 1,
                              "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s})  # fmt: skip

    def close(self) -> Path:
        if self._video is not None:
            self._video.close()
            self._video = None
        buf = io.StringIO()
        w = csv.writer(buf)
        w.writerow(CSV_FIELDS)
        w.writerows(self.rows)
        atomic_write_text(self.out / "predictions.csv", buf.getvalue())
        write_json(self.out / "predictions.json", self.coco, indent=None)
        return self.out


def _model(weights: Any, model: str | None, model_args: dict[str, Any] | None, device: torch.device) -> Any:
    if (weights is None) == (model is None):
        raise ConfigError("mirstd predict needs exactly one of weights=PATH or model=NAME")
    if weights is not None:
        return weights
    net = create(str(model), **(model_args or {}))
    if net.trainable:
        shipped = pretrained_path(str(model))
        if shipped is not None and not model_args:  # the package's own weights (mirstd models marks them)
            return shipped
        have = ", ".join(pretrained_names()) or "none"
        raise ConfigError(
            f"model={model!r} has trainable parameters and no weights: give weights=PATH "
            f"(names with shipped weights: {have}{'; model_args are not allowed with them' if shipped else ''})"
        )
    return net.to(device)


def _stream(source: Path) -> tuple[str, Iterator[np.ndarray], Iterator[str]]:
    if source.is_file() and source.suffix.lower() in VIDEO_EXTS:
        return source.stem, iter_video(source), (f"{i:05d}" for i in range(10**9))
    files = frame_files(source)
    return source.name, iter_frame_folder(files), (p.stem for p in files)


def _is_stream(source: Path) -> bool:
    if source.is_file():
        return source.suffix.lower() in VIDEO_EXTS
    return (
        source.is_dir()
        and not (source / "dataset.yaml").exists()
        and any(c.suffix.lower() in IMAGE_EXTS for c in source.iterdir())
    )


def predict(
    source: str | Path,
    weights: str | Path | Method | None = None,
    model: str | None = None,
    model_args: dict[str, Any] | None = None,
    out: str | Path | None = None,
    project: str | Path = "runs",
    split: str | None = "all",
    conf: float = 0.5,
    device: str | None = None,
    frames: int | None = None,
    pad: str | None = None,
    save_scores: str = "png",
    save_overlay: bool = True,
    progress: bool = True,
    exist_ok: bool = False,
    save_video: bool = False,
    cache: bool = True,
) -> Path:
    """Run a checkpoint (or a parameter-free method) over ``source``; returns the output folder.

    The output is written into a temporary sibling of ``out`` and renamed into place when complete; a
    non-empty ``out`` is refused unless ``exist_ok`` (which replaces an earlier predict output whole).
    """
    if out:
        check_out_dir(Path(out), bool(exist_ok), "out", PREDICT_MARKERS)
    dev = resolve_device(device)
    pred = Predictor(
        _model(weights, model, model_args, dev),
        device=dev,
        frames=frames,
        pad=pad,
        conf=conf,
        cache=bool(cache),
    )
    src = Path(str(source))
    if not str(source).startswith("synth:") and not src.exists():
        raise FileNotFoundError(f"source {source} does not exist")
    out_dir = Path(out) if out else increment_dir(Path(project) / pred.task, None, base="predict")
    if save_scores not in SAVE_SCORES:
        raise ConfigError(f"save_scores={save_scores!r}; valid: {', '.join(SAVE_SCORES)}")
    try:
        with staged_dir(out_dir, bool(exist_ok), "out", PREDICT_MARKERS) as tmp:
            _run(
                pred,
                src,
                source,
                split,
                dev,
                PredictionWriter(tmp, save_scores, bool(save_overlay), bool(save_video)),
                progress,
            )
    except BaseException:
        if not out and out_dir.is_dir() and not any(out_dir.iterdir()):
            out_dir.rmdir()  # the folder claimed for this run, left empty
        raise
    return out_dir


PREDICT_MARKERS = ("predictions.json", "predictions.csv")


def _run(pred: Predictor, src: Path, source: Any, split: Any, dev: torch.device, writer: PredictionWriter,
         progress: bool) -> Path:  # fmt: skip
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(desc="predict", unit="frame")
    if _is_stream(src):
        name, frames_it, ids = _stream(src)
        pred.reset()
        for frame, fid in zip(frames_it, ids):
            try:
                r = pred.step(frame)
            except ValueError as e:  # a frame of another size: name the file
                raise ValueError(f"{src}: frame {fid}: {e}") from None
            if r is not None:
                writer.add(name, fid, frame, r)
            if bar is not None:
                bar.update(1)
    else:
        seqs = load_dataset(str(source)).split(split)
        ds = eval_dataset_for(pred.model, seqs, {"frames": pred.frames, "pad": pred.pad})
        with torch.no_grad():
            for idx in range(len(ds)):
                s = ds[idx]
                oh, ow = s["meta"]["orig_size"]
                r = infer_clip(pred.model, s["clip"][None].to(dev))[0]
                if r["scores"] is not None:
                    r["scores"] = r["scores"][:oh, :ow]
                frame = s["clip"][0, -1, :oh, :ow].numpy()
                writer.add(s["meta"]["sequence"], str(s["meta"]["frame"]), frame, with_targets(r, pred.conf))
                if bar is not None:
                    bar.update(1)
    if bar is not None:
        bar.close()
    return writer.close()
