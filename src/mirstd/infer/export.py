"""``mirstd export``: a checkpoint (or model) to ONNX, verified against onnxruntime in the same call.

Graph input ``clip`` ``(B, C, T, H, W)`` float32 in [0, 1] (as ``Method.predict``; H, W multiples of
``size_divisor`` — callers pad, see :func:`mirstd.infer.predictor.infer_clip`). Outputs:

- segmentation models: ``scores`` ``(B, 1, H, W)`` probabilities (the sigmoid is inside);
- box models (YOLOX heads): decoding inside, NMS outside — ``boxes`` ``(B, N, 4)`` edge boxes
  x1, y1, x2, y2 in input pixels (``input_scale`` undone), ``scores`` ``(B, N)`` =
  sigmoid(obj) * max_c sigmoid(cls_c), ``classes`` ``(B, N)`` int64, one row per stride-8 cell.
  Keep ``scores >= conf`` then class-aware NMS at ``nms_iou`` (both in the metadata) to get what
  ``predict`` returns; :class:`OnnxMethod` does exactly that.

Opset 18 by default (the dynamo exporter's own; 17 is accepted but its down-conversion can fail).
Dynamic axes: batch, H and W where the exporter can trace the network symbolically; otherwise
the graph is exported at the given ``imgsz`` and the metadata says ``dynamic: "batch"`` or ``"none"``
(``PSTFNet(msfm_grid="proportional")``, i.e. paper mode, is fixed-size by construction). T is never
dynamic (every multi-frame network has a fixed ``num_frames``).

Metadata (``metadata_props``): ``mirstd_card`` = JSON model card (name, model_args, task,
in_channels, num_frames, size_divisor, input spec, output names, dynamic axes, conf/nms_iou for box
models, mirstd version).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn as nn

from mirstd._version import __version__
from mirstd.models.base import Method, Prediction

__all__ = ["OnnxMethod", "export_main", "export_onnx", "verify_onnx"]

EXPORT_HELP = """usage: mirstd export weights=PATH [format=onnx] [out=FILE.onnx] [imgsz=256] [frames=null]
                     [opset=18] [dynamic=true] [verify=true] [atol=1e-4]
       mirstd export model=NAME [model_args.k=v ...] ...   (random weights: for trying the export)

Writes an ONNX graph (needs pip install 'mirstd[export]': onnx, onnxscript, onnxruntime) and checks
it against the PyTorch model on random clips with onnxruntime (max abs difference printed; fails
above atol). `mirstd predict weights=FILE.onnx source=...` runs it. Keys: export: section of
configs/default.yaml."""


class _Graph(nn.Module):
    """What the ONNX graph computes: ``Method.export_forward`` (see the module docstring)."""

    def __init__(self, net: Method) -> None:
        super().__init__()
        self.net = net
        self.names = list(net.export_outputs)

    def forward(self, clip: torch.Tensor) -> Any:
        return self.net.export_forward(clip)


def _resolve(src: Any, model_args: dict[str, Any] | None = None) -> tuple[Method, str, dict]:
    """``(eval model, registered name, model_args)`` from a Method, a checkpoint path or a name."""
    if isinstance(src, nn.Module):
        return src.eval(), type(src).__name__.lower(), dict(model_args or {})
    p = Path(str(src))
    if p.suffix == ".pt" or p.is_file():
        from mirstd.models.checkpoint import model_from_checkpoint

        model, ckpt = model_from_checkpoint(p, "cpu")
        return model.eval(), str(ckpt["model_name"]), dict(ckpt.get("model_args") or {})
    from mirstd.models.registry import create

    return create(str(src), **(model_args or {})).eval(), str(src), dict(model_args or {})


def _jsonable(v: Any) -> Any:
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    return str(v)


def _example(
    model: Method, imgsz: int | tuple[int, int], frames: int, batch: int = 1, seed: int = 0
) -> torch.Tensor:
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else imgsz
    g = torch.Generator().manual_seed(seed)
    return torch.rand(batch, int(model.in_channels), frames, h, w, generator=g)


def _torch_export(
    graph: nn.Module, x: torch.Tensor, path: Path, opset: int, dims: dict[int, Any] | None
) -> None:
    import warnings

    names = graph.names
    kw: dict[str, Any] = {}
    if dims:
        kw["dynamic_shapes"] = {"clip": dims}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            graph, (x,), str(path), input_names=["clip"], output_names=names, opset_version=opset,
            dynamo=True, external_data=False, verbose=False, **kw,
        )  # fmt: skip


def _reference(graph: nn.Module, x: torch.Tensor) -> list[np.ndarray]:
    with torch.no_grad():
        out = graph(x)
    out = out if isinstance(out, tuple) else (out,)
    return [o.detach().cpu().numpy() for o in out]


def verify_onnx(path: str | Path, model: Method, clips: list[torch.Tensor]) -> float:
    """Max abs difference between onnxruntime and the PyTorch graph over ``clips`` (float outputs)."""
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.log_severity_level = 3  # a failed dynamic-size check falls back quietly (reported in the card)
    sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
    graph = _Graph(model).eval()
    worst = 0.0
    for x in clips:
        got = sess.run(None, {"clip": x.numpy().astype(np.float32)})
        for a, b in zip(got, _reference(graph, x), strict=True):
            if a.shape != b.shape:
                raise AssertionError(f"{path}: onnxruntime output {a.shape} != torch {b.shape}")
            if np.issubdtype(b.dtype, np.floating):
                worst = max(
                    worst, float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max(initial=0.0))
                )
    return worst


def export_onnx(
    model_or_weights: Any,
    out: str | Path,
    imgsz: int | tuple[int, int] = 256,
    frames: int | None = None,
    opset: int = 18,
    dynamic: bool = True,
    verify: bool = True,
    atol: float = 1e-4,
    model_args: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Export to ONNX (see the module docstring), write the model card, check with onnxruntime.

    Returns the card plus ``max_abs_diff`` (None when ``verify`` is False). Raises AssertionError
    when the difference exceeds ``atol``."""

    if opset < 17:
        raise ValueError(f"opset={opset}: mirstd exports need opset >= 17")
    model, name, args = _resolve(model_or_weights, model_args)
    model = model.fuse().eval()
    t = int(frames or model.num_frames or 1)
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else tuple(imgsz)
    div = int(model.size_divisor)
    if h % div or w % div:
        raise ValueError(f"imgsz {h}x{w} must be multiples of the model's size_divisor={div}")
    extra = dict(model.export_card())  # raises for models no graph can hold, before anything is written
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    graph = _Graph(model).eval()
    x = _example(model, (h, w), t, batch=2)
    fixed_size = bool(extra.pop("fixed_size", False))
    attempts: list[tuple[str, dict[int, Any] | None]] = []
    if dynamic:
        D = torch.export.Dim
        if not fixed_size:
            attempts.append(("batch,height,width", {0: D("batch", min=1, max=64),
                                                    3: D.AUTO, 4: D.AUTO}))  # fmt: skip
        attempts.append(("batch", {0: D("batch", min=1, max=64)}))
    attempts.append(("none", None))
    errors: list[str] = []
    for i, (label, dims) in enumerate(attempts):
        try:
            return _export_and_check(
                graph, model, x, out, opset, dims, name, args, extra, errors, verify, atol
            )
        except Exception as e:  # noqa: BLE001 - try the next, less dynamic export
            if i == len(attempts) - 1:
                raise
            first = str(e).strip().splitlines()[0][:200] if str(e).strip() else ""
            errors.append(f"{label}: {type(e).__name__}: {first}")
    raise AssertionError("unreachable")


def _export_and_check(
    graph: _Graph, model: Method, x: torch.Tensor, out: Path, opset: int, dims: dict[int, Any] | None,
    name: str, args: dict[str, Any], extra: dict[str, Any], errors: list[str], verify: bool, atol: float,
) -> dict[str, Any]:  # fmt: skip
    import onnx

    _torch_export(graph, x, out, opset, dims)
    b, c, t, h, w = x.shape
    div = int(model.size_divisor)
    # What the graph really accepts (Dim.AUTO may have specialised an axis): the input's symbolic dims.
    proto = onnx.load(str(out))
    in_dims = proto.graph.input[0].type.tensor_type.shape.dim
    sym = [bool(d.dim_param) or not d.HasField("dim_value") for d in in_dims]
    dyn = ",".join(n for n, i in (("batch", 0), ("height", 3), ("width", 4)) if sym[i]) or "none"
    # Verify the claimed dynamic axes too: a batch and a size the export did not see.
    clips = [_example(model, (h, w), t, batch=b, seed=1)]
    if "batch" in dyn:
        clips.append(_example(model, (h, w), t, batch=1, seed=2))
    if "height" in dyn and "width" in dyn:
        clips.append(_example(model, (h + div, w + 2 * div), t, batch=1, seed=3))
    card = {
        "name": name,
        "model_args": _jsonable(args),
        "class": type(model).__name__,
        "task": model.task,
        "in_channels": int(model.in_channels),
        "num_frames": t,
        "size_divisor": div,
        "input": {
            "name": "clip",
            "shape": ["B", c, t, "H", "W"],
            "dtype": "float32",
            "range": [0, 1],
            "export_size": [h, w],
            "export_batch": b,
        },  # fmt: skip
        "outputs": graph.names,
        "dynamic": dyn,
        "opset": opset,
        "mirstd_version": __version__,
        **_jsonable(extra),
    }
    if errors:
        card["dynamic_failed"] = list(errors)
    for k, v in (("mirstd_card", json.dumps(card)), ("mirstd_version", __version__), ("mirstd_model", name)):
        entry = proto.metadata_props.add()
        entry.key, entry.value = k, v
    onnx.save(proto, str(out))
    card["max_abs_diff"] = None
    if verify:
        try:
            import onnxruntime  # noqa: F401
        except ImportError:
            card["max_abs_diff"] = "onnxruntime not installed: pip install 'mirstd[export]'"
            return card
        diff = verify_onnx(out, model, clips)
        card["max_abs_diff"] = diff
        if diff > atol:
            raise AssertionError(f"{out}: onnxruntime differs from PyTorch by {diff:.3g} > atol={atol}")
    return card


class OnnxMethod(Method):
    """A mirstd ONNX export run by onnxruntime behind the ``Method`` contract (``predict`` only)."""

    def __init__(self, path: str | Path, providers: list[str] | None = None) -> None:
        super().__init__()
        try:
            import onnxruntime as ort
        except ImportError as e:
            raise ValueError(f"running {path} needs onnxruntime: pip install 'mirstd[export]'") from e
        self.path = Path(path)
        self.session = ort.InferenceSession(str(path), providers=providers or ["CPUExecutionProvider"])
        meta = self.session.get_modelmeta().custom_metadata_map
        if "mirstd_card" not in meta:
            raise ValueError(f"{path} is not a mirstd export (no mirstd_card metadata)")
        self.card = json.loads(meta["mirstd_card"])
        self.task = self.card["task"]
        self.in_channels = int(self.card["in_channels"])
        self.num_frames = int(self.card["num_frames"])
        self.size_divisor = int(self.card["size_divisor"])
        self.conf = float(self.card.get("conf", 0.001))
        self.nms_iou = float(self.card.get("nms_iou", 0.65))

    @property
    def trainable(self) -> bool:  # a graph, no parameters here
        return False

    def predict(self, clip: torch.Tensor) -> Prediction:
        self.check_clip(clip)
        if "height" not in self.card["dynamic"] or "width" not in self.card["dynamic"]:
            want = tuple(self.card["input"]["export_size"])
            if tuple(clip.shape[-2:]) != want:
                raise ValueError(
                    f"{self.path}: exported at {want} without dynamic H, W; got {tuple(clip.shape[-2:])}"
                )
        x = clip.detach().float().cpu().numpy()
        if "batch" in self.card["dynamic"]:
            outs = self.session.run(None, {"clip": x})
        else:  # fixed export batch: run one clip at a time, repeated to that batch
            n = int(self.card["input"].get("export_batch", 2))
            per = [
                self.session.run(None, {"clip": np.concatenate([x[i : i + 1]] * n)}) for i in range(len(x))
            ]
            outs = [np.concatenate([p[k][:1] for p in per]) for k in range(len(per[0]))]
        if "boxes" not in self.card["outputs"]:
            return Prediction(scores=torch.from_numpy(outs[0]))
        from mirstd.utils.boxes import batched_nms  # the NMS of predict

        boxes, scores, classes = (torch.from_numpy(o) for o in outs)
        dets = []
        for b, s, c in zip(boxes, scores, classes, strict=True):
            keep = s >= self.conf
            b, s, c = b[keep], s[keep], c[keep]
            k = batched_nms(b, s, c, self.nms_iou)
            dets.append(torch.cat([b[k], s[k, None], c[k, None].float()], 1))
        return Prediction(boxes=dets)


def export_main(argv: list[str]) -> int:
    """``mirstd export`` (keys: the ``export:`` section of configs/default.yaml)."""
    from mirstd.utils.config import ConfigError, parse_overrides, task_config

    if not argv or any(a in ("-h", "--help", "help") for a in argv):
        print(EXPORT_HELP)
        return 0
    cfg = task_config("export", parse_overrides(argv))
    if cfg.get("format", "onnx") != "onnx":
        raise ConfigError(f"format={cfg['format']!r}: only format=onnx is supported")
    src = cfg.get("weights") or cfg.get("model")
    if not src or (cfg.get("weights") and cfg.get("model")):
        raise ConfigError("mirstd export needs exactly one of weights=PATH or model=NAME")
    out = cfg.get("out") or str(Path(str(src)).with_suffix(".onnx") if cfg.get("weights") else f"{src}.onnx")
    card = export_onnx(
        src, out, imgsz=int(cfg["imgsz"]), frames=cfg.get("frames"), opset=int(cfg["opset"]),
        dynamic=bool(cfg["dynamic"]), verify=bool(cfg["verify"]), atol=float(cfg["atol"]),
        model_args=cfg.get("model_args") or None,
    )  # fmt: skip
    print(json.dumps({k: card[k] for k in ("name", "task", "dynamic", "max_abs_diff")}), file=sys.stdout)
    print(f"exported {out}")
    return 0
