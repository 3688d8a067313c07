"""Deterministic random streams (spec ``synth.md`` §9).

Every random draw comes from ``numpy.random.Generator(PCG64(SeedSequence(root_seed,
spawn_key=(sequence, component, ...))))``, so a sequence or a frame is reproducible on its own,
independent of how many sequences are produced or in which order/process. No global RNG is used.

Component ids: 0 background, 1 sensor fixed pattern, 2 ego-motion, 3 target layout,
10 + j target j, 1000 + t temporal noise of frame t, 2000 + t glint/cloud evolution of frame t,
``PLAN_KEY`` the dataset planner.
"""

from __future__ import annotations

import numpy as np

BACKGROUND, SENSOR, EGO, LAYOUT, TARGET0, NOISE0, EVOLVE0 = 0, 1, 2, 3, 10, 1000, 2000
PLAN_KEY = 2**31  # larger than any sequence index: the planner's own stream


def stream(root_seed: int, *key: int) -> np.random.Generator:
    """``Generator(PCG64)`` of ``SeedSequence(root_seed, spawn_key=key)``."""
    if int(root_seed) < 0:
        raise ValueError(f"seed must be a non-negative integer, got {root_seed}")
    ss = np.random.SeedSequence(int(root_seed), spawn_key=tuple(int(k) for k in key))
    return np.random.Generator(np.random.PCG64(ss))


def uniform(rng: np.random.Generator, lo_hi: tuple[float, float] | list[float] | float) -> float:
    """U[lo, hi] from a 2-list, or the value itself when a scalar is given (a fixed parameter)."""
    if isinstance(lo_hi, (int, float)):
        return float(lo_hi)
    lo, hi = lo_hi
    return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
