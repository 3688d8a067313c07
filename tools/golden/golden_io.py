"""Small summaries of a reference output, and the comparison the golden tests make with them.

A summary keeps (all float64, as exact JSON reprs): a central crop (<= 4 channels x 8 x 8), 128
seeded sample values, and full-tensor statistics: sum, sum |x|, sum x^2, min, max and a seeded
projection ``sum w x`` (w ~ N(0, 1), seed 12345). ``compare`` checks ``max |x - ref| <= tol`` on
the crop and the samples directly, and for the full tensor the bounds that ``max |x - ref| <= tol``
implies: ``|sum diff| <= tol N``, ``|sum|x| diff| <= tol N``, ``|proj diff| <= tol sum|w|``,
``|min/max diff| <= tol``, ``|sum x^2 diff| <= tol (2 sum|ref| + tol N)``. A wrong layer, key or
residual moves all of them by orders of magnitude more than any tolerance used here.
"""

from __future__ import annotations

from typing import Any

import torch

PROJ_SEED, SAMPLE_SEED, N_SAMPLES, CROP, MAX_CH = 12345, 54321, 128, 8, 4


def _crop(x: torch.Tensor) -> torch.Tensor:
    while x.dim() > 3:
        x = x[0] if x.dim() > 4 or x.shape[0] == 1 else x[:, 0]
    if x.dim() == 2:
        x = x[None]
    c, h, w = x.shape
    h0, w0 = max(0, (h - CROP) // 2), max(0, (w - CROP) // 2)
    return x[:MAX_CH, h0 : h0 + CROP, w0 : w0 + CROP]


def _weights(n: int) -> torch.Tensor:
    return torch.randn(n, generator=torch.Generator().manual_seed(PROJ_SEED), dtype=torch.float64)


def _index(n: int) -> torch.Tensor:
    return torch.randperm(n, generator=torch.Generator().manual_seed(SAMPLE_SEED))[:N_SAMPLES]


def summarize(t: torch.Tensor) -> dict[str, Any]:
    x = t.detach().cpu().double()
    flat = x.flatten()
    w = _weights(flat.numel())
    return {
        "shape": list(x.shape),
        "crop": _crop(x).tolist(),
        "samples": flat[_index(flat.numel())].tolist(),
        "sum": float(flat.sum()),
        "abs_sum": float(flat.abs().sum()),
        "sq_sum": float((flat * flat).sum()),
        "min": float(flat.min()),
        "max": float(flat.max()),
        "proj": float((w * flat).sum()),
        "proj_w_abs_sum": float(w.abs().sum()),
    }


def compare(ref: dict[str, Any], t: torch.Tensor, tol: float) -> dict[str, float]:
    """Measured differences against summary ``ref``; raises AssertionError naming every check that
    exceeds ``tol`` (or its implied full-tensor bound)."""
    x = t.detach().cpu().double()
    if list(x.shape) != ref["shape"]:
        raise AssertionError(f"shape {list(x.shape)} != reference {ref['shape']}")
    flat = x.flatten()
    n = flat.numel()
    got = {
        "crop_max": float((_crop(x) - torch.tensor(ref["crop"], dtype=torch.float64)).abs().max()),
        "sample_max": float(
            (flat[_index(n)] - torch.tensor(ref["samples"], dtype=torch.float64)).abs().max()
        ),
        "sum": abs(float(flat.sum()) - ref["sum"]) / n,
        "abs_sum": abs(float(flat.abs().sum()) - ref["abs_sum"]) / n,
        "proj": abs(float((_weights(n) * flat).sum()) - ref["proj"]) / ref["proj_w_abs_sum"],
        "min": abs(float(flat.min()) - ref["min"]),
        "max": abs(float(flat.max()) - ref["max"]),
        "sq_sum": abs(float((flat * flat).sum()) - ref["sq_sum"]) / (2 * ref["abs_sum"] + tol * n),
    }
    bad = {k: v for k, v in got.items() if not v <= tol}
    if bad:
        raise AssertionError(f"exceeds tol {tol:g}: {bad} (all: {got})")
    return got
