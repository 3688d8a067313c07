"""Model cost: parameters, FLOPs, latency, throughput, memory, and the machine's fp32 GEMM rate.

Conventions (spec ``metrics.md`` §11):

- **Params**: ``params_total`` = every ``nn.Parameter``; ``params_used`` = those that receive a
  gradient from backward of the sum of all outputs of one forward pass in eval mode.
- **FLOPs** = 2 x multiply-accumulates counted by ``torch.utils.flop_counter.FlopCounterMode``
  (convolutions, linear/matmul/bmm/baddbmm, attention; bias adds, BN, activations, pooling,
  interpolation and FFT are not counted). ``macs`` = FLOPs / 2. thop numbers are MACs.
- **Latency**: model built once, ``eval()`` + ``torch.inference_mode()``, batch 1, fixed input
  B x C x T x H x W, ``warmup`` untimed iterations, then ``iters`` timed ones with
  ``torch.cuda.synchronize()`` before starting and before stopping each timer on GPU; median and IQR.
  FPS = 1 / median (one output frame per forward).
- **Memory**: GPU ``torch.cuda.max_memory_allocated`` during one forward; CPU: params + buffers bytes
  plus the sum of every leaf module's output bytes (an upper bound on live activations).
- **GEMM rate**: best of several fp32 ``n x n`` matmuls, 2 n^3 / time; ``achieved_fraction`` =
  (FLOPs / median latency) / GEMM rate.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Sequence as _Seq
from typing import Any

import numpy as np
import torch
import torch.nn as nn


def _as_tuple(inputs: Any) -> tuple[Any, ...]:
    return inputs if isinstance(inputs, tuple) else (inputs,)


def _tensors(out: Any) -> list[torch.Tensor]:
    if isinstance(out, torch.Tensor):
        return [out]
    if isinstance(out, dict):
        return [t for v in out.values() for t in _tensors(v)]
    if isinstance(out, (list, tuple)):
        return [t for v in out for t in _tensors(v)]
    return []


def count_flops(model: nn.Module, inputs: Any) -> tuple[int, dict[str, int]]:
    """FLOPs (= 2 x MACs) of one forward with ``torch.utils.flop_counter``; per-module totals.

    The per-module dict maps FlopCounterMode's module path (``"Global"`` = whole model, then
    ``"Global.<name>"``...) to the FLOPs counted inside it.
    """
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model(*_as_tuple(inputs))
    per = {name: int(sum(ops.values())) for name, ops in counter.get_flop_counts().items()}
    return int(counter.get_total_flops()), per


def count_params(model: nn.Module, inputs: Any | None = None) -> dict[str, int]:
    """``{"params_total", "params_used"}``; ``params_used`` needs ``inputs`` (forward + backward)."""
    total = sum(p.numel() for p in model.parameters())
    out = {"params_total": int(total)}
    if inputs is not None:
        was_training = model.training
        model.eval()
        model.zero_grad(set_to_none=True)
        with torch.enable_grad():
            outs = _tensors(model(*_as_tuple(inputs)))
            loss = sum(t.float().sum() for t in outs if t.is_floating_point())
            if isinstance(loss, torch.Tensor) and loss.requires_grad:
                loss.backward()
        out["params_used"] = int(sum(p.numel() for p in model.parameters() if p.grad is not None))
        model.zero_grad(set_to_none=True)
        model.train(was_training)
    return out


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def gemm_rate(device: str | torch.device = "cpu", n: int | None = None, repeats: int = 5) -> float:
    """Achievable fp32 matmul rate in FLOP/s: best of ``repeats`` ``n x n`` products (2 n^3 each)."""
    device = torch.device(device)
    n = n or (4096 if device.type == "cuda" else 1024)
    g = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(n, n, generator=g).to(device)
    b = torch.randn(n, n, generator=g).to(device)
    best = float("inf")
    with torch.inference_mode():
        torch.mm(a, b)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return 2.0 * n**3 / best


def time_forward(model: nn.Module, inputs: Any, device: torch.device, warmup: int, iters: int) -> np.ndarray:
    """Per-iteration latencies in seconds (synchronised), after ``warmup`` untimed calls."""
    args = _as_tuple(inputs)
    times = []
    with torch.inference_mode():
        for _ in range(warmup):
            model(*args)
        for _ in range(iters):
            _sync(device)
            t0 = time.perf_counter()
            model(*args)
            _sync(device)
            times.append(time.perf_counter() - t0)
    return np.asarray(times)


def _activation_bytes(model: nn.Module, inputs: Any) -> int:
    """Sum of the bytes of every leaf module's output in one forward: an upper bound of live
    activations (nothing freed), used on CPU where no allocator peak counter exists."""
    total = 0

    def hook(_m: nn.Module, _i: Any, out: Any) -> None:
        nonlocal total
        total += sum(t.numel() * t.element_size() for t in _tensors(out))

    handles = [m.register_forward_hook(hook) for m in model.modules() if not list(m.children())]
    try:
        with torch.inference_mode():
            model(*_as_tuple(inputs))
    finally:
        for h in handles:
            h.remove()
    return total


def profile_model(
    model: nn.Module,
    input_shape: _Seq[int] = (1, 3, 5, 384, 384),
    device: str | torch.device = "cpu",
    warmup: int = 10,
    iters: int = 20,
    dtype: torch.dtype = torch.float32,
    threads: int | None = None,
    gemm: bool = True,
    seed: int = 0,
) -> dict[str, Any]:
    """Params, FLOPs, latency (median/IQR), throughput, memory and GEMM fraction of one model."""
    device = torch.device(device)
    if threads is not None:
        torch.set_num_threads(int(threads))
    torch.manual_seed(seed)
    model = model.to(device=device, dtype=dtype).eval()
    x = torch.rand(*input_shape, generator=torch.Generator().manual_seed(seed)).to(device=device, dtype=dtype)
    rep: dict[str, Any] = {"input_shape": list(input_shape), "device": str(device), "dtype": str(dtype).replace("torch.", ""),
                           "threads": torch.get_num_threads(), "torch": torch.__version__,
                           "platform": platform.platform()}  # fmt: skip
    rep.update(count_params(model, x))
    flops, per_module = count_flops(model, x)
    rep.update(
        flops=flops, macs=flops // 2, gflops=flops / 1e9, gmacs=flops / 2e9, flops_per_module=per_module
    )
    t = time_forward(model, x, device, warmup, iters)
    q1, med, q3 = (float(v) for v in np.percentile(t, [25, 50, 75]))
    rep.update(latency_ms_median=med * 1e3, latency_ms_iqr=(q3 - q1) * 1e3, latency_ms_q1=q1 * 1e3,
               latency_ms_q3=q3 * 1e3, warmup=warmup, iters=iters, fps=1.0 / med,
               throughput_fps=input_shape[0] / med)  # fmt: skip
    rep["bytes_params"] = int(sum(p.numel() * p.element_size() for p in model.parameters()))
    rep["bytes_buffers"] = int(sum(b.numel() * b.element_size() for b in model.buffers()))
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
        with torch.inference_mode():
            model(x)
        _sync(device)
        rep["peak_memory_bytes"] = int(torch.cuda.max_memory_allocated(device))
        rep["peak_memory_kind"] = "torch.cuda.max_memory_allocated"
    else:
        act = _activation_bytes(model, x)
        rep["peak_memory_bytes"] = rep["bytes_params"] + rep["bytes_buffers"] + act
        rep["peak_memory_kind"] = "CPU: params + buffers + sum of leaf-module outputs (upper bound)"
    if gemm:
        rate = gemm_rate(device)
        rep["gemm_flops_per_s"] = rate
        rep["achieved_flops_per_s"] = flops / med
        rep["achieved_fraction"] = flops / med / rate
    return rep


def format_profile(rep: dict[str, Any]) -> str:
    """Markdown summary of a :func:`profile_model` report."""
    shape = "x".join(str(v) for v in rep["input_shape"])
    rows = [
        ("input (BxCxTxHxW)", shape),
        ("device / dtype / threads", f"{rep['device']} / {rep['dtype']} / {rep['threads']}"),
        ("params registered", f"{rep['params_total']:,}"),
        ("params used (forward+backward)", f"{rep.get('params_used', float('nan')):,}"),
        ("FLOPs (FlopCounterMode, = 2xMACs)", f"{rep['flops']:,} ({rep['gflops']:.3f} G)"),
        ("MACs", f"{rep['macs']:,} ({rep['gmacs']:.3f} G)"),
        ("latency median / IQR (ms)", f"{rep['latency_ms_median']:.3f} / {rep['latency_ms_iqr']:.3f}"),
        ("FPS (1 / median, batch 1)", f"{rep['fps']:.2f}"),
        ("peak memory (bytes)", f"{rep['peak_memory_bytes']} [{rep['peak_memory_kind']}]"),
    ]
    if "gemm_flops_per_s" in rep:
        rows.append(("fp32 GEMM rate (GFLOP/s)", f"{rep['gemm_flops_per_s'] / 1e9:.2f}"))
        rows.append(("achieved / GEMM rate", f"{rep['achieved_fraction']:.3%}"))
    return "\n".join(["| quantity | value |", "|---|---|", *[f"| {a} | {b} |" for a, b in rows]])
