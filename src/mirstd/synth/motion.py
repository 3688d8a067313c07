"""Target motion in world (canvas) coordinates (spec ``synth.md`` §7), px/frame, Δt = 1 frame.

Trajectories are consecutive segments of 10–40 frames (hard: 5–15), each of one mode:
CV p ← p + v; CA p ← p + v + a/2, v ← v + a; CJ p ← p + v + a/2 + j/6, v ← v + a + j/2, a ← a + j;
CT v ← R(ω) v, p ← p + (v_old + v_new)/2. Process noise a ← a + N(0, 0.005²); speed clamped to
the allowed range; the target reflects at a 4-px inner margin of the *frame* (image coordinates,
through the ego-motion transform).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mirstd.synth.egomotion import EgoMotion

MODES = ("CV", "CA", "CT", "CJ")


@dataclass
class Trajectory:
    world: np.ndarray  # (T, 2) world (canvas) positions
    image: np.ndarray  # (T, 2) frame positions (x, y)
    velocity: np.ndarray  # (T, 2) image-plane velocity px/frame
    modes: list[str]


def _rot(v: np.ndarray, w: float) -> np.ndarray:
    c, s = np.cos(w), np.sin(w)
    return np.array([c * v[0] - s * v[1], s * v[0] + c * v[1]])


def _clamp_speed(v: np.ndarray, lo: float, hi: float) -> np.ndarray:
    n = float(np.hypot(*v))
    if n < 1e-9:
        return np.array([lo, 0.0])
    return v * (min(max(n, lo), hi) / n)


def simulate(
    rng: np.random.Generator,
    start_xy: np.ndarray,
    ego: EgoMotion,
    cfg: dict,
    hard: bool = False,
) -> Trajectory:
    """Trajectory of one target starting at frame position ``start_xy``."""
    num = len(ego.d)
    h, w = ego.frame_size
    lo, hi = cfg["hard_speed"] if hard else cfg["speed"]
    seg_lo, seg_hi = (5, 15) if hard else (10, 40)
    w_max = 0.4 if hard else 0.1
    probs = np.asarray(cfg.get("motion_modes", [0.4, 0.3, 0.2, 0.1]), dtype=np.float64)
    probs = probs / probs.sum()
    speed, ang = rng.uniform(lo, hi), rng.uniform(0, 2 * np.pi)
    v_img = speed * np.array([np.cos(ang), np.sin(ang)])
    p = ego.to_canvas(np.asarray(start_xy, float), 0)
    v = ego.vector_to_canvas(v_img, 0)
    a, j, omega = np.zeros(2), np.zeros(2), 0.0
    world, modes = np.zeros((num, 2)), []
    mode, left = "CV", 0
    margin = 4.0
    for t in range(num):
        world[t] = p
        if left == 0:
            mode = MODES[int(rng.choice(4, p=probs))]
            left = int(rng.integers(seg_lo, seg_hi + 1))
            a = rng.uniform(-0.1, 0.1, 2) if mode in ("CA", "CJ") else np.zeros(2)
            j = rng.uniform(-0.01, 0.01, 2) if mode == "CJ" else np.zeros(2)
            omega = rng.uniform(-w_max, w_max) if mode == "CT" else 0.0
            if hard and t > 0 and rng.random() < 0.1:  # abrupt heading change at a segment boundary
                v = _rot(v, rng.choice([-1.0, 1.0]) * np.deg2rad(rng.uniform(60, 180)))
        modes.append(mode)
        left -= 1
        a = a + rng.normal(0.0, 0.005, 2)
        if mode == "CT":
            v_new = _rot(v, omega)
            step, v = 0.5 * (v + v_new), v_new
        elif mode == "CJ":
            step = v + a / 2 + j / 6
            v, a = v + a + j / 2, a + j
        elif mode == "CA":
            step = v + a / 2
            v = v + a
        else:
            step = v
        v = _clamp_speed(v, lo, hi)
        step = _clamp_speed(step, 0.0, hi) if np.hypot(*step) > hi else step
        p = p + step
        if t + 1 < num:  # reflect at the inner margin of frame t + 1
            q = ego.to_frame(p, t + 1)
            vq = ego.vector_to_frame(v, t + 1)
            for ax, size in ((0, w), (1, h)):
                if q[ax] < margin:
                    q[ax], vq[ax] = 2 * margin - q[ax], abs(vq[ax])
                elif q[ax] > size - 1 - margin:
                    q[ax], vq[ax] = 2 * (size - 1 - margin) - q[ax], -abs(vq[ax])
            q = np.clip(q, margin, np.array([w, h]) - 1 - margin)
            p, v = ego.to_canvas(q, t + 1), ego.vector_to_canvas(vq, t + 1)
    image = np.stack([ego.to_frame(world[t], t) for t in range(num)])
    vel = np.vstack([np.diff(image, axis=0), (image[-1] - image[-2])[None] if num > 1 else np.zeros((1, 2))])
    return Trajectory(world, image, vel, modes)


def start_positions(
    rng: np.random.Generator, n: int, shape: tuple[int, int], border: int = 16, min_dist: float = 10.0
) -> np.ndarray:
    """n start positions ≥ ``border`` px from the frame edge and ≥ ``min_dist`` px apart."""
    h, w = shape
    b = min(border, (min(h, w) - 2) // 3)
    pts: list[np.ndarray] = []
    for _ in range(200 * n):
        if len(pts) == n:
            break
        q = np.array([rng.uniform(b, w - 1 - b), rng.uniform(b, h - 1 - b)])
        if all(np.hypot(*(q - o)) >= min_dist for o in pts):
            pts.append(q)
    while len(pts) < n:  # crowded tiny frames: accept the spacing violation rather than fail
        pts.append(np.array([rng.uniform(b, w - 1 - b), rng.uniform(b, h - 1 - b)]))
    return np.asarray(pts)
