"""Sub-pixel target rendering, "region resampling" (spec ``synth.md`` §5.2–5.3).

A target at continuous position p = (x, y) (pixel-index coordinates: pixel (r, c) covers
[c-½, c+½) × [r-½, r+½)) is evaluated on a k×k tile around (round(y), round(x)) at s×s sub-samples
per pixel, blurred by the PSF (analytically for Gaussians: σ_eff² = σ² + σ_psf²; by a Gaussian of
σ_psf·s on the supersampled silhouette otherwise), then *area resampled*: τ(r, c) = mean of the
pixel's s² sub-samples, i.e. the template's integral over the pixel's area. Silhouettes also get
the coverage α (mean of the un-blurred indicator).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from mirstd.synth.templates import Template, evaluate, project_mesh, rasterize


@dataclass
class Tile:
    """A rendered target, clipped to the frame. Arrays share the tile's (h, w) shape."""

    r0: int
    c0: int
    tau: np.ndarray  # area-resampled template (additive) or internal profile τ̂ (occluding)
    alpha: np.ndarray | None  # coverage (occluding silhouettes), else None
    mask: np.ndarray  # bool target mask M
    extra: dict

    @property
    def slices(self) -> tuple[slice, slice]:
        h, w = self.tau.shape
        return slice(self.r0, self.r0 + h), slice(self.c0, self.c0 + w)

    @property
    def occluding(self) -> bool:
        return self.alpha is not None


def _subsample_axis(centre: int, half: int, s: int) -> np.ndarray:
    pix = np.arange(centre - half, centre + half + 1, dtype=np.float64)
    return (pix[:, None] - 0.5 + (np.arange(s) + 0.5)[None, :] / s).reshape(-1)


def _block_mean(a: np.ndarray, s: int) -> np.ndarray:
    k = a.shape[0] // s
    return a.reshape(k, s, a.shape[1] // s, s).mean(axis=(1, 3))


def render_tile(
    tmpl: Template,
    xy: tuple[float, float],
    frame_shape: tuple[int, int],
    psf_sigma: float,
    supersample: int = 8,
    orient: float = 0.0,
    scale: float = 1.0,
    attitude: tuple[float, float, float] | None = None,
    kappa: float = 0.2,
    occlude: bool | None = None,
) -> Tile | None:
    """Render ``tmpl`` at ``xy`` on a frame of ``frame_shape``; None when the tile misses the frame.

    ``orient`` rotates point/blob/polygon templates (radians, counter-clockwise on screen);
    ``attitude`` = (yaw, pitch, roll) for aircraft. ``occlude`` (default: aircraft only) selects
    occluding fusion, which needs α.
    """
    s = int(supersample)
    if s < 1:
        raise ValueError(f"supersample must be >= 1, got {s}")
    x, y = float(xy[0]), float(xy[1])
    if tmpl.family == "point":
        sx, sy = tmpl.params["sigma_x"] * scale, tmpl.params["sigma_y"] * scale
        sxe, sye = np.hypot(sx, psf_sigma), np.hypot(sy, psf_sigma)
        reach = 3.0 * max(sxe, sye)
    else:
        reach = 3.0 * psf_sigma + tmpl.extent * scale + 1.0
    half = int(np.ceil(reach))
    rc, cc = int(np.round(y)), int(np.round(x))
    xs = _subsample_axis(cc, half, s) - x
    ys = _subsample_axis(rc, half, s) - y
    extra: dict = {}
    alpha = None
    if tmpl.family == "point":
        gx, gy = np.meshgrid(xs, ys)
        co, si = np.cos(orient), np.sin(orient)
        u, v = co * gx - si * gy, si * gx + co * gy  # screen rotation by -orient (y down)
        sup = (sx * sy / (sxe * sye)) * np.exp(-0.5 * (u**2 / sxe**2 + v**2 / sye**2))
        tau = _block_mean(sup, s)
    else:
        if tmpl.family == "aircraft":
            length = tmpl.params["length"] * scale
            tris = project_mesh(tmpl.mesh, length, attitude or (0.0, 0.0, 0.0))
            ind = rasterize(tris, xs, ys)
            tail = project_mesh(np.array([[[-0.48, 0.0, 0.0]] * 3]), length, attitude or (0.0, 0.0, 0.0))[
                0, 0
            ]
            gx, gy = np.meshgrid(xs, ys)
            exhaust = np.exp(-((gx - tail[0]) ** 2 + (gy - tail[1]) ** 2) / (2 * (0.06 * length) ** 2))
            prof = np.where(ind, np.maximum(tmpl.params["body"], exhaust), 0.0)
        else:
            gx, gy = np.meshgrid(xs, ys)
            co, si = np.cos(orient), np.sin(orient)
            prof, ind = evaluate(tmpl, co * gx - si * gy, si * gx + co * gy, scale)
        if psf_sigma > 0:
            prof = ndimage.gaussian_filter(prof, psf_sigma * s, truncate=3.0)
        tau = _block_mean(prof, s)
        if occlude if occlude is not None else tmpl.family == "aircraft":
            alpha = _block_mean(ind.astype(np.float64), s)
    return _clip(tau, alpha, rc - half, cc - half, frame_shape, kappa, extra)


def _clip(tau, alpha, r0, c0, shape, kappa, extra) -> Tile | None:
    h, w = shape
    k = tau.shape[0]
    rr0, cc0 = max(r0, 0), max(c0, 0)
    rr1, cc1 = min(r0 + k, h), min(c0 + k, w)
    if rr1 <= rr0 or cc1 <= cc0:
        return None
    sl = (slice(rr0 - r0, rr1 - r0), slice(cc0 - c0, cc1 - c0))
    tau = tau[sl]
    alpha = alpha[sl] if alpha is not None else None
    if tau.max() <= 0:
        return None
    mask = target_mask(tau, alpha, kappa)
    return Tile(rr0, cc0, tau, alpha, mask, extra)


def target_mask(tau: np.ndarray, alpha: np.ndarray | None, kappa: float = 0.2) -> np.ndarray:
    """M = {τ ≥ κ·max τ} (additive) or {α ≥ 0.5} (occluding), always including the arg-max pixel."""
    ref = alpha if alpha is not None else tau
    m = ref >= 0.5 if alpha is not None else tau >= kappa * tau.max()
    m.flat[int(np.argmax(ref))] = True
    return m
