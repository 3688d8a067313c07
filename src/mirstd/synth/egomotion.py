"""Platform ego-motion (spec ``synth.md`` §3): a per-frame similarity transform frame → canvas.

``X_canvas = s_t R(theta_t) (X - c) + c + d_t + (m, m)`` with ``d_t = v t + a t^2/2 + j_t``
(``j_t`` AR(1) jitter, rho = 0.8), ``theta_t = omega t``, ``s_t = 1 + kappa t``. Background and
targets are both mapped through it, so they move together; the sensor's fixed pattern is applied
after the warp and stays put.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage


@dataclass
class EgoMotion:
    """Per-frame transforms of one sequence. Arrays have one row per frame."""

    d: np.ndarray  # (T, 2) translation (dx, dy) px
    theta: np.ndarray  # (T,) rotation, radians
    scale: np.ndarray  # (T,)
    margin: int
    frame_size: tuple[int, int]  # (H, W)
    params: dict

    @property
    def canvas_size(self) -> tuple[int, int]:
        h, w = self.frame_size
        return h + 2 * self.margin, w + 2 * self.margin

    @property
    def centre(self) -> np.ndarray:
        h, w = self.frame_size
        return np.array([(w - 1) / 2.0, (h - 1) / 2.0])

    def to_canvas(self, xy: np.ndarray, t: int) -> np.ndarray:
        """Frame (x, y) → canvas (world) (x, y) at frame t. ``xy`` is (..., 2)."""
        c = self.centre
        ct, st = np.cos(self.theta[t]), np.sin(self.theta[t])
        q = np.asarray(xy, dtype=np.float64) - c
        rx = ct * q[..., 0] - st * q[..., 1]
        ry = st * q[..., 0] + ct * q[..., 1]
        out = np.stack([rx, ry], -1) * self.scale[t] + c + self.d[t] + self.margin
        return out

    def to_frame(self, xy: np.ndarray, t: int) -> np.ndarray:
        """Canvas (world) (x, y) → frame (x, y) at frame t (inverse of :meth:`to_canvas`)."""
        c = self.centre
        q = (np.asarray(xy, dtype=np.float64) - c - self.d[t] - self.margin) / self.scale[t]
        ct, st = np.cos(self.theta[t]), np.sin(self.theta[t])
        return np.stack([ct * q[..., 0] + st * q[..., 1], -st * q[..., 0] + ct * q[..., 1]], -1) + c

    def vector_to_frame(self, v: np.ndarray, t: int) -> np.ndarray:
        ct, st = np.cos(self.theta[t]), np.sin(self.theta[t])
        v = np.asarray(v, dtype=np.float64) / self.scale[t]
        return np.array([ct * v[0] + st * v[1], -st * v[0] + ct * v[1]])

    def vector_to_canvas(self, v: np.ndarray, t: int) -> np.ndarray:
        ct, st = np.cos(self.theta[t]), np.sin(self.theta[t])
        return self.scale[t] * np.array([ct * v[0] - st * v[1], st * v[0] + ct * v[1]])


def draw_egomotion(
    rng: np.random.Generator,
    num_frames: int,
    frame_size: tuple[int, int],
    p_static: float = 0.3,
    max_speed: float = 2.0,
    max_acc: float = 0.02,
    max_jitter: float = 0.3,
    max_omega_deg: float = 0.1,
    max_kappa: float = 1e-3,
    force_moving: bool = False,
) -> EgoMotion:
    """Draw the platform motion of one sequence (defaults of spec §3; hard split: max_speed 5)."""
    t = np.arange(num_frames, dtype=np.float64)[:, None]
    static = (not force_moving) and rng.random() < p_static
    if static:
        v = a = np.zeros(2)
        sj = omega = kappa = 0.0
    else:
        ang = rng.uniform(0, 2 * np.pi)
        v = rng.uniform(0, max_speed) * np.array([np.cos(ang), np.sin(ang)])
        a = rng.uniform(-max_acc, max_acc, 2)
        sj = rng.uniform(0, max_jitter)
        omega = np.deg2rad(rng.uniform(-max_omega_deg, max_omega_deg))
        kappa = rng.uniform(-max_kappa, max_kappa)
    jit = np.zeros((num_frames, 2))
    innov = rng.normal(0.0, 1.0, (num_frames, 2)) * sj
    for i in range(1, num_frames):  # AR(1), rho = 0.8
        jit[i] = 0.8 * jit[i - 1] + innov[i]
    d = v * t + 0.5 * a * t**2 + jit
    theta = omega * t[:, 0]
    scale = 1.0 + kappa * t[:, 0]
    h, w = frame_size
    diag = float(np.hypot(h, w))
    margin = (
        int(np.ceil(np.abs(d).max() + np.abs(theta).max() * diag / 2 + diag * np.abs(scale - 1).max() / 2))
        + 8
    )
    params = {
        "static": bool(static),
        "velocity": v.tolist(),
        "acceleration": a.tolist(),
        "jitter_sigma": float(sj),
        "omega_deg_per_frame": float(np.rad2deg(omega)),
        "kappa": float(kappa),
        "margin": margin,
    }
    return EgoMotion(d, theta, scale, margin, (h, w), params)


def prefilter(canvas: np.ndarray) -> np.ndarray:
    """Cubic B-spline coefficients of the canvas (computed once per sequence, reused per frame)."""
    return ndimage.spline_filter(canvas, order=3, mode="mirror")


def _grid_to_canvas(ego: EgoMotion, t: int, xs: np.ndarray, ys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Canvas (rows, cols) of the frame grid xs × ys at frame t (broadcast, no per-point stacking)."""
    c = ego.centre
    ct, st = np.cos(ego.theta[t]) * ego.scale[t], np.sin(ego.theta[t]) * ego.scale[t]
    X, Y = (xs - c[0])[None, :], (ys - c[1])[:, None]
    cx = ct * X - st * Y + (c[0] + ego.d[t, 0] + ego.margin)
    cy = st * X + ct * Y + (c[1] + ego.d[t, 1] + ego.margin)
    return cy, cx


def warp_frame(coeffs: np.ndarray, ego: EgoMotion, t: int, oversample: int = 2) -> np.ndarray:
    """Sample the canvas on frame t's grid: cubic interpolation at ``oversample``² sub-pixel
    positions per pixel, then block averaging (area sampling, limits interpolation blur)."""
    h, w = ego.frame_size
    s = oversample
    sub = (np.arange(s) + 0.5) / s - 0.5
    ys = (np.arange(h)[:, None] + sub[None, :]).reshape(-1)
    xs = (np.arange(w)[:, None] + sub[None, :]).reshape(-1)
    cy, cx = _grid_to_canvas(ego, t, xs, ys)
    vals = ndimage.map_coordinates(coeffs, [cy, cx], order=3, mode="mirror", prefilter=False)
    return vals.reshape(h, s, w, s).mean(axis=(1, 3))


def sample_layer(layer: np.ndarray, ego: EgoMotion, t: int, shift: tuple[float, float]) -> np.ndarray:
    """Bilinear sample of a smooth layer (clouds) on frame t's pixel centres, layer shifted by ``shift``."""
    h, w = ego.frame_size
    cy, cx = _grid_to_canvas(ego, t, np.arange(w, dtype=np.float64), np.arange(h, dtype=np.float64))
    return ndimage.map_coordinates(layer, [cy - shift[1], cx - shift[0]], order=1, mode="mirror")
