"""Sensor model (spec ``synth.md`` §4), fixed to the detector grid.

``F0 = V·G·PSF*B_t + O + S(c) + N_t``: vignetting V, per-pixel gain G and offset O, column stripes S
(all fixed per sequence), temporal noise N_t (per frame), Gaussian optics blur. Dead / hot pixels
are written after the targets (:func:`apply_bad_pixels`), outside every target mask and SCR ring.
Quantisation: nominal DN → stored integers at 8, 14 (default, 1 DN = 64 LSB) or 16 bits.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from mirstd.synth.rng import uniform

# bit depth → (LSB per nominal DN, full scale)
QUANT = {8: (1.0, 255), 14: (64.0, 16383), 16: (256.0, 65535)}


@dataclass
class Sensor:
    vignette: np.ndarray  # V (H, W)
    gain: np.ndarray  # G (H, W)
    offset: np.ndarray  # O (H, W) + column stripes S
    noise_sigma: float
    psf_sigma: float
    dead: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))  # (n, 2) rows, cols
    hot: np.ndarray = field(default_factory=lambda: np.zeros((0, 2), int))
    bad_fraction: float = 0.0
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def response(self) -> np.ndarray:
        """w = V·G, the per-pixel response a target sees too (spec §5.3)."""
        return self.vignette * self.gain


def draw_sensor(
    rng: np.random.Generator, shape: tuple[int, int], cfg: dict[str, Any], real: bool = False
) -> Sensor:
    """Fixed-pattern layer of one sequence. ``real=True`` (user frames): only temporal noise."""
    h, w = shape
    if real:
        sn = uniform(rng, cfg.get("real_noise", 0.0))
        return Sensor(
            np.ones(shape), np.ones(shape), np.zeros(shape), sn, 0.0, params={"real": True, "noise_sigma": sn}
        )
    v = uniform(rng, cfg["vignetting"])
    sg, so, sc = (
        uniform(rng, cfg["gain_sigma"]),
        uniform(rng, cfg["offset_sigma"]),
        uniform(rng, cfg["stripe_sigma"]),
    )
    sn, sp = uniform(rng, cfg["noise_sigma"]), uniform(rng, cfg["psf_sigma"])
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    rho2 = ((yy - (h - 1) / 2) ** 2 + (xx - (w - 1) / 2) ** 2) / (((h - 1) / 2) ** 2 + ((w - 1) / 2) ** 2)
    vig = 1.0 - v * rho2
    gain = 1.0 + sg * rng.standard_normal(shape)
    offset = so * rng.standard_normal(shape) + sc * rng.standard_normal((1, w))
    frac = uniform(rng, cfg["bad_fraction"])
    params = dict(
        vignetting=v,
        gain_sigma=sg,
        offset_sigma=so,
        stripe_sigma=sc,
        noise_sigma=sn,
        psf_sigma=sp,
        bad_fraction=frac,
    )
    return Sensor(vig, gain, offset, sn, sp, bad_fraction=frac, params=params)


def expose(scene: np.ndarray, sensor: Sensor, rng_noise: np.random.Generator) -> np.ndarray:
    """F0 of one frame from the warped scene B_t (nominal DN, float64)."""
    b = ndimage.gaussian_filter(scene, sensor.psf_sigma, truncate=3.0) if sensor.psf_sigma > 0 else scene
    noise = sensor.noise_sigma * rng_noise.standard_normal(scene.shape) if sensor.noise_sigma > 0 else 0.0
    return sensor.response * b + sensor.offset + noise


def place_bad_pixels(sensor: Sensor, forbidden: np.ndarray, rng: np.random.Generator) -> None:
    """Draw dead and hot pixel positions (fixed per sequence) outside ``forbidden`` (union of every
    target mask and SCR ring over the sequence); a position that falls inside is re-drawn."""
    h, w = forbidden.shape
    allowed = np.flatnonzero(~forbidden.reshape(-1))
    n_each = rng.poisson(sensor.bad_fraction * h * w, 2)
    picks = []
    for n in n_each:
        n = int(min(n, allowed.size))
        idx = rng.choice(allowed, size=n, replace=False) if n else np.zeros(0, int)
        picks.append(np.stack(np.unravel_index(idx, (h, w)), -1))
    sensor.dead, sensor.hot = picks
    sensor.params.update(dead_pixels=int(len(picks[0])), hot_pixels=int(len(picks[1])))


def quantize(frame: np.ndarray, bit_depth: int) -> np.ndarray:
    """Nominal DN → stored integers: ``clip(round(lsb·value), 0, full)`` (uint8 or uint16)."""
    if bit_depth not in QUANT:
        raise ValueError(f"bit_depth must be one of {sorted(QUANT)}, got {bit_depth}")
    lsb, full = QUANT[bit_depth]
    q = np.clip(np.round(frame * lsb), 0, full)
    return q.astype(np.uint8 if bit_depth == 8 else np.uint16)


def apply_bad_pixels(stored: np.ndarray, sensor: Sensor, bit_depth: int) -> np.ndarray:
    full = QUANT[bit_depth][1]
    out = stored.copy()
    if len(sensor.dead):
        out[sensor.dead[:, 0], sensor.dead[:, 1]] = 0
    if len(sensor.hot):
        out[sensor.hot[:, 0], sensor.hot[:, 1]] = full
    return out
