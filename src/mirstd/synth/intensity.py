"""Target amplitude from a requested SCR (spec ``synth.md`` §6), with ``mirstd.utils.scr``'s
``scr_clean`` background ring (box of M + 20 px, minus M, minus other targets dilated by 2 px).

Every target's contribution to the frame is affine in its amplitude A: F = F0 + Σ_j (h_j + A_j g_j),
with, per pixel of the target's tile,

* additive fusion:   h = 0,               g = w·τ            (w = V·G, the sensor response)
* occluding fusion:  h = α·(μ_b − F0),    g = α·w·τ̂          (F = (1−α)F0 + α(μ_b + A w τ̂))

Closed form (spec §6.3): A = (σ_s·S·max(σ_b, 1) + μ_b − mean_M(F_¬j)) / mean_M(g), where F_¬j is
the frame without target j's A-term. Refinement: the same formula with μ_b, σ_b re-measured on the
composed frame (template tails in the ring), repeated up to ``iters`` times until
|SCR_measured/S − 1| < 1e-3 — the fixed point of the spec's A ← A·S/SCR_measured update.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirstd.synth.render import Tile
from mirstd.utils.scr import DEFAULT_MARGIN, SIGMA_FLOOR, local_background


@dataclass
class Solved:
    amplitude: float
    mu_b: float
    sigma_b: float
    scr_target: float  # the SCR actually aimed at (requested, or reduced by the full-scale guard)
    guard: str | None  # None, "bright_background" (A clamped at 0) or "full_scale" (S reduced)


def full_mask(tile: Tile, shape: tuple[int, int]) -> np.ndarray:
    m = np.zeros(shape, bool)
    m[tile.slices] = tile.mask
    return m


def _window(mask_tile: Tile, shape: tuple[int, int], margin: int) -> tuple[slice, slice]:
    """Crop holding the scr_clean window plus 3 px (so others' 2-px dilation is exact)."""
    rows = np.flatnonzero(mask_tile.mask.any(1)) + mask_tile.r0
    cols = np.flatnonzero(mask_tile.mask.any(0)) + mask_tile.c0
    pad = margin + 3
    h, w = shape
    return slice(max(rows[0] - pad, 0), min(rows[-1] + pad + 1, h)), slice(
        max(cols[0] - pad, 0), min(cols[-1] + pad + 1, w)
    )


def scr_local(
    frame: np.ndarray, tile: Tile, masks: list[np.ndarray], j: int, margin: int = DEFAULT_MARGIN
) -> tuple[float, float, float]:
    """(mu_t, mu_b, sigma_b) of target j under ``scr_clean``, computed on a crop (same result as
    on the full frame)."""
    win = _window(tile, frame.shape, margin)
    mj = masks[j][win]
    others = np.zeros_like(mj)
    for k, m in enumerate(masks):
        if k != j:
            others |= m[win]
    crop = frame[win]
    mu_b, sd_b = local_background(crop, mj, others if others.any() else None, margin)
    return float(crop[mj].mean()), mu_b, sd_b


def solve_frame(
    f0: np.ndarray,
    tiles: list[Tile],
    response: np.ndarray,
    scr: list[float],
    signs: list[float],
    iters: int = 3,
    full_scale: float = 250.0,
    margin: int = DEFAULT_MARGIN,
) -> tuple[np.ndarray, list[Solved]]:
    """Insert all targets of one frame at their requested SCRs. Returns (frame, per-target results)."""
    shape = f0.shape
    masks = [full_mask(t, shape) for t in tiles]
    frame = f0.astype(np.float64, copy=True)
    gs, hs, amps, mus, guards = [], [], [], [], []
    for j, t in enumerate(tiles):  # closed form on F0 (+ the targets already inserted)
        _, mu_b, sd_b = scr_local(frame, t, masks, j, margin)
        w = response[t.slices]
        if t.occluding:
            g = t.alpha * w * t.tau
            h = t.alpha * (mu_b - f0[t.slices])
        else:
            g, h = w * t.tau, np.zeros_like(t.tau)
        frame[t.slices] += h
        gm = float(g[t.mask].mean())
        a = (signs[j] * scr[j] * max(sd_b, SIGMA_FLOOR) + mu_b - float(frame[t.slices][t.mask].mean())) / gm
        frame[t.slices] += a * g
        gs.append(g), hs.append(h), amps.append(a), mus.append(mu_b), guards.append(None)
    targets = list(scr)

    def refine(skip: set[int]) -> None:
        for _ in range(iters):
            worst = 0.0
            for j, t in enumerate(tiles):
                if j in skip:
                    continue
                mu_t, mu_b, sd_b = scr_local(frame, t, masks, j, margin)
                sd = max(sd_b, SIGMA_FLOOR)
                worst = max(worst, abs(abs(mu_t - mu_b) / sd / targets[j] - 1.0))
                gm = float(gs[j][t.mask].mean())
                a = (signs[j] * targets[j] * sd + mu_b - (mu_t - amps[j] * gm)) / gm
                frame[t.slices] += (a - amps[j]) * gs[j]
                amps[j] = a
            if worst < 1e-3:
                break

    refine(set())
    for _round in range(3):  # guards (spec §6.5), then re-refine the others; repeat until stable
        new_guard = False
        for j, t in enumerate(tiles):  # wrong sign first: it changes the neighbours' peaks
            if guards[j] is None and signs[j] * amps[j] < 0:
                frame[t.slices] -= amps[j] * gs[j]
                amps[j], guards[j], new_guard = 0.0, "bright_background", True
        for j, t in enumerate(tiles):
            if guards[j] == "bright_background":
                continue
            g = gs[j]
            hit = g > 1e-3 * np.abs(g).max()  # pixels the target's A-term really changes
            val = frame[t.slices][hit]
            if amps[j] != 0 and (val.max() > full_scale + 1e-9 or val.min() < -1e-9):
                base = val - amps[j] * g[hit]
                lim = (full_scale - base) / g[hit] if amps[j] > 0 else -base / g[hit]
                a_new = max(float(lim.min()), 0.0) if amps[j] > 0 else min(float(lim.max()), 0.0)
                frame[t.slices] += (a_new - amps[j]) * g
                new_guard = new_guard or guards[j] is None
                amps[j], guards[j] = a_new, "full_scale"
        guarded = {j for j, g in enumerate(guards) if g is not None}
        if not new_guard or len(guarded) == len(tiles):
            break
        refine(guarded)  # a guarded neighbour changed the others' rings
    out = []
    for j, t in enumerate(tiles):
        mu_t, mu_b, sd_b = scr_local(frame, t, masks, j, margin)
        if guards[j] is not None:  # record the SCR actually reached
            targets[j] = abs(mu_t - mu_b) / max(sd_b, SIGMA_FLOOR)
        out.append(Solved(float(amps[j]), mu_b, sd_b, float(targets[j]), guards[j]))
    return frame, out
