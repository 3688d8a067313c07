"""Procedural infrared backgrounds (spec ``synth.md`` §2), in nominal 8-bit DN (float64).

Families: ``sky``, ``cloud``, ``ground`` (urban/rural clutter), ``sea`` (with glint) and
``horizon`` (sky above a tilted horizon line, ground below; the brief's "mixed horizon").
Each generator returns a :class:`Background` holding the static canvas, an optional drifting
cloud layer and sea-glint parameters; per-frame evolution is drawn from frame-indexed streams.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import ndimage

from mirstd.synth.rng import uniform

FAMILIES = ("sky", "cloud", "ground", "sea", "horizon")


def fbm(h: int, w: int, beta: float, rng: np.random.Generator, ax: float = 1.0) -> np.ndarray:
    """Fractional-Brownian field by spectral synthesis (spec §2.1), zero mean, unit std.

    Amplitude ``|f|^(-beta/2)``, ``f = sqrt((a_x u)^2 + v^2)`` in cycles/pixel (DC = 0), uniform
    random phase, inverse real FFT. ``ax > 1`` stretches structures along x (columns).
    """
    fy = np.fft.fftfreq(h)[:, None]
    fx = np.fft.rfftfreq(w)[None, :]
    f = np.sqrt((ax * fx) ** 2 + fy**2)
    f[0, 0] = 1.0
    amp = f ** (-beta / 2.0)
    amp[0, 0] = 0.0
    phase = rng.uniform(0.0, 2.0 * np.pi, size=amp.shape)
    field_ = np.fft.irfft2(amp * np.exp(1j * phase), s=(h, w))
    field_ -= field_.mean()
    sd = field_.std()
    return field_ / sd if sd > 0 else field_


def smoothstep(t0: float, t1: float, x: np.ndarray) -> np.ndarray:
    """Hermite step 0 → 1 between ``t0`` and ``t1`` (soft cloud edges)."""
    u = np.clip((x - t0) / max(t1 - t0, 1e-6), 0.0, 1.0)
    return u * u * (3.0 - 2.0 * u)


@dataclass
class Background:
    """A scene canvas in world coordinates plus its time-varying parts."""

    family: str
    canvas: np.ndarray  # (Hc, Wc) float64 static scene
    cloud: np.ndarray | None = None  # drifting cloud layer, added to the canvas
    cloud_drift: tuple[float, float] = (0.0, 0.0)  # px/frame (dx, dy)
    glint: dict[str, float] | None = None  # sea glint parameters (density, mean amp, sigma, ...)
    glint_region: np.ndarray | None = None  # bool canvas: where glint may appear (below the horizon)
    params: dict[str, Any] = field(default_factory=dict)


def _sky(h: int, w: int, rng: np.random.Generator, p: dict[str, Any]) -> np.ndarray:
    l0, g = uniform(rng, [40.0, 140.0]), uniform(rng, [-30.0, 30.0])
    at, bt = uniform(rng, [0.5, 3.0]), uniform(rng, [2.6, 3.4])
    p.update(L0=l0, gradient=g, texture_amp=at, texture_beta=bt)
    y = np.arange(h, dtype=np.float64)[:, None] / h
    return l0 + g * y + at * fbm(h, w, bt, rng)


def _cloud_layer(h: int, w: int, rng: np.random.Generator, p: dict[str, Any]) -> np.ndarray:
    bc = uniform(rng, [2.2, 3.0])
    c = uniform(rng, [15.0, 80.0]) * (1.0 if rng.random() < 0.6 else -1.0)  # warm or cold clouds
    t0, width = uniform(rng, [-0.5, 0.8]), uniform(rng, [0.2, 1.0])
    layer = c * smoothstep(t0, t0 + width, fbm(h, w, bc, rng))
    if rng.random() < 0.5:  # optional thin second layer
        c2 = 0.3 * c * uniform(rng, [0.3, 1.0])
        layer += c2 * smoothstep(0.0, 1.0, fbm(h, w, bc + 0.3, rng))
    p.update(cloud_beta=bc, cloud_contrast=c, cloud_t0=t0, cloud_edge=width)
    return layer


def _rect_mask(h: int, w: int, cx: float, cy: float, a: float, b: float, ang: float) -> tuple:
    """Slices and boolean mask of an oriented rectangle (half sides a, b) on an (h, w) canvas."""
    r = int(np.ceil(np.hypot(a, b))) + 1
    r0, r1 = max(int(cy) - r, 0), min(int(cy) + r + 1, h)
    c0, c1 = max(int(cx) - r, 0), min(int(cx) + r + 1, w)
    yy, xx = np.mgrid[r0:r1, c0:c1].astype(np.float64)
    ca, sa = np.cos(ang), np.sin(ang)
    u = (xx - cx) * ca + (yy - cy) * sa
    v = -(xx - cx) * sa + (yy - cy) * ca
    return (slice(r0, r1), slice(c0, c1)), (np.abs(u) <= a) & (np.abs(v) <= b)


def _ground(h: int, w: int, rng: np.random.Generator, p: dict[str, Any], noise_sigma: float) -> np.ndarray:
    l0, bg, a = uniform(rng, [50.0, 130.0]), uniform(rng, [1.4, 2.2]), uniform(rng, [8.0, 25.0])
    img = l0 + a * fbm(h, w, bg, rng)
    area_scale = h * w / (256.0 * 256.0)  # clutter counts scale with canvas area
    n_rect = int(round(rng.integers(5, 61) * area_scale))
    for _ in range(n_rect):
        sl, m = _rect_mask(
            h,
            w,
            rng.uniform(0, w),
            rng.uniform(0, h),
            rng.uniform(2, 30),
            rng.uniform(2, 30),
            rng.uniform(0, np.pi),
        )
        img[sl][m] += rng.uniform(5, 30) * rng.choice([-1.0, 1.0])
    n_road = int(rng.integers(0, 5))
    for _ in range(n_road):
        sl, m = _rect_mask(
            h,
            w,
            rng.uniform(0, w),
            rng.uniform(0, h),
            2.0 * max(h, w),
            rng.uniform(0.5, 1.5),
            rng.uniform(0, np.pi),
        )
        img[sl][m] += rng.uniform(5, 20) * rng.choice([-1.0, 1.0])
    n_hot = int(round(rng.integers(0, 21) * area_scale))
    spots = np.zeros((h, w))
    for _ in range(n_hot):  # target-like clutter: compact warm spots
        r, c = int(rng.integers(0, h)), int(rng.integers(0, w))
        spots[r, c] += rng.uniform(2.0, 6.0) * noise_sigma * 2 * np.pi * rng.uniform(0.7, 2.0) ** 2
    if n_hot:
        img += ndimage.gaussian_filter(spots, rng.uniform(0.7, 2.0), truncate=3.0)
    p.update(L0=l0, beta=bg, amp=a, rectangles=n_rect, roads=n_road, hot_spots=n_hot)
    return ndimage.gaussian_filter(img, 0.6, truncate=3.0)


def _sea(h: int, w: int, rng: np.random.Generator, p: dict[str, Any]) -> tuple[np.ndarray, np.ndarray]:
    l0, a, bs, ax = (
        uniform(rng, [50.0, 120.0]),
        uniform(rng, [2.0, 10.0]),
        uniform(rng, [2.0, 2.6]),
        uniform(rng, [2.0, 6.0]),
    )
    water = l0 + a * fbm(h, w, bs, rng, ax=ax)
    horizon = rng.random() < 0.5
    below = np.ones((h, w), bool)
    if horizon:
        hy = uniform(rng, [0.05, 0.35]) * h
        sky = _sky(h, w, rng, p)
        rows = np.arange(h)[:, None]
        blend = smoothstep(hy - 1.5, hy + 1.5, rows * np.ones((1, w)))
        water = blend * water + (1 - blend) * sky
        below = rows * np.ones((1, w)) > hy + 2
        p["horizon_row"] = hy
    p.update(sea_L0=l0, sea_amp=a, sea_beta=bs, anisotropy=ax, horizon=horizon)
    return water, below


def _horizon(h: int, w: int, rng: np.random.Generator, p: dict[str, Any], noise_sigma: float) -> np.ndarray:
    sp: dict[str, Any] = {}
    sky = _sky(h, w, rng, sp)
    if rng.random() < 0.5:
        sky = sky + _cloud_layer(h, w, rng, sp)
    gp: dict[str, Any] = {}
    ground = _ground(h, w, rng, gp, noise_sigma)
    hy, tilt = uniform(rng, [0.3, 0.7]) * h, uniform(rng, [-0.15, 0.15])
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float64)
    line = hy + tilt * (cols - w / 2) + 4.0 * fbm(1, w, 2.5, rng)[0][None, :]  # ridge line
    blend = smoothstep(-1.0, 1.0, rows - line)
    p.update(sky=sp, ground=gp, horizon_row=hy, tilt=tilt)
    return blend * ground + (1 - blend) * sky


HEADROOM_LEVEL = 170.0  # scene 99.9th percentile is compressed to at most this (targets need headroom)
FLOOR_LEVEL = 15.0  # and its 0.1th percentile lifted to at least this (no clipping at 0)


def _headroom(bg: Background) -> Background:
    """Map the scene's [0.1, 99.9] percentile range into [FLOOR_LEVEL, HEADROOM_LEVEL] when it
    exceeds it (affine, contrast only reduced), so bright targets stay below full scale (255
    nominal) and cold clouds, noise and dark targets are not clipped at 0."""
    full = bg.canvas + (bg.cloud if bg.cloud is not None else 0.0)
    lo, hi = (float(v) for v in np.percentile(full, [0.1, 99.9]))
    new_lo, new_hi = max(lo, FLOOR_LEVEL), min(hi, HEADROOM_LEVEL)
    if (new_lo, new_hi) != (lo, hi) and hi > lo:
        f = (new_hi - new_lo) / (hi - lo)
        bg.canvas = new_lo + (bg.canvas - lo) * f
        if bg.cloud is not None:
            bg.cloud = bg.cloud * f
        bg.params["level_map"] = [lo, hi, new_lo, new_hi]
    return bg


def _local_std(img: np.ndarray, win: int = 41) -> np.ndarray:
    """Standard deviation of ``img`` in a ``win``×``win`` window (about a target's SCR ring)."""
    m = ndimage.uniform_filter(img, win, mode="reflect")
    m2 = ndimage.uniform_filter(img * img, win, mode="reflect")
    return np.sqrt(np.maximum(m2 - m * m, 0.0))


def _hard_clutter(
    base: np.ndarray, rng: np.random.Generator, p: dict[str, Any], noise_sigma: float
) -> np.ndarray:
    """Target-like clutter of the hard split, added to a family's canvas ``base`` (nominal DN).

    The hard split's targets have S0 ∈ [0.5, 1] (MIST-Hard: SCR ≤ 1), i.e. a contrast of about
    one local background std σ_b over their ring. Hard clutter has that size and contrast: compact
    Gaussian spots (σ 0.5–1.5 px, the point-target range; peak 1–3·σ_loc, 20 % cold), small
    sharp-edged blobs (2–8 px, ±1.5–4·σ_loc) and short thin streaks (±1–3·σ_loc), where σ_loc =
    max(local std of ``base`` over 41×41 px, 2·σ_n). All static in world coordinates; counts scale
    with the canvas area (per 256×256 px: 150–300 spots, 10–30 blobs, 2–6 streaks)."""
    h, w = base.shape
    area = h * w / (256.0 * 256.0)
    sloc = np.maximum(_local_std(base), 2.0 * max(float(noise_sigma), 0.5))
    n_spot = int(round(rng.integers(150, 301) * area / 3))  # per width
    n_blob = int(round(rng.integers(10, 31) * area))
    n_streak = int(round(rng.integers(2, 7) * area))
    layer = np.zeros((h, w))
    for sig in (0.5, 0.9, 1.5):  # three widths, one Gaussian filter each
        deltas = np.zeros((h, w))
        rr, cc = rng.integers(0, h, n_spot), rng.integers(0, w, n_spot)
        amp = rng.uniform(1.0, 3.0, n_spot) * np.where(rng.random(n_spot) < 0.2, -1.0, 1.0)
        np.add.at(deltas, (rr, cc), amp * sloc[rr, cc] * 2 * np.pi * sig**2)  # peak ≈ amp·σ_loc
        layer += ndimage.gaussian_filter(deltas, sig, truncate=3.0)
    sharp = np.zeros((h, w))
    for n, half_a, half_b, contrast in (
        (n_blob, (1.0, 4.0), (1.0, 4.0), (1.5, 4.0)),
        (n_streak, (5.0, 30.0), (0.5, 1.0), (1.0, 3.0)),
    ):
        for _ in range(n):
            cx, cy = rng.uniform(0, w), rng.uniform(0, h)
            sl, m = _rect_mask(
                h, w, cx, cy, rng.uniform(*half_a), rng.uniform(*half_b), rng.uniform(0, np.pi)
            )
            r, c = min(int(cy), h - 1), min(int(cx), w - 1)
            sharp[sl][m] += rng.uniform(*contrast) * sloc[r, c] * rng.choice([-1.0, 1.0])
    layer += ndimage.gaussian_filter(sharp, 0.5, truncate=3.0)
    p["hard_clutter"] = {"spots": 3 * n_spot, "blobs": n_blob, "streaks": n_streak}
    return layer


def make_background(
    family: str, h: int, w: int, rng: np.random.Generator, noise_sigma: float = 1.0, hard: bool = False
) -> Background:
    """Canvas of ``family`` (one of :data:`FAMILIES`) of size (h, w) in nominal DN.

    ``hard=True`` (the ``test_hard`` split) adds :func:`_hard_clutter` to the canvas and triples the
    sea-glint density, drawn from ``rng`` after the family's own draws, so the normal part of a hard
    background is the same scene and ``hard=False`` is unchanged.
    """
    bg = _make(family, h, w, rng, noise_sigma)
    if hard:
        full = bg.canvas + (bg.cloud if bg.cloud is not None else 0.0)
        bg.canvas = bg.canvas + _hard_clutter(full, rng, bg.params, noise_sigma)
        if bg.glint is not None:
            bg.glint["density"] = min(3.0 * bg.glint["density"], 6e-3)
        bg.params["hard"] = True
    return _headroom(bg)


def _make(family: str, h: int, w: int, rng: np.random.Generator, noise_sigma: float) -> Background:
    p: dict[str, Any] = {}
    if family == "sky":
        return Background(family, _sky(h, w, rng, p), params=p)
    if family == "cloud":
        base = _sky(h, w, rng, p)
        layer = _cloud_layer(h, w, rng, p)
        spd, ang = uniform(rng, [0.0, 0.3]), rng.uniform(0, 2 * np.pi)
        drift = (spd * np.cos(ang), spd * np.sin(ang))
        p["cloud_drift"] = list(drift)
        return Background(family, base, cloud=layer, cloud_drift=drift, params=p)
    if family == "ground":
        return Background(family, _ground(h, w, rng, p, noise_sigma), params=p)
    if family == "sea":
        water, below = _sea(h, w, rng, p)
        glint = {
            "density": float(10 ** rng.uniform(-4, np.log10(2e-3))),
            "mean_amp": uniform(rng, [1.0, 4.0]) * noise_sigma,
            "sigma": uniform(rng, [0.4, 0.8]),
        }
        p["glint"] = glint
        return Background(family, water, glint=glint, glint_region=below, params=p)
    if family == "horizon":
        return Background(family, _horizon(h, w, rng, p, noise_sigma), params=p)
    raise ValueError(f"unknown background family {family!r}; valid: {', '.join(FAMILIES)}")


def glint_events(
    bg: Background, t: int, rng_of_frame, shape: tuple[int, int]
) -> list[tuple[float, float, float]]:
    """Glint specks alive at frame ``t`` as (x, y, amplitude) in canvas coordinates.

    A speck born at frame t' lives 1–3 frames; births of frame t' come from the stream of t' only,
    so frame t is reproducible alone (it looks back at most 2 births).
    """
    if bg.glint is None:
        return []
    h, w = shape
    out = []
    for tb in range(max(t - 2, 0), t + 1):
        rng = rng_of_frame(tb)
        n = rng.poisson(bg.glint["density"] * h * w)
        xs, ys = rng.uniform(0, w - 1, n), rng.uniform(0, h - 1, n)
        amps = rng.exponential(bg.glint["mean_amp"], n)
        life = rng.integers(1, 4, n)
        for x, y, a, lf in zip(xs, ys, amps, life):
            if t - tb < lf and bg.glint_region[int(y), int(x)]:
                out.append((float(x), float(y), float(a)))
    return out
