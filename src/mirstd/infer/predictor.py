"""Inference on clips and streams, the same for every method (``Method.predict`` -> ``Prediction``).

Clips follow the training data: frames ``t-T+1 .. t`` oldest first, current last, scaled to [0, 1] by
``2**bit_depth - 1``, grey replicated to the model's ``in_channels``; before frame ``T-1`` the clip
is padded as ``mirstd.data.clips`` does it: ``pad="repeat"`` repeats the first frame, ``"zeros"``
uses black frames, ``"skip"`` gives no prediction for the first ``T-1`` frames (they are never key
frames). Frames are zero-padded at the bottom/right to a multiple of ``model.size_divisor`` and
outputs cropped back, so boxes stay in the frame's own pixel grid (edge boxes, docs/design.md).

Targets (the rows of ``predictions.csv`` and what overlays draw) come from one rule,
:func:`mirstd.utils.targets.prediction_targets`: boxes if the method gives them, else the components
of its score map.

``dtype="bfloat16"`` runs the network under ``torch.autocast(device, torch.bfloat16)`` (convs and
matmuls in bf16, 8 significant bits); its outputs are cast back to float32 before the sigmoid, box
decoding and NMS, so boxes are not quantised. On a CPU without native bf16 (no ``avx512_bf16`` /
``amx_bf16`` flag, or ``bf16`` on Arm) bf16 is emulated — slower than float32, with the same bf16
rounding — so the Predictor warns and runs float32 (:func:`resolve_dtype`; ``Predictor.dtype`` says
what ran).
"""

from __future__ import annotations

import collections
import contextlib
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from mirstd.data.image import read_frame
from mirstd.data.sequence import Sequence
from mirstd.models.base import Method
from mirstd.models.checkpoint import model_from_checkpoint
from mirstd.utils.device import resolve_device
from mirstd.utils.targets import prediction_targets

IMAGE_EXTS = (".png", ".tif", ".tiff", ".bmp", ".jpg", ".jpeg")
VIDEO_EXTS = (".mp4", ".avi", ".mov", ".mkv")
STREAM_PADS = ("repeat", "zeros", "skip")
DTYPES = {"float32": "float32", "fp32": "float32", "bfloat16": "bfloat16", "bf16": "bfloat16"}
BF16_CPU_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")  # x86 (AVX512-BF16, AMX) and Arm (FEAT_BF16)


def cpu_flags() -> set[str]:
    """ISA flags of the first CPU in ``/proc/cpuinfo`` (x86 ``flags``, Arm ``Features``); empty elsewhere."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    for line in text.splitlines():
        key, _, val = line.partition(":")
        if key.strip() in ("flags", "Features"):
            return set(val.split())
    return set()


def bf16_support(device: torch.device) -> tuple[bool, str]:
    """``(native, description)``: whether bf16 matmuls/convs run in hardware on ``device``.

    CPU: a bf16 dot-product instruction in ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``, Arm
    ``bf16``); ``torch.backends.cpu.get_cpu_capability()`` (the ATen kernels' ISA) is reported too.
    Without them oneDNN / ATen convert to float32 per element (emulation): slower than float32.
    """
    if device.type == "cuda":
        ok = bool(torch.cuda.is_bf16_supported())
        return ok, f"CUDA {torch.cuda.get_device_name(device)}: bf16 {'supported' if ok else 'not supported'}"
    if device.type != "cpu":
        return True, f"{device.type}: bf16 left to torch"
    have = sorted(set(BF16_CPU_FLAGS) & cpu_flags())
    cap = torch.backends.cpu.get_cpu_capability()
    if have:
        return True, f"CPU flags {' '.join(have)} (ATen capability {cap})"
    return False, f"CPU without avx512_bf16/amx_bf16 (ATen capability {cap}): bf16 would be emulated"


def resolve_dtype(dtype: str | None, device: torch.device, model: Any = None) -> str:
    """Validated inference dtype, ``"float32"`` or ``"bfloat16"`` (aliases fp32, bf16).

    ``bfloat16`` on hardware without native bf16 warns and falls back to ``float32`` (see the module
    docstring); ONNX graphs and methods without parameters are refused (nothing to autocast).
    """
    from mirstd.utils.config import ConfigError

    name = DTYPES.get(str(dtype or "float32").lower())
    if name is None:
        raise ConfigError(f"dtype={dtype!r}; valid: float32 (fp32), bfloat16 (bf16)")
    if name == "float32":
        return name
    if model is not None and not any(True for _ in model.parameters()):
        raise ConfigError(
            f"dtype=bfloat16: {type(model).__name__} has no PyTorch parameters to run in bf16 "
            "(parameter-free methods and ONNX graphs run as they are)"
        )
    native, why = bf16_support(device)
    if not native:
        warnings.warn(f"dtype=bfloat16: {why}; running float32 instead", RuntimeWarning, stacklevel=3)
        return "float32"
    return name


def _to_float32(out: Any) -> Any:
    if isinstance(out, torch.Tensor):
        return out.float() if out.is_floating_point() else out
    if isinstance(out, (list, tuple)):
        return type(out)(_to_float32(o) for o in out)
    if isinstance(out, dict):
        return {k: _to_float32(v) for k, v in out.items()}
    return out


@contextlib.contextmanager
def bf16_forward(model: torch.nn.Module, device_type: str) -> Iterator[None]:
    """While active, ``model(...)`` (its top-level forward) runs under bf16 autocast and returns
    float32 tensors: what ``predict`` does after the network (sigmoid, box decoding, NMS) runs in
    float32 or wider (a mask network's sigmoid in float64, ``mirstd.models.base.probabilities``).
    Hooks are removed on exit; the model is otherwise untouched."""
    open_: list[Any] = []

    def enter(_mod: Any, _args: Any) -> None:
        ctx = torch.autocast(device_type, dtype=torch.bfloat16)
        ctx.__enter__()
        open_.append(ctx)

    def leave(_mod: Any, _args: Any, out: Any) -> Any:
        open_.pop().__exit__(None, None, None)
        return _to_float32(out)

    # leave runs first among forward hooks, so any other hook already sees the float32 outputs
    handles = [model.register_forward_pre_hook(enter), model.register_forward_hook(leave, prepend=True)]
    try:
        yield
    finally:
        for h in handles:
            h.remove()
        while open_:  # a forward that raised never reached its hook
            open_.pop().__exit__(None, None, None)


@torch.no_grad()
def infer_clip(model: Method, clip: torch.Tensor) -> list[dict[str, np.ndarray | None]]:
    """Run ``model.predict`` on clips ``(B, C, T, H, W)`` of equal size; pad to ``size_divisor``, crop back.

    Returns per sample ``{"scores": HxW float64 or None, "boxes": Nx5 (edge box, score) or None}``.
    """
    h, w = clip.shape[-2:]
    div = int(model.size_divisor)
    ph, pw = (-h) % div, (-w) % div
    x = F.pad(clip, (0, pw, 0, ph)) if (ph or pw) else clip
    return prediction_result(model.predict(x), h, w)


def prediction_result(out: Any, h: int, w: int) -> list[dict[str, np.ndarray | None]]:
    """Per sample ``{"scores", "boxes"}`` of a ``Prediction`` on padded input, cropped to ``h x w``."""
    res = []
    for b in range(len(out.scores) if out.scores is not None else len(out.boxes)):
        s = None if out.scores is None else out.scores[b, 0, :h, :w].double().cpu().numpy()
        bx = None
        if out.boxes is not None:
            t = out.boxes[b].float().cpu()[:, :5].clone()
            t[:, 0:4:2] = t[:, 0:4:2].clamp(0, w)
            t[:, 1:4:2] = t[:, 1:4:2].clamp(0, h)
            bx = t.numpy()
        res.append({"scores": s, "boxes": bx})
    return res


def load_model(weights: str | Path | Method, device: torch.device) -> tuple[Method, dict[str, Any]]:
    """``(model in eval mode on device, training config or {})`` from a checkpoint path or a model."""
    if isinstance(weights, torch.nn.Module):
        return weights.to(device).eval(), {}
    if str(weights).lower().endswith(".onnx"):  # a `mirstd export`: run by onnxruntime (CPU)
        from mirstd.infer.export import OnnxMethod

        return OnnxMethod(weights).eval(), {}
    model, ckpt = model_from_checkpoint(weights, device)
    return model, dict(ckpt.get("config") or {})


def clip_frames(model: Method, cfg: dict[str, Any], frames: int | None = None) -> int:
    """Clip length: the given ``frames``, else the model's ``num_frames``, else the training config's."""
    if frames:
        return int(frames)
    if model.num_frames is not None:
        return int(model.num_frames)
    return int(cfg.get("frames") or 1)


class Predictor:
    """Frame-by-frame predictor for a checkpoint path or a model instance.

    >>> p = Predictor("runs/segment/exp/weights/best.pt")
    >>> for r in p.predict_frames(frames): r["targets"]  # rows x, y, x1, y1, x2, y2, score, area
    """

    def __init__(
        self,
        weights: str | Path | Method,
        device: str | torch.device | None = None,
        frames: int | None = None,
        pad: str | None = None,
        conf: float = 0.5,
        fuse: bool = True,
        cache: bool = True,
        dtype: str = "float32",
    ) -> None:
        self.device = resolve_device(device)
        model, cfg = load_model(weights, self.device)
        self.model = model.fuse() if fuse else model
        # "float32" or "bfloat16" (bf16 autocast); "bfloat16" falls back to float32, with a warning,
        # where the hardware has no native bf16 (resolve_dtype).
        self.dtype = resolve_dtype(dtype, self.device, self.model)
        self.task = model.task  # names output folders only
        self.frames = clip_frames(model, cfg, frames)
        self.pad = str(pad or cfg.get("pad") or "repeat")
        if self.pad not in STREAM_PADS:
            raise ValueError(
                f"pad={self.pad!r}: a stream has no stored history; choose one of {', '.join(STREAM_PADS)}"
            )
        self.conf = float(conf)
        self.channels = int(model.in_channels)
        # cache=True: models offering encode_frame/predict_from_features (mirstd.infer.stream)
        # encode each frame once and keep the last T-1 frames' features; others re-run the clip.
        from mirstd.infer.stream import Stream, supports_stream

        self._stream = None
        if cache and supports_stream(self.model) and self.frames == self.model.num_frames:
            self._stream = Stream(self.model, self.frames, self.pad)
        self.reset()

    @property
    def cached(self) -> bool:
        """True when frames go through the feature cache (:mod:`mirstd.infer.stream`)."""
        return self._stream is not None

    def autocast(self) -> contextlib.AbstractContextManager[None]:
        """Context for ``infer_clip(self.model, ...)``: bf16 autocast of the network when
        ``dtype="bfloat16"`` (outputs back to float32 before post-processing), else nothing."""
        if self.dtype != "bfloat16":
            return contextlib.nullcontext()
        return bf16_forward(self.model, self.device.type)

    def _stream_autocast(self) -> contextlib.AbstractContextManager[Any]:
        # Stream.step calls encode_frame / predict_from_features, not forward: autocast the whole
        # step (streamable models are score-map models; predict_from_features casts to float32
        # before the sigmoid).
        if self.dtype != "bfloat16":
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=torch.bfloat16)

    def reset(self) -> None:
        """Forget the buffered frames (call between sequences)."""
        self._buf: collections.deque[torch.Tensor] = collections.deque(maxlen=self.frames)
        self._seen = 0
        if getattr(self, "_stream", None) is not None:
            self._stream.reset()

    def step(self, frame: np.ndarray) -> dict[str, Any] | None:
        """Push one frame (H, W float in [0, 1]) and predict it from the last T frames.

        Returns ``{"scores", "boxes", "targets"}``, or None for the first ``T-1`` frames with
        ``pad="skip"``.
        """
        f = torch.as_tensor(np.asarray(frame, dtype=np.float32))
        if f.ndim != 2:
            raise ValueError(f"expected a single-channel (H, W) frame, got shape {tuple(f.shape)}")
        if self._buf and f.shape != self._buf[-1].shape:
            raise ValueError(
                f"frame {self._seen} is {tuple(f.shape)}, the frames before it {tuple(self._buf[-1].shape)}"
            )
        if self._stream is not None:
            return self._step_cached(f)
        if not self._buf and self.pad != "skip":
            first = f if self.pad == "repeat" else torch.zeros_like(f)
            self._buf.extend([first] * (self.frames - 1))
        self._buf.append(f)
        self._seen += 1
        if len(self._buf) < self.frames:
            return None
        clip = torch.stack(list(self._buf))[None, None].expand(1, self.channels, -1, -1, -1)
        with self.autocast():
            r = infer_clip(self.model, clip.to(self.device))[0]
        return with_targets(r, self.conf)

    def _step_cached(self, f: torch.Tensor) -> dict[str, Any] | None:
        if self._buf and f.shape != self._buf[-1].shape:
            raise ValueError(
                f"frame {self._seen} is {tuple(f.shape)}, the frames before it {tuple(self._buf[-1].shape)}"
            )
        self._buf.clear()
        self._buf.append(f)  # only the shape check needs it
        self._seen += 1
        h, w = f.shape
        div = int(self.model.size_divisor)
        x = F.pad(f, (0, (-w) % div, 0, (-h) % div))[None, None].expand(1, self.channels, -1, -1)
        with self._stream_autocast():
            out = self._stream.step(x.to(self.device))
        if out is None:
            return None
        return with_targets(prediction_result(out, h, w)[0], self.conf)

    def predict_frames(self, frames: Iterable[np.ndarray]) -> Iterator[dict[str, Any] | None]:
        self.reset()
        for f in frames:
            yield self.step(f)

    def predict_sequence(self, seq: Sequence) -> Iterator[dict[str, Any] | None]:
        """Predict every frame of a ``mirstd.data.Sequence`` (frames scaled by its bit depth)."""
        scale = float(2**seq.bit_depth - 1) if seq.bit_depth > 0 else 1.0
        yield from self.predict_frames(seq.load_frame(i) / scale for i in range(len(seq)))


def with_targets(r: dict[str, Any], conf: float) -> dict[str, Any]:
    """Add ``r["targets"]`` (the one rule of :mod:`mirstd.utils.targets`) to an :func:`infer_clip` result."""
    r["targets"] = prediction_targets(r["scores"], r["boxes"], conf)
    return r


def natural_key(name: str) -> list[Any]:
    """Sort key that orders ``1.png, 2.png, 10.png`` numerically (runs of digits compare as numbers)."""
    import re

    return [int(t) if t.isdigit() else t.lower() for t in re.split(r"(\d+)", name)]


def frame_files(path: str | Path) -> list[Path]:
    """Image frames of a folder in natural order; error naming the folder when it holds none."""
    path = Path(path)
    files = sorted(
        (p for p in path.iterdir() if p.suffix.lower() in IMAGE_EXTS), key=lambda p: natural_key(p.name)
    )
    if not files:
        raise FileNotFoundError(f"{path} holds no image frames ({', '.join(IMAGE_EXTS)})")
    return files


def iter_frame_folder(files: list[Path]) -> Iterator[np.ndarray]:
    """Frames in [0, 1] of ``files``, read one at a time (bounded memory); each scaled by its own bit
    depth, and a change of bit depth within the folder is refused."""
    depth = None
    for p in files:
        arr, bit_depth = read_frame(p)
        if depth is not None and bit_depth != depth:
            raise ValueError(f"{p}: {bit_depth}-bit frame in a folder of {depth}-bit frames")
        depth = bit_depth
        yield arr / float(2**bit_depth - 1)


def iter_video(path: str | Path) -> Iterator[np.ndarray]:
    """Grey frames in [0, 1] of a video file, decoded one at a time (needs ``pip install 'mirstd[video]'``)."""
    try:
        import av
    except ImportError as e:
        raise ValueError(
            f"reading video {path} needs the optional 'av' package: pip install 'mirstd[video]'"
        ) from e
    with av.open(str(path)) as container:
        for fr in container.decode(video=0):
            yield fr.to_ndarray(format="gray").astype(np.float32) / 255.0


def overlay(frame: np.ndarray, targets: np.ndarray, boxes: bool) -> np.ndarray:
    """BGR uint8 frame with the targets drawn: rectangles for box predictions, circles around
    score-map components (their extent is a pixel set, not a box)."""
    import cv2

    g = np.clip(frame * 255.0, 0, 255).astype(np.uint8)
    img = cv2.cvtColor(g, cv2.COLOR_GRAY2BGR)
    for x, y, x1, y1, x2, y2, *_ in targets:
        if boxes:
            p1 = (int(x1), int(y1))
            p2 = (max(int(x2) - 1, int(x1)), max(int(y2) - 1, int(y1)))
            cv2.rectangle(img, p1, p2, (0, 255, 0), 1)
        else:
            r = int(max(x2 - x1, y2 - y1, 6) / 2 + 3)
            cv2.circle(img, (int(round(x)), int(round(y))), r, (0, 0, 255), 1)
    return img
