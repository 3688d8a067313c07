"""``mirstd models`` (list the registered methods) and ``mirstd profile`` (params, FLOPs, latency)."""

from __future__ import annotations

import json

import torch

from mirstd.metrics.efficiency import format_profile, profile_model
from mirstd.models.pretrained import pretrained_names
from mirstd.models.registry import create, list_models
from mirstd.utils.config import ConfigError, parse_overrides, task_config
from mirstd.utils.io import atomic_write_text

PROFILE_HELP = """usage: mirstd profile model=NAME [imgsz=384] [frames=N] [batch=1] [channels=N] [device=cpu]
                      [dtype=float32] [warmup=10] [iters=20] [threads=N] [out=FILE.json] [model_args.KEY=V]

Params (registered / used), FLOPs (= 2 x MACs, torch.utils.flop_counter), latency median and IQR,
FPS, peak memory, and the machine's fp32 GEMM rate. frames and channels default to the model's."""

DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print("usage: mirstd models   (lists every registered method with its paper; * = shipped weights)")
        return 0
    if argv:
        raise ConfigError(f"mirstd models takes no arguments, got {argv}")
    shipped = set(pretrained_names())
    print("(* = pretrained weights ship with mirstd: `mirstd predict model=<name> source=...`)")
    for name, doc in list_models().items():
        mark = "*" if name in shipped else " "
        print(f"{name:<16}{mark} {doc}")
    return 0


def profile(
    model: str,
    model_args: dict | None = None,
    imgsz: int | list[int] = 384,
    frames: int | None = None,
    batch: int = 1,
    channels: int | None = None,
    device: str = "cpu",
    dtype: str = "float32",
    warmup: int = 10,
    iters: int = 20,
    threads: int | None = None,
    out: str | None = None,
) -> dict:
    """Profile a registered model on a random clip; returns (and optionally writes) the report."""
    if dtype not in DTYPES:
        raise ConfigError(f"dtype={dtype!r}; valid: {', '.join(DTYPES)}")
    from mirstd.utils.device import resolve_device

    device = resolve_device(device)
    net = create(str(model), **(model_args or {}))
    h, w = (imgsz, imgsz) if isinstance(imgsz, int) else (int(imgsz[0]), int(imgsz[1]))
    t = int(frames or net.num_frames or 5)
    c = int(channels or net.in_channels)
    rep = profile_model(net, (int(batch), c, t, h, w), device=device, warmup=int(warmup), iters=int(iters),
                        dtype=DTYPES[dtype], threads=threads)  # fmt: skip
    rep["model"], rep["model_kwargs"] = str(model), dict(model_args or {})
    if out:
        atomic_write_text(out, json.dumps(rep, indent=1, default=str))
    return rep


def profile_main(argv: list[str]) -> int:
    if any(a in ("-h", "--help", "help") for a in argv):
        print(PROFILE_HELP)
        return 0
    cfg = task_config("profile", parse_overrides(argv))
    if not cfg.get("model"):
        raise ConfigError("mirstd profile needs model=NAME")
    rep = profile(**cfg)
    print(f"# profile: {cfg['model']}\n")
    print(format_profile(rep))
    if cfg.get("out"):
        print(f"wrote {cfg['out']}")
    return 0
