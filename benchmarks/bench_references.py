"""CPU inference latency of mirstd's ResUNet-DTUM, SMFNet and PSTFNet next to the authors' code.

``.venv/bin/python benchmarks/bench_references.py --ref-dtum DIR --ref-smfnet DIR --ref-pstfnet DIR
[--threads 2] [--iters 7] [--models dtum,smfnet,pstfnet] [--quick] [--out PATH]``

Each ``--ref-*`` is a checkout of the reference repository outside mirstd (never part of it):

* ``--ref-dtum``: TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM (``models/model_res_UNet.py``);
* ``--ref-smfnet``: psile/SMFNet (``SMFNET_model/SMFNET.py``, ``STNetwork``);
* ``--ref-pstfnet``: Bo11anFu/CS-Net (``csnet/models/multiframe/PSTFNet/model_PSTFNet.py``).

A row whose path is not given is skipped with a message. The reference code is imported as is;
the run-time shims (no file is edited): its folder first on ``sys.path``, a stub ``thop`` module
(imported for profiling only), SMFNet's ``mcfg["pretrained_3d"] = False`` (no Kinetics download;
the weights are overwritten) and, during DTUM reference calls, ``Tensor.cuda(device)`` as
``Tensor.to(device)`` (its direction code is written for the GPU).

Weights are shared: mirstd's model gets distinct seeded weights (every BN with its own
statistics), copied into the reference under its names (``mirstd.models.weights.to_reference``),
and the max |ours - reference| of the outputs on the same clip is reported in float32 (the timed
models) and float64 (copies; ``--no-float64`` skips it). The reference gets the clip normalised as
mirstd normalises it inside ``forward``. DTUM's float32 difference is not rounding-sized: its
direction code is the arg-max position of each 2x2 window, so a window whose two largest values lie
within an ulp flips its code under any change of summation order (measured: one flip at level 1 at
256 px moves 171 of 65,536 logits by up to 3e-4); in float64 there is no such near-tie.

Per model, ``eval()`` + ``torch.inference_mode()``, batch 1, float32: two warm-up calls each, then
``--iters`` timed calls of ours and the reference interleaved (the order alternating), so both
see the same machine load; median latency, ratio ours / reference, FLOPs
(``mirstd.metrics.efficiency.count_flops``, 2 x MACs) and the achieved FLOP/s as a fraction of the
rate of an fp32 2048 x 2048 GEMM timed in the same interleaved loop (median). SMFNet is timed twice: the eval forward of the model
itself and its ``fuse()`` inference copy (what ``mirstd predict`` runs).

Writes ``benchmarks/results/references.json`` and prints a Markdown table.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import json
import os
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

# The 2 cores are shared with other jobs: OpenMP threads that spin while waiting make 2-thread runs
# 5x slower under load (see bench_models.py); yield instead.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import torch  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from mirstd.metrics.efficiency import count_flops, gemm_rate  # noqa: E402
from mirstd.models.weights import to_reference  # noqa: E402
from mirstd.utils.io import atomic_write_text  # noqa: E402

sys.path.insert(0, str(ROOT / "tools" / "golden"))
import make_goldens  # noqa: E402

Run = Callable[[], torch.Tensor]


# ----------------------------------------------------------------------------------------------
# machine
# ----------------------------------------------------------------------------------------------
def cpu_info() -> dict[str, Any]:
    """CPU model, the ISA flags that matter for PyTorch's CPU kernels, and ATen's dispatch level."""
    name, flags = platform.processor(), set()
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and name in ("", platform.processor()):
                name = line.split(":", 1)[1].strip()
            elif line.startswith("flags") and not flags:
                flags = set(line.split(":", 1)[1].split())
    return {
        "cpu": name,
        "isa": {f: f in flags for f in ("avx2", "fma", "avx512f", "avx512_bf16", "amx_tile")},
        "torch_cpu_capability": torch.backends.cpu.get_cpu_capability(),
        "cores_visible": os.cpu_count(),
    }


# ----------------------------------------------------------------------------------------------
# reference imports (run-time shims only)
# ----------------------------------------------------------------------------------------------
# The reference builders and CPU shims are those of the golden-output generator (one place knows
# how to run the authors' code here): tools/golden/make_goldens.py.
def ref_dtum(d: str) -> torch.nn.Module:
    return make_goldens.build_dtum(d)


def ref_smfnet(d: str) -> torch.nn.Module:
    return make_goldens.build_smfnet(d, "itsdt")


def ref_pstfnet(d: str) -> torch.nn.Module:
    return make_goldens.build_pstfnet(d)


# ----------------------------------------------------------------------------------------------
# cases: (ours, reference, input) with shared weights
# ----------------------------------------------------------------------------------------------
def _seeded(key: str, seed: int = 0) -> torch.nn.Module:
    return make_goldens.seeded_mirstd(key, seed)


def _share(key: str, mine: torch.nn.Module, ref: torch.nn.Module) -> torch.nn.Module:
    ref.load_state_dict(to_reference(key, mine, ref.state_dict()), strict=True)
    return ref.eval()


def _clip(size: int) -> torch.Tensor:
    return torch.rand(1, 3, 5, size, size, generator=torch.Generator().manual_seed(1))


def _dtum_ref_out(ref: torch.nn.Module, x: torch.Tensor) -> torch.Tensor:
    with make_goldens.cuda_as_to():
        return ref(x, None, 0)[0][:, :, 0]


def case_dtum(d: str, size: int) -> dict[str, Any]:
    mine = _seeded("dtum")
    return {
        "ours": {"": mine},
        "ref": _share("dtum", mine, ref_dtum(d)),
        "clip": _clip(size),
        "ref_input": lambda m, clip: m.norm(clip),  # the reference takes normalised clips
        "ref_out": _dtum_ref_out,
        "ref_flop_args": lambda x: (x, None, 0),
    }


def case_smfnet(d: str, size: int) -> dict[str, Any]:
    mine = _seeded("smfnet_itsdt")
    return {
        "ours": {"": mine, "fused": mine.fuse()},
        "variants": {"fused": lambda m: m.fuse()},  # how each non-plain entry is made from the model
        "ref": _share("smfnet_itsdt", mine, ref_smfnet(d)),
        "clip": _clip(size),
        "ref_input": lambda m, clip: (clip - m.mean) / m.std,
        "ref_out": lambda ref, x: ref(x)[0],
        "ref_flop_args": lambda x: (x,),
    }


def case_pstfnet(d: str, size: int) -> dict[str, Any]:
    mine = _seeded("pstfnet")  # paper_mode=True: the lab model (fixed 24 x 24 MSFM grid at 384 px)
    return {
        "ours": {"": mine},
        "ref": _share("pstfnet", mine, ref_pstfnet(d)),
        "clip": _clip(size),
        "ref_input": lambda m, clip: m.norm(clip),
        "ref_out": lambda ref, x: ref(x),
        "ref_flop_args": lambda x: (x,),
    }


CASES = {
    "dtum": ("ResUNet-DTUM", "ref_dtum", 256, case_dtum),
    "smfnet": ("SMFNet (ITSDT neck)", "ref_smfnet", 512, case_smfnet),
    "pstfnet": ("PSTFNet (paper mode)", "ref_pstfnet", 384, case_pstfnet),
}


# ----------------------------------------------------------------------------------------------
# timing
# ----------------------------------------------------------------------------------------------
def interleaved(runs: dict[str, Run], iters: int, warmup: int = 2) -> dict[str, list[float]]:
    """``iters`` timings of every run, alternating the order each round so that no run always
    follows the same neighbour (the machine is shared: both see the same load)."""
    times: dict[str, list[float]] = {k: [] for k in runs}
    names = list(runs)
    for _ in range(warmup):
        for fn in runs.values():
            fn()
    for i in range(iters):
        for k in names if i % 2 == 0 else names[::-1]:
            t0 = time.perf_counter()
            runs[k]()
            times[k].append(time.perf_counter() - t0)
    return times


def _float64_diffs(case: dict[str, Any]) -> dict[str, float]:
    """max |ours - reference| with both in float64 (no arg-max near-ties, see the module notes);
    the fused copy is made from the float64 model (BN folded in float64)."""
    ref = copy.deepcopy(case["ref"]).double()
    clip = case["clip"].double()
    mine = copy.deepcopy(case["ours"][""]).double()
    out_ref = case["ref_out"](ref, case["ref_input"](mine, clip))
    variants = {"": lambda m: m, **case.get("variants", {})}
    return {k: float((make(mine)(clip) - out_ref).abs().max()) for k, make in variants.items()}


GEMM_N = 2048


def _gemm_run() -> Run:
    g = torch.Generator().manual_seed(0)
    a, b = torch.randn(GEMM_N, GEMM_N, generator=g), torch.randn(GEMM_N, GEMM_N, generator=g)
    return lambda: torch.mm(a, b)


def bench_case(name: str, case: dict[str, Any], iters: int, f64: bool) -> list[dict[str, Any]]:
    """Time ours, the reference and a 2048^2 fp32 GEMM interleaved: the GEMM rate each model is
    compared with is measured under the same load (best-of-N in an idle moment would flatter it)."""
    ref, clip = case["ref"], case["clip"]
    x_ref = case["ref_input"](case["ours"][""], clip)
    runs: dict[str, Run] = {
        f"ours{'_' + k if k else ''}": (lambda m=m: m(clip)) for k, m in case["ours"].items()
    }
    runs["ref"] = lambda: case["ref_out"](ref, x_ref)
    runs["gemm"] = _gemm_run()
    with torch.inference_mode():
        outs = {k: fn() for k, fn in runs.items()}
        times = interleaved(runs, iters)
        with make_goldens.cuda_as_to():
            flops_ref, _ = count_flops(ref, case["ref_flop_args"](x_ref))
        flops = {f"ours{'_' + k if k else ''}": count_flops(m, clip)[0] for k, m in case["ours"].items()}
        diff64 = _float64_diffs(case) if f64 else {}
    t_ref, out_ref = statistics.median(times["ref"]), outs.pop("ref")
    outs.pop("gemm")
    rate = 2 * GEMM_N**3 / statistics.median(times["gemm"])
    rows = []
    for (key, model_key), out in zip(((k, k[5:]) for k in outs), outs.values()):
        t = statistics.median(times[key])
        rows.append(
            {
                "model": name + (f" ({model_key})" if model_key else ""),
                "input_shape": list(clip.shape),
                "ours_s_median": round(t, 4),
                "ref_s_median": round(t_ref, 4),
                "ratio_ours_over_ref": round(t / t_ref, 3),
                "ours_s_all": [round(v, 4) for v in times[key]],
                "ref_s_all": [round(v, 4) for v in times["ref"]],
                "gflops_ours": round(flops[key] / 1e9, 3),
                "gflops_ref": round(flops_ref / 1e9, 3),
                "ours_flops_per_s_over_gemm": round(flops[key] / t / rate, 3),
                "ref_flops_per_s_over_gemm": round(flops_ref / t_ref / rate, 3),
                "gemm_fp32_gflops_per_s_interleaved": round(rate / 1e9, 2),
                "max_abs_diff_float32": float((out.float() - out_ref.float()).abs().max()),
                "max_abs_diff_float64": diff64.get(model_key),
                "ref_output_abs_max": float(out_ref.abs().max()),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--ref-dtum", help="checkout of TinaLRJ/Multi-frame-infrared-small-target-detection-DTUM")
    ap.add_argument("--ref-smfnet", help="checkout of psile/SMFNet")
    ap.add_argument("--ref-pstfnet", help="checkout of Bo11anFu/CS-Net (the folder holding csnet/)")
    ap.add_argument("--models", default=",".join(CASES))
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--iters", type=int, default=7)
    ap.add_argument("--quick", action="store_true", help="smoke run: 64 px DTUM/SMFNet, 1 iteration")
    ap.add_argument("--no-float64", action="store_true", help="skip the float64 equality check")
    ap.add_argument("--note", default="shared 2-core machine (other jobs running); ratios are interleaved")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results" / "references.json"))
    a = ap.parse_args()
    if a.quick:
        a.iters = 1
    torch.set_num_threads(a.threads)
    load0 = list(os.getloadavg())
    rate = gemm_rate("cpu", n=GEMM_N)  # best of 5 before the models, for reference
    rows, skipped = [], {}
    for key in a.models.split(","):
        title, opt, size, build = CASES[key]
        size = 64 if a.quick and key != "pstfnet" else size  # PSTFNet's lab model is wired to 384 px
        path = getattr(a, opt)
        if not path:
            skipped[key] = f"--{opt.replace('_', '-')} not given: {title} row skipped"
            print(skipped[key], flush=True)
            continue
        t0 = time.time()
        for r in bench_case(title, build(path, size), a.iters, not a.no_float64):
            rows.append(r)
            print(f"{r['model']} {size}px: ours {r['ours_s_median']:.3f} s, ref {r['ref_s_median']:.3f} s, "
                  f"ratio {r['ratio_ours_over_ref']:.3f}, max |diff| {r['max_abs_diff_float32']:.2e} "
                  f"({time.time() - t0:.0f} s)", flush=True)  # fmt: skip
    out = {
        "what": "eval forward, batch 1, float32, inference_mode; median of interleaved ours/reference calls",
        "note": a.note,
        "threads": a.threads,
        "iters": a.iters,
        **cpu_info(),
        "torch": torch.__version__,
        "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY"),
        "gemm_fp32_2048_gflops_per_s_best_of_5_at_start": round(rate / 1e9, 2),
        "loadavg_at_start": load0,
        "loadavg_at_end": list(os.getloadavg()),
        "models": rows,
        "skipped": skipped,
    }
    atomic_write_text(a.out, json.dumps(out, indent=2) + "\n")
    print(
        "\n| model | input | ours (s) | reference (s) | ours / ref | FLOP/s / GEMM (ours, ref) | max abs diff |"
    )
    print("|---|---|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['model']} | {'x'.join(map(str, r['input_shape']))} | {r['ours_s_median']:.3f} | "
              f"{r['ref_s_median']:.3f} | {r['ratio_ours_over_ref']:.3f} | {r['ours_flops_per_s_over_gemm']:.2f}, "
              f"{r['ref_flops_per_s_over_gemm']:.2f} | {r['max_abs_diff_float32']:.1e} |")  # fmt: skip


if __name__ == "__main__":
    main()
