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

import contextlib
import csv
import io
import json
import os
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
    check_out_dir,
    increment_dir,
    inside,
    staged_dir,
    to_jsonable,
)

CSV_FIELDS = ["sequence", "frame", "x", "y", "x1", "y1", "x2", "y2", "score"]
SAVE_SCORES = ("png", "npy", "none")


class PredictionWriter:
    """Writes one predict run's files (see the module docstring) as frames come: score maps, overlays
    and the overlay video per frame, ``predictions.csv`` / ``predictions.json`` rows appended to open
    files, so memory does not grow with the number of frames (the folder is staged by ``predict``)."""

    def __init__(
        self, out: Path, save_scores: str = "png", save_overlay: bool = True, save_video: bool = False
    ) -> None:
        if save_scores not in SAVE_SCORES:
            raise ConfigError(f"save_scores={save_scores!r}; valid: {', '.join(SAVE_SCORES)}")
        self.out, self.save_scores, self.save_overlay = out, save_scores, save_overlay
        self.frames = 0  # frames added
        self.targets = 0  # rows written to predictions.csv
        self.videos: list[Path] = []  # overlay videos written
        self._checked_seq: str | None = None
        self.save_video = bool(save_video)  # overlay/<seq>/overlay.mp4 (mirstd.infer.video), streamed
        self._video: Any = None
        self._video_seq: str | None = None
        out.mkdir(parents=True, exist_ok=True)
        self._csv_file = open(out / "predictions.csv", "w", newline="", encoding="utf-8")
        self._csv = csv.writer(self._csv_file)
        self._csv.writerow(CSV_FIELDS)
        self._json = open(out / "predictions.json", "w", encoding="utf-8")
        self._json.write("[")
        self._n_coco = 0

    def _check_names(self, seq: str, frame_id: str) -> None:
        """Sequence and frame names come from dataset files: they must not lead outside ``out``."""
        for sub in ("scores", "overlay"):
            try:
                if seq != self._checked_seq:
                    inside(self.out / sub, self.out / sub / seq / "x.png")
                inside(self.out / sub / seq, self.out / sub / seq / f"{frame_id}.png")
            except ValueError:
                raise ValueError(
                    f"sequence/frame name {seq}/{frame_id!s} would write outside out=; "
                    "names with '..' or absolute paths are refused (run `mirstd data check` on the source)"
                ) from None
        self._checked_seq = seq

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
                path = self.out / "overlay" / seq / "overlay.mp4"
                self._video, self._video_seq = OverlayVideo(path), seq
                self.videos.append(path)
            label = f"{seq} {frame_id} #{self._video.frames}"
            self._video.write(annotate(frame, r["targets"], r["boxes"] is not None, label))
        for t in r["targets"]:
            self._csv.writerow([seq, frame_id, *(round(float(v), 3) for v in t[:6]), round(float(t[6]), 5)])
            self.targets += 1
        # COCO results: the method's own boxes (all, with their scores) when it gives boxes, else the
        # score map's components at the target threshold (mirstd eval then reads the score maps).
        # Appended item by item: the file is byte-identical to json.dumps(list, indent=None).
        boxes = r["boxes"] if r["boxes"] is not None else r["targets"][:, 2:7]
        for x1, y1, x2, y2, s in np.asarray(boxes, np.float64).reshape(-1, 5):
            item = {"image_id": f"{seq}/{frame_id}", "category_id": 1,
                    "bbox": [x1, y1, x2 - x1, y2 - y1], "score": s}  # fmt: skip
            self._json.write((", " if self._n_coco else "") + json.dumps(to_jsonable(item)))
            self._n_coco += 1
        self.frames += 1

    def close(self) -> Path:
        """Finish the overlay video and the CSV / JSON files (also after an error, so no handle leaks;
        ``predict`` then discards the staged folder)."""
        if self._video is not None:
            self._video.close()
            self._video = None
        if not self._json.closed:
            self._json.write("]")
            self._json.close()
        if not self._csv_file.closed:
            self._csv_file.close()
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
    dtype: str = "float32",
    stream: bool | None = None,
) -> Path:
    """Run a checkpoint (or a parameter-free method) over ``source``; returns the output folder.

    ``stream`` is another name for ``cache`` (when given, it decides): frames are processed one by
    one from cached per-frame features where the model offers it, and written as they come.

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
        cache=bool(cache if stream is None else stream),
        dtype=dtype,
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


def _video_frames(path: Path) -> int | None:
    """Frame count in a video's header (None when absent): the progress bar's total."""
    try:
        import av

        with av.open(str(path)) as c:
            return int(c.streams.video[0].frames) or None
    except Exception:  # noqa: BLE001 - only a progress hint; decoding reports real errors
        return None


SEQUENTIAL_VIDEO_CACHE_MB = 256.0


@contextlib.contextmanager
def _sequential_video_cache(limit_mb: float = SEQUENTIAL_VIDEO_CACHE_MB) -> Iterator[None]:
    """Cap the shared LRU of decoded video chunks (``mirstd.data.readers.videos.CACHE``, 3 GB by
    default, sized for random training clips) while predict walks a dataset: its clips read each
    video in order, so a few chunks per video suffice and memory stays flat on long videos. Left as
    it is when ``$MIRSTD_VIDEO_CACHE_MB`` or the dataset's ``cache_mb`` set it."""
    from mirstd.data.readers.videos import CACHE, VideoCache

    default = VideoCache(None).limit if "MIRSTD_VIDEO_CACHE_MB" not in os.environ else None
    old = CACHE.limit
    if default is None or old != default:
        yield
        return
    CACHE.set_limit(min(old / 2**20, limit_mb))
    try:
        yield
    finally:
        CACHE.limit = old


def _run(pred: Predictor, src: Path, source: Any, split: Any, dev: torch.device, writer: PredictionWriter,
         progress: bool) -> Path:  # fmt: skip
    bar = None
    try:
        if _is_stream(src):
            name, frames_it, ids = _stream(src)
            if progress:
                from tqdm import tqdm

                total = _video_frames(src) if src.is_file() else len(frame_files(src))
                bar = tqdm(desc=f"predict {name}", unit="frame", total=total)
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
            if progress:
                from tqdm import tqdm

                bar = tqdm(desc="predict", unit="frame", total=len(ds))
            with torch.no_grad(), _sequential_video_cache():
                for idx in range(len(ds)):
                    s = ds[idx]
                    oh, ow = s["meta"]["orig_size"]
                    with pred.autocast():
                        r = infer_clip(pred.model, s["clip"][None].to(dev))[0]
                    if r["scores"] is not None:
                        r["scores"] = r["scores"][:oh, :ow]
                    frame = s["clip"][0, -1, :oh, :ow].numpy()
                    writer.add(s["meta"]["sequence"], str(s["meta"]["frame"]), frame,
                               with_targets(r, pred.conf))  # fmt: skip
                    if bar is not None:
                        bar.update(1)
    finally:
        if bar is not None:
            bar.close()
        writer.close()
    return writer.out
