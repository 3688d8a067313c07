"""Target templates (spec ``synth.md`` §5.1): continuous shapes in target-centred coordinates, peak 1.

Families: ``point`` (anisotropic Gaussian), ``blob`` (irregular harmonic radius), ``polygon``
(3–10 vertices) and ``aircraft`` (orthographic silhouette of a small built-in triangle mesh at a
smoothly varying attitude). :func:`evaluate` returns ``(profile, indicator)`` on arrays of
target-centred coordinates (x right, y down, in pixels), already un-rotated by the target's
orientation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from mirstd.synth.rng import uniform

SHAPES = ("point", "blob", "polygon", "aircraft")


@dataclass
class Template:
    family: str
    params: dict[str, Any]
    extent: float  # max radius (px) at scale 1, used for the tile size
    mesh: np.ndarray | None = None  # aircraft: (n_tri, 3, 3) at unit length
    size_trend: float = 0.0  # kappa_s: size factor 1 + kappa_s t / (T - 1)
    extra: dict[str, Any] = field(default_factory=dict)


# ------------------------------------------------------------------------------ built-in aircraft mesh


def aircraft_mesh(span: float = 1.0, sweep_deg: float = 20.0, dihedral_deg: float = 3.0) -> np.ndarray:
    """Procedural aircraft, unit length, nose along +x, wings along ±y, up +z; triangles (n, 3, 3).

    Fuselage: ellipsoid semi-axes (0.5, 0.06, 0.06) tessellated 12 (around) × 8 (along); main wing:
    trapezoid, root chord 0.22 at x ∈ [-0.10, 0.12], tip chord 0.08; horizontal tail span 0.35,
    chord 0.10 at x ≈ -0.42; vertical fin height 0.16, chord 0.14 at x ≈ -0.42 (spec §5.1).
    """
    tris: list[list[list[float]]] = []
    nu, nv = 8, 12
    u = np.linspace(0.0, np.pi, nu + 1)
    v = np.linspace(0.0, 2 * np.pi, nv + 1)
    pts = np.stack(
        [
            0.5 * np.cos(u)[:, None] * np.ones_like(v)[None, :],
            0.06 * np.sin(u)[:, None] * np.cos(v)[None, :],
            0.06 * np.sin(u)[:, None] * np.sin(v)[None, :],
        ],
        -1,
    )
    for i in range(nu):
        for j in range(nv):
            a, b, c, d = pts[i, j], pts[i + 1, j], pts[i + 1, j + 1], pts[i, j + 1]
            tris += [[a, b, c], [a, c, d]]
    half, tan_s, tan_d = span / 2, np.tan(np.deg2rad(sweep_deg)), np.tan(np.deg2rad(dihedral_deg))
    for sgn in (1.0, -1.0):
        lead_tip = 0.12 - half * tan_s
        root_l, root_t = [0.12, 0.0, 0.0], [-0.10, 0.0, 0.0]
        tip_l, tip_t = [lead_tip, sgn * half, half * tan_d], [lead_tip - 0.08, sgn * half, half * tan_d]
        tris += [[root_l, tip_l, tip_t], [root_l, tip_t, root_t]]
        tl, tt = [-0.37, 0.0, 0.0], [-0.47, 0.0, 0.0]
        tip2l, tip2t = [-0.40, sgn * 0.175, 0.0], [-0.47, sgn * 0.175, 0.0]
        tris += [[tl, tip2l, tip2t], [tl, tip2t, tt]]
    fin = [[-0.35, 0.0, 0.0], [-0.49, 0.0, 0.0], [-0.49, 0.0, 0.16], [-0.43, 0.0, 0.16]]
    tris += [[fin[0], fin[1], fin[2]], [fin[0], fin[2], fin[3]]]
    return np.asarray(tris, dtype=np.float64)


def rotation(yaw: float, pitch: float, roll: float) -> np.ndarray:
    """R = R_z(yaw) · R_y(pitch) · R_x(roll) (radians)."""
    cz, sz, cy, sy, cx, sx = (
        np.cos(yaw),
        np.sin(yaw),
        np.cos(pitch),
        np.sin(pitch),
        np.cos(roll),
        np.sin(roll),
    )
    rz = np.array([[cz, -sz, 0], [sz, cz, 0], [0, 0, 1]])
    ry = np.array([[cy, 0, sy], [0, 1, 0], [-sy, 0, cy]])
    rx = np.array([[1, 0, 0], [0, cx, -sx], [0, sx, cx]])
    return rz @ ry @ rx


def project_mesh(mesh: np.ndarray, length_px: float, attitude: tuple[float, float, float]) -> np.ndarray:
    """Image-plane triangles (n, 3, 2) in px, (x right, y down): drop z, world +y → image −y."""
    p = mesh.reshape(-1, 3) @ rotation(*attitude).T * length_px
    return np.stack([p[:, 0], -p[:, 1]], -1).reshape(-1, 3, 2)


def rasterize(tris: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
    """Boolean coverage of a regular sample grid (xs: (W,), ys: (H,)) by 2-D triangles (point-in-triangle)."""
    out = np.zeros((len(ys), len(xs)), bool)
    dx = xs[1] - xs[0] if len(xs) > 1 else 1.0
    for tri in tris:
        lo, hi = tri.min(0), tri.max(0)
        c0, c1 = np.searchsorted(xs, lo[0]), np.searchsorted(xs, hi[0], side="right")
        r0, r1 = np.searchsorted(ys, lo[1]), np.searchsorted(ys, hi[1], side="right")
        if c1 <= c0 or r1 <= r0:
            continue
        x, y = xs[c0:c1][None, :], ys[r0:r1][:, None]
        (ax, ay), (bx, by), (cx, cy) = tri
        e0 = (bx - ax) * (y - ay) - (by - ay) * (x - ax)
        e1 = (cx - bx) * (y - by) - (cy - by) * (x - bx)
        e2 = (ax - cx) * (y - cy) - (ay - cy) * (x - cx)
        inside = ((e0 >= 0) & (e1 >= 0) & (e2 >= 0)) | ((e0 <= 0) & (e1 <= 0) & (e2 <= 0))
        out[r0:r1, c0:c1] |= inside
    del dx
    return out


# ------------------------------------------------------------------------------ drawing templates


def draw_template(family: str, rng: np.random.Generator, cfg: dict[str, Any]) -> Template:
    """Random template of ``family`` with the size ranges of ``cfg`` (spec §5.1 defaults)."""
    trend = uniform(rng, cfg.get("size_trend", [-0.3, 0.3]))
    if family == "point":
        sx, sy = uniform(rng, cfg["point_sigma"]), uniform(rng, cfg["point_sigma"])
        return Template("point", {"sigma_x": sx, "sigma_y": sy}, 0.0, size_trend=trend)
    if family == "blob":
        r0 = uniform(rng, cfg["blob_radius"])
        k = np.arange(2, 6)
        p = {
            "R0": r0,
            "a": (rng.uniform(0, 1, 4) * 0.4 / k).tolist(),
            "psi": rng.uniform(0, 2 * np.pi, 4).tolist(),
            "alpha": uniform(rng, [0.5, 1.0]),
            "gamma": uniform(rng, [1.2, 2.0]),
            "spots": [
                [
                    rng.uniform(-0.5, 0.5) * r0,
                    rng.uniform(-0.5, 0.5) * r0,
                    rng.uniform(0.1, 0.3),
                    rng.uniform(0.3, 0.6) * r0,
                ]
                for _ in range(int(rng.integers(0, 3)))
            ],
        }
        return Template("blob", p, r0 * (1 + sum(p["a"])), size_trend=trend)
    if family == "polygon":
        r0 = uniform(rng, cfg["polygon_radius"])
        n = int(rng.integers(3, 11))
        ang = np.sort(rng.uniform(0, 2 * np.pi, n))
        rad = r0 * (1 + rng.uniform(-0.3, 0.3, n))
        p = {
            "R0": r0,
            "vertices": np.stack([rad * np.cos(ang), rad * np.sin(ang)], -1).tolist(),
            "lambda": uniform(rng, [0.0, 0.5]),
        }
        return Template("polygon", p, float(rad.max()), size_trend=trend)
    if family == "aircraft":
        length = uniform(rng, cfg["aircraft_length"])
        span, sweep, dih = uniform(rng, [0.9, 1.2]), uniform(rng, [0.0, 35.0]), uniform(rng, [0.0, 5.0])
        p = {
            "length": length,
            "span": span,
            "sweep_deg": sweep,
            "dihedral_deg": dih,
            "body": uniform(rng, [0.6, 0.8]),
        }
        p["yaw_offset"] = float(np.deg2rad(rng.uniform(-30, 30)))
        return Template(
            "aircraft",
            p,
            0.62 * length * max(1.0, span),
            mesh=aircraft_mesh(span, sweep, dih),
            size_trend=trend,
        )
    raise ValueError(f"unknown target shape {family!r}; valid: {', '.join(SHAPES)}")


def attitude_walk(rng: np.random.Generator, num_frames: int) -> np.ndarray:
    """(T, 2) pitch, roll (radians): bounded smooth random walks, |pitch| ≤ 20°, |roll| ≤ 45°, step σ 1°."""
    out = np.zeros((num_frames, 2))
    cur = np.deg2rad([rng.uniform(-10, 10), rng.uniform(-20, 20)])
    lim = np.deg2rad([20.0, 45.0])
    steps = np.deg2rad(rng.normal(0, 1.0, (num_frames, 2)))
    for t in range(num_frames):
        cur = cur + steps[t]
        cur = np.where(np.abs(cur) > lim, np.sign(cur) * 2 * lim - cur, cur)  # reflect at the bounds
        out[t] = cur
    return out


def evaluate(tmpl: Template, x: np.ndarray, y: np.ndarray, scale: float) -> tuple[np.ndarray, np.ndarray]:
    """(profile, indicator) of a silhouette template at target-centred (x, y) (blob, polygon)."""
    p = tmpl.params
    if tmpl.family == "blob":
        r, phi = np.hypot(x, y), np.arctan2(y, x)
        big_r = p["R0"] * scale * np.ones_like(r)
        for k, (ak, pk) in enumerate(zip(p["a"], p["psi"]), start=2):
            big_r = big_r + p["R0"] * scale * ak * np.cos(k * phi + pk)
        ind = r <= big_r
        prof = np.where(ind, np.exp(-p["alpha"] * (r / big_r) ** p["gamma"]), 0.0)
        for sx, sy, amp, sig in p["spots"]:
            prof = prof + ind * amp * np.exp(
                -((x - sx * scale) ** 2 + (y - sy * scale) ** 2) / (2 * (sig * scale) ** 2)
            )
        return prof / max(prof.max(), 1e-12) if prof.max() > 1 else prof, ind
    if tmpl.family == "polygon":
        v = np.asarray(p["vertices"]) * scale
        ind = _point_in_polygon(v, x, y)
        d = np.hypot(x - v[:, 0].mean(), y - v[:, 1].mean())
        dmax = max(float(d[ind].max()) if ind.any() else 1.0, 1e-6)
        return np.where(ind, 1.0 - p["lambda"] * d / dmax, 0.0), ind
    raise ValueError(f"evaluate: {tmpl.family!r} is not a silhouette template")


def _point_in_polygon(v: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Even-odd rule, vectorised over the sample grid."""
    inside = np.zeros(np.broadcast(x, y).shape, bool)
    n = len(v)
    for i in range(n):
        (x1, y1), (x2, y2) = v[i], v[(i + 1) % n]
        cross = ((y1 > y) != (y2 > y)) & (x < (x2 - x1) * (y - y1) / (y2 - y1 + 1e-300) + x1)
        inside ^= cross
    return inside
