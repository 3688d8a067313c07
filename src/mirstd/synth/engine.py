"""The semi-synthetic sequence engine (spec ``synth.md``): plan → render → label → write.

Per sequence: background canvas → ego-motion warp → sensor layer (F0) → targets rendered by
supersampling + area resampling → amplitude solved from the requested SCR → quantisation → dead/hot
pixels → masks, boxes, points, per-target measured SCR (``scr_clean`` on the stored frame),
sequence mSCR. All randomness comes from ``SeedSequence(seed, spawn_key=(index, component, ...))``
streams (:mod:`mirstd.synth.rng`), so a sequence rendered alone equals the same sequence rendered
within a dataset.
"""

from __future__ import annotations

import hashlib
import json
import platform
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from mirstd.data.native import write_index, write_sequence
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.synth import rng as R
from mirstd.synth.background import Background, _headroom, glint_events, make_background
from mirstd.synth.egomotion import EgoMotion, draw_egomotion, prefilter, sample_layer, warp_frame
from mirstd.synth.intensity import full_mask, scr_local, solve_frame
from mirstd.synth.motion import Trajectory, simulate, start_positions
from mirstd.synth.presets import resolve_config, size_of
from mirstd.synth.realbg import has_kind, real_canvas, real_clip
from mirstd.synth.render import render_tile
from mirstd.synth.sensor import QUANT, apply_bad_pixels, draw_sensor, expose, place_bad_pixels, quantize
from mirstd.synth.templates import attitude_walk, draw_template
from mirstd.utils.io import atomic_write_text, staged_dir, to_jsonable
from mirstd.utils.scr import DEFAULT_MARGIN, mscr, scr_split

GENERATOR_VERSION = "mirstd-synth 1"


@dataclass(frozen=True)
class SeqPlan:
    """What the dataset planner fixes for sequence ``index`` before any pixel is drawn."""

    index: int
    name: str
    split: str
    scr_class: str  # "low", "high" or "hard"
    family: str
    hard: bool


# ---------------------------------------------------------------------------------------- planning


def _allocate(weights: dict[str, float], n: int) -> list[str]:
    """Largest-remainder allocation of n items to weighted categories (deterministic)."""
    keys = [k for k, v in weights.items() if float(v) > 0]
    tot = sum(float(weights[k]) for k in keys)
    exact = [float(weights[k]) / tot * n for k in keys]
    counts = [int(np.floor(e)) for e in exact]
    order = sorted(range(len(keys)), key=lambda i: (-(exact[i] - counts[i]), i))
    for i in order[: n - sum(counts)]:
        counts[i] += 1
    return [k for k, c in zip(keys, counts) for _ in range(c)]


def plan_dataset(cfg: dict[str, Any], seed: int) -> list[SeqPlan]:
    """Sequence plans: each split balanced between low and high SCR and across background families."""
    rng = R.stream(seed, R.PLAN_KEY)
    splits = dict(cfg["splits"])
    if int(cfg.get("test_hard", 0)) > 0:
        splits["test_hard"] = int(cfg["test_hard"])
    fams = dict(cfg["families"])
    if cfg.get("backgrounds"):
        rf = float(cfg["real_fraction"])
        fams = {k: v * (1 - rf) for k, v in fams.items()}
        fams["real"] = rf * sum(cfg["families"].values())
    plans, index = [], 0
    for split, n in splits.items():
        n = int(n)
        hard = split == "test_hard"
        classes = ["hard"] * n if hard else ["low"] * (n // 2) + ["high"] * (n - n // 2)
        if not hard and n % 2:  # odd split: the extra sequence's class is drawn
            classes[-1] = "low" if rng.random() < 0.5 else "high"
        families = _allocate(fams, n)
        classes = [classes[i] for i in rng.permutation(n)]
        families = [families[i] for i in rng.permutation(n)]
        for c, f in zip(classes, families):
            plans.append(SeqPlan(index, f"seq{index:04d}", split, c, f, hard))
            index += 1
    return plans


def _plan_for(cfg: dict[str, Any], seed: int, index: int) -> SeqPlan:
    plans = plan_dataset(cfg, seed)
    if index < len(plans):
        return plans[index]
    rng = R.stream(seed, index, R.LAYOUT, 1)  # beyond the dataset: fresh clips for training
    fam = _allocate(cfg["families"], 1000)[int(rng.integers(1000))]
    return SeqPlan(index, f"seq{index:04d}", "extra", "low" if rng.random() < 0.5 else "high", fam, False)


# ---------------------------------------------------------------------------------------- scene


def _scenes(
    cfg: dict[str, Any], seed: int, plan: SeqPlan, sensor_noise: float
) -> tuple[np.ndarray, EgoMotion, Background | None, dict]:
    """Noise-free warped scenes B_t (T, H, W), the ego-motion and the background."""
    k, T, size = plan.index, int(cfg["frames"]), size_of(cfg)
    e = cfg["ego"]
    if real_kind(cfg, seed, plan) == "sequence":
        ego = draw_egomotion(R.stream(seed, k, R.EGO), T, size, p_static=1.0)
        frames, info = _real(cfg, seed, plan, T, size)
        return frames, ego, None, {"real": info}
    ego = draw_egomotion(
        R.stream(seed, k, R.EGO),
        T,
        size,
        p_static=e["p_static"],
        max_speed=e["hard_max_speed"] if plan.hard else e["max_speed"],
        max_acc=e["max_acc"],
        max_jitter=e["max_jitter"],
        max_omega_deg=e["max_omega_deg"],
        max_kappa=e["max_kappa"],
        force_moving=plan.hard,
    )
    hc, wc = ego.canvas_size
    if plan.family == "real":  # a real still as the canvas; the camera moves over it
        canvas, info = real_canvas(cfg["backgrounds"], R.stream(seed, k, R.BACKGROUND), (hc, wc))
        bg = _headroom(Background("real", canvas, params={"real": info}))
    else:
        bg = make_background(
            plan.family, hc, wc, R.stream(seed, k, R.BACKGROUND), noise_sigma=sensor_noise, hard=plan.hard
        )
    m = ego.margin
    static = ego.params["static"]
    coeffs = None if static else prefilter(bg.canvas)
    h, w = size
    scenes = np.empty((T, h, w))
    for t in range(T):
        sc = (
            bg.canvas[m : m + h, m : m + w].copy()
            if static
            else warp_frame(coeffs, ego, t, int(e["oversample"]))
        )
        if bg.cloud is not None:
            sc += sample_layer(bg.cloud, ego, t, (bg.cloud_drift[0] * t, bg.cloud_drift[1] * t))
        if bg.glint is not None:
            sc += _glint_image(bg, ego, t, seed, k)
        scenes[t] = sc
    return scenes, ego, bg, bg.params


def _glint_image(bg: Background, ego: EgoMotion, t: int, seed: int, k: int) -> np.ndarray:
    h, w = ego.frame_size
    ev = glint_events(bg, t, lambda tb: R.stream(seed, k, R.EVOLVE0 + tb), bg.canvas.shape)
    img = np.zeros((h, w))
    sig = bg.glint["sigma"]
    for x, y, a in ev:
        fx, fy = ego.to_frame(np.array([x, y]), t)
        r, c = int(np.round(fy)), int(np.round(fx))
        if 0 <= r < h and 0 <= c < w:
            img[r, c] += a * 2 * np.pi * sig**2
    return ndimage.gaussian_filter(img, sig, truncate=3.0) if ev else img


def real_kind(cfg: dict[str, Any], seed: int, plan: SeqPlan) -> str | None:
    """``"still"`` or ``"sequence"`` for a ``real`` plan (half each when the folder has both), else None."""
    if plan.family != "real":
        return None
    split = cfg.get("background_split")
    stills, seqs = has_kind(cfg["backgrounds"], True, split), has_kind(cfg["backgrounds"], False, split)
    if stills and seqs:
        return "still" if R.stream(seed, plan.index, R.BACKGROUND, 1).random() < 0.5 else "sequence"
    return "still" if stills else "sequence"


def _real(
    cfg: dict[str, Any], seed: int, plan: SeqPlan, T: int, size: tuple[int, int]
) -> tuple[np.ndarray, dict]:
    return real_clip(
        cfg["backgrounds"],
        R.stream(seed, plan.index, R.BACKGROUND),
        T,
        size,
        int(cfg["real_exclusion"]),
        split=cfg.get("background_split"),
    )


# ---------------------------------------------------------------------------------------- targets


@dataclass
class TargetPlan:
    j: int
    tmpl: Any
    traj: Trajectory
    scr: np.ndarray  # (T,) requested S_t
    sign: float
    orient: np.ndarray  # (T,) template orientation (rad)
    attitude: np.ndarray | None  # (T, 3) yaw, pitch, roll for aircraft
    scale: np.ndarray  # (T,) size factor
    attempts: int


def _scr_series(rng: np.random.Generator, cfg: dict[str, Any], cls: str, T: int) -> np.ndarray:
    fixed = cfg.get("scr")
    rng_key = {"low": "scr_low", "high": "scr_high", "hard": "scr_hard"}[cls]
    lo, hi = (fixed, fixed) if isinstance(fixed, (int, float)) else (fixed or cfg[rng_key])
    s0 = R.uniform(rng, [float(lo), float(hi)])
    eta = R.uniform(rng, cfg["scr_trend"])
    sig = R.uniform(rng, cfg["scintillation"])
    eps = np.zeros(T)
    innov = rng.normal(0, 1, T) * sig
    for t in range(1, T):
        eps[t] = 0.7 * eps[t - 1] + innov[t]
    mod = (1 + eta * np.arange(T) / max(T - 1, 1)) * np.exp(eps)
    s = s0 * mod / mod.mean()  # the sequence mean stays at S0, so the low/high class is kept
    if isinstance(fixed, (int, float)):
        return np.full(T, float(fixed))
    return np.clip(s, max(float(lo), 0.5), float(hi) - (0.05 if cls == "low" else 0.0))


class _ClutterStats:
    """Per-position proxies of the SCR ring statistics used to place trajectories (spec §6.5), from
    summed-area tables of F0 and F0² (O(1) per query): ``excess`` = (mean over a win×win box − ring
    mean) / max(ring std, 1) — the SCR an A = 0 target would already have — plus the ring mean and
    floored std (for the full-scale check). The "ring" here is the whole box + 20 px window."""

    def __init__(self, f0: np.ndarray) -> None:
        pad = ((0, 0), (1, 0), (1, 0))
        self.s1 = np.pad(f0.cumsum(1).cumsum(2), pad)
        self.s2 = np.pad((f0**2).cumsum(1).cumsum(2), pad)
        self.h, self.w = f0.shape[1:]

    def _box(self, tab: np.ndarray, t: np.ndarray, r: np.ndarray, c: np.ndarray, half: int) -> tuple:
        r0, r1 = np.clip(r - half, 0, self.h), np.clip(r + half + 1, 0, self.h)
        c0, c1 = np.clip(c - half, 0, self.w), np.clip(c + half + 1, 0, self.w)
        tot = tab[t, r1, c1] - tab[t, r0, c1] - tab[t, r1, c0] + tab[t, r0, c0]
        return tot, (r1 - r0) * (c1 - c0)

    def query(self, rc: np.ndarray, win: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = np.arange(len(rc))
        r, c = rc[:, 0], rc[:, 1]
        half = win // 2
        s_small, n_small = self._box(self.s1, t, r, c, half)
        s_big, n_big = self._box(self.s1, t, r, c, half + DEFAULT_MARGIN)
        q_big, _ = self._box(self.s2, t, r, c, half + DEFAULT_MARGIN)
        m_big = s_big / n_big
        sd = np.maximum(np.sqrt(np.maximum(q_big / n_big - m_big**2, 0)), 1.0)
        return (s_small / n_small - m_big) / sd, m_big, sd


def _peak_ratio(tmpl, cfg: dict[str, Any]) -> float:
    """max τ / mean_M τ of a template (how far the peak overshoots the mask mean)."""
    tile = render_tile(
        tmpl, (32.0, 32.0), (64, 64), 0.7, 4, 0.0, 1.0, (0.0, 0.0, 0.0), float(cfg["mask_kappa"])
    )
    return float(tile.tau.max() / tile.tau[tile.mask].mean())


def _targets(
    cfg: dict[str, Any], seed: int, plan: SeqPlan, f0: np.ndarray, ego: EgoMotion
) -> list[TargetPlan]:
    k, T = plan.index, f0.shape[0]
    lay = R.stream(seed, k, R.LAYOUT)
    probs = np.asarray(cfg["targets"], float)
    n = int(lay.choice(len(probs), p=probs / probs.sum())) + 1
    shapes = _allocate(cfg["shapes"], 1000)
    starts = start_positions(lay, n, ego.frame_size)
    fam_draw = [shapes[int(lay.integers(1000))] for _ in range(n)]
    stats = _ClutterStats(f0)
    out = []
    for j in range(n):
        trng = R.stream(seed, k, R.TARGET0 + j)
        tmpl = draw_template(fam_draw[j], trng, cfg)
        sign = -1.0 if trng.random() < float(cfg["p_dark"]) else 1.0
        scr = _scr_series(trng, cfg, plan.scr_class, T)
        win = max(3, 2 * int(round(tmpl.extent * 0.6)) + 1)
        ratio = _peak_ratio(tmpl, cfg)
        best, best_bad = None, None
        for attempt in range(int(cfg["placement_attempts"])):
            mrng = R.stream(seed, k, R.TARGET0 + j, 1, attempt)
            p0 = starts[j] if attempt == 0 else start_positions(mrng, 1, ego.frame_size)[0]
            traj = simulate(mrng, p0, ego, cfg, hard=plan.hard)
            if tmpl.family == "aircraft":  # occluding fusion reaches any SCR: no clutter constraint
                best = (traj, attempt)
                break
            rc = np.clip(np.round(traj.image[:, ::-1]).astype(int), 0, np.array(ego.frame_size) - 1)
            e, mu_ring, sd_ring = stats.query(rc, win)
            e = e * sign
            peak = mu_ring + sign * ratio * scr * sd_ring
            bad = int(np.sum((e > 0.9 * scr) | (peak > 245.0) | (peak < 5.0)))
            if best_bad is None or bad < best_bad:
                best, best_bad = (traj, attempt), bad
            if bad == 0:
                break
        traj, attempt = best
        orng = R.stream(seed, k, R.TARGET0 + j, 2)
        orient = orng.uniform(0, np.pi) + np.cumsum(orng.normal(0, 0.02, T))
        scale = (1 + tmpl.size_trend * np.arange(T) / max(T - 1, 1)) * (1 + 0.02 * _smooth_noise(orng, T))
        att = None
        if tmpl.family == "aircraft":
            pr = attitude_walk(orng, T)
            v = _smooth_heading(traj.velocity)
            yaw = np.arctan2(-v[:, 1], v[:, 0]) + tmpl.params["yaw_offset"]
            att = np.stack([yaw, pr[:, 0], pr[:, 1]], -1)
        out.append(TargetPlan(j, tmpl, traj, scr, sign, orient, att, scale, attempt + 1))
    return out


def _smooth_noise(rng: np.random.Generator, T: int) -> np.ndarray:
    x = ndimage.gaussian_filter1d(rng.normal(0, 1, T), 4.0, mode="nearest")
    return x / max(np.abs(x).max(), 1e-9)


def _smooth_heading(v: np.ndarray) -> np.ndarray:
    return ndimage.gaussian_filter1d(v, 2.0, axis=0, mode="nearest")


# ---------------------------------------------------------------------------------------- one sequence


@dataclass
class Rendered:
    sequence: Sequence
    stored: np.ndarray  # (T, H, W) stored integers
    instances: np.ndarray  # (T, H, W) uint8 instance ids
    background: np.ndarray | None = None  # (T, H, W) stored target-free frames (keep_background=True)


def _sha(a: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(a).astype(a.dtype.newbyteorder("<")).tobytes()).hexdigest()


def render(cfg: dict[str, Any], seed: int, plan: SeqPlan, keep_background: bool = False) -> Rendered:
    """Render one planned sequence (all frames in memory)."""
    T, (h, w) = int(cfg["frames"]), size_of(cfg)
    bit_depth = int(cfg["bit_depth"])
    lsb = QUANT[bit_depth][0]
    real = real_kind(cfg, seed, plan) == "sequence"  # real stills get the full sensor model
    sensor = draw_sensor(R.stream(seed, plan.index, R.SENSOR), (h, w), cfg["sensor"], real=real)
    scenes, ego, _, bg_params = _scenes(cfg, seed, plan, sensor.noise_sigma)
    f0 = np.stack([expose(scenes[t], sensor, R.stream(seed, plan.index, R.NOISE0 + t)) for t in range(T)])
    del scenes
    tps = _targets(cfg, seed, plan, f0, ego)
    stored = np.empty((T, h, w), np.uint8 if bit_depth == 8 else np.uint16)
    instances = np.zeros((T, h, w), np.uint8)
    per_frame: list[list[tuple]] = []
    forbidden = np.zeros((h, w), bool)
    kappa, s = float(cfg["mask_kappa"]), int(cfg["supersample"])
    for t in range(T):
        tiles, live = [], []
        for tp in tps:
            att = tuple(tp.attitude[t]) if tp.attitude is not None else None
            tile = render_tile(
                tp.tmpl, tp.traj.image[t], (h, w), sensor.psf_sigma, s, tp.orient[t], tp.scale[t], att, kappa
            )
            if tile is not None:
                tiles.append(tile)
                live.append(tp)
        _disjoint(tiles, (h, w))
        frame, solved = solve_frame(
            f0[t],
            tiles,
            sensor.response,
            [tp.scr[t] for tp in live],
            [tp.sign for tp in live],
            int(cfg["refine_iters"]),
        )
        stored[t] = quantize(frame, bit_depth)
        for tile, tp in zip(tiles, live):
            instances[t][tile.slices][tile.mask] = tp.j + 1
            rows, cols = np.nonzero(tile.mask)
            forbidden[
                max(rows.min() + tile.r0 - DEFAULT_MARGIN - 2, 0) : rows.max() + tile.r0 + DEFAULT_MARGIN + 3,
                max(cols.min() + tile.c0 - DEFAULT_MARGIN - 2, 0) : cols.max() + tile.c0 + DEFAULT_MARGIN + 3,
            ] = True
        per_frame.append(list(zip(tiles, live, solved)))
    if not real:
        place_bad_pixels(sensor, forbidden, R.stream(seed, plan.index, R.SENSOR, 1))
        for t in range(T):
            stored[t] = apply_bad_pixels(stored[t], sensor, bit_depth)
    labels, frame_scr = [], []
    for t in range(T):
        labels_t, scr_t = _label_frame(stored[t] / lsb, per_frame[t], t, (h, w))
        labels.append(labels_t)
        frame_scr.append(scr_t)
    m = mscr(frame_scr)
    meta = {
        "index": plan.index,
        "split": plan.split,
        "mSCR": m,
        "split_scr": scr_split(m),
        "scr_class": plan.scr_class,
        "hard": plan.hard,
        "family": plan.family,
        "background": bg_params,
        "egomotion": ego.params,
        "sensor": sensor.params,
        "targets": [
            {
                "id": tp.j + 1,
                "family": tp.tmpl.family,
                "template": tp.tmpl.params,
                "size_trend": tp.tmpl.size_trend,
                "sign": tp.sign,
                "placement_attempts": tp.attempts,
            }
            for tp in tps
        ],
        "seed": int(seed),
        "spawn_key": [plan.index],
        "bit_depth": bit_depth,
        "sha256": _sha(stored),
    }
    frames = [_const(stored[t].astype(np.float32)) for t in range(T)]
    masks = [_const(instances[t]) for t in range(T)]
    seq = Sequence(
        plan.name, frames, labels, masks, "instance", bit_depth, (h, w), [f"{t:05d}" for t in range(T)], meta
    )
    bg = None
    if keep_background:  # target-free stored frames with the same bad pixels (tests, analysis)
        bg = np.stack(
            [
                apply_bad_pixels(quantize(f0[t], bit_depth), sensor, bit_depth)
                if not real
                else quantize(f0[t], bit_depth)
                for t in range(T)
            ]
        )
    return Rendered(seq, stored, instances, bg)


def _disjoint(tiles: list, shape: tuple[int, int]) -> None:
    """Make target masks disjoint: an overlapped pixel belongs to the target whose normalised
    template (τ / max τ, or α) is largest there; every mask keeps its arg-max pixel."""
    if len(tiles) < 2:
        return
    score = np.full((len(tiles), *shape), -1.0)
    for i, tl in enumerate(tiles):
        ref = tl.alpha if tl.alpha is not None else tl.tau / tl.tau.max()
        score[i][tl.slices] = np.where(tl.mask, ref, -1.0)
    owner = np.argmax(score, axis=0)
    for i, tl in enumerate(tiles):
        keep = tl.mask & (owner[tl.slices] == i)
        if keep.any():
            tl.mask = keep


def _const(a: np.ndarray):
    a.setflags(write=False)
    return lambda: a


def _label_frame(
    img: np.ndarray, items: list[tuple], t: int, shape: tuple[int, int]
) -> tuple[FrameLabels, list[float]]:
    masks = [full_mask(tile, shape) for tile, _, _ in items]
    boxes, points, ids, scrs, extras = [], [], [], [], []
    for j, (tile, tp, sol) in enumerate(items):
        mu_t, mu_b, sd_b = scr_local(img, tile, masks, j)
        meas = abs(mu_t - mu_b) / max(sd_b, 1.0)
        rows, cols = np.nonzero(masks[j])
        x1, y1, x2, y2 = int(cols.min()), int(rows.min()), int(cols.max()), int(rows.max())
        cx, cy = tp.traj.image[t]
        rec = {
            "visible": True,
            "family": tp.tmpl.family,
            "center_xy": [float(cx), float(cy)],
            "mask_centroid_xy": [float(cols.mean()), float(rows.mean())],
            "point_xy": [int(np.round(cx)), int(np.round(cy))],
            "bbox_xyxy": [x1, y1, x2, y2],
            "bbox_xywh": [x1, y1, x2 - x1 + 1, y2 - y1 + 1],
            "area_px": int(rows.size),
            "scr_requested": float(tp.scr[t]) if sol.guard is None else float(sol.scr_target),
            "scr_measured": float(meas),
            "scr_guard": sol.guard,
            "mu_b": float(mu_b),
            "sigma_b": float(sd_b),
            "amplitude": float(sol.amplitude),
            "velocity_xy": [float(v) for v in tp.traj.velocity[t]],
            "motion_mode": tp.traj.modes[t],
            "size_param": float(_size_param(tp.tmpl) * tp.scale[t]),
        }
        if sol.guard is not None:
            rec["scr_requested_original"] = float(tp.scr[t])
        if tp.attitude is not None:
            rec["attitude_deg"] = [float(np.rad2deg(a)) for a in tp.attitude[t]]
        boxes.append([x1, y1, x2 + 1, y2 + 1])
        points.append([float(cx), float(cy)])
        ids.append(tp.j + 1)
        scrs.append(meas)
        extras.append(rec)
    lab = FrameLabels(boxes, points, ids, scrs, has_boxes=True, has_points=True, extra={"targets": extras})
    return lab, scrs


def _size_param(tmpl) -> float:
    p = tmpl.params
    if tmpl.family == "point":
        return float(np.sqrt(p["sigma_x"] * p["sigma_y"]))
    if tmpl.family == "aircraft":
        return float(p["length"])
    return float(p["R0"])


# ---------------------------------------------------------------------------------------- public API


def render_sequence(
    config: str | dict[str, Any] | None = None, seed: int = 0, index: int = 0, **overrides: Any
) -> Sequence:
    """Render sequence ``index`` of the dataset ``config`` (preset name or key dict) with ``seed``.

    Frames and instance masks are in memory (zero-argument callables). An index beyond the
    dataset's sequences draws a fresh clip (training on the fly). The result equals the same
    sequence rendered by :func:`generate` / :func:`load_synth`.
    """
    cfg = resolve_config(config if config is not None else "demo", **overrides)
    return render(cfg, int(seed), _plan_for(cfg, int(seed), int(index))).sequence


def load_synth(
    preset: str | dict[str, Any] = "demo", seed: int = 0, progress: bool = False, **overrides: Any
) -> SequenceDataset:
    """Render a whole preset in memory, with its splits (``data=synth:demo``)."""
    cfg = resolve_config(preset, **overrides)
    plans = plan_dataset(cfg, int(seed))
    it = plans
    if progress:
        from tqdm import tqdm

        it = tqdm(plans, desc=f"synth {cfg.get('preset', '')}", unit="seq")
    seqs = {p.name: render(cfg, int(seed), p).sequence for p in it}
    splits = _splits(plans)
    # prefixed copies name this source inside a merged dataset, as the real protocols' splits do
    # (data=[synth:demo, real:airground] train_split=synth_train+airground_train)
    splits |= {f"synth_{k}": list(v) for k, v in list(splits.items())}
    return SequenceDataset(
        seqs, splits, cfg["name"], None, "synth", None, dataset_meta(cfg, seed, seqs.values())
    )


def _splits(plans: list[SeqPlan]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for p in plans:
        out.setdefault(p.split, []).append(p.name)
    return out


def dataset_meta(cfg: dict[str, Any], seed: int, seqs) -> dict[str, Any]:
    import scipy

    return {
        "generator": GENERATOR_VERSION,
        "seed": int(seed),
        "config": cfg,
        "versions": {
            "python": platform.python_version(),
            "numpy": np.__version__,
            "scipy": scipy.__version__,
        },
        "sequences": {
            s.name: {
                k: s.meta[k] for k in ("split", "mSCR", "split_scr", "scr_class", "family", "hard", "sha256")
            }
            for s in seqs
        },
    }


def _render_and_write(args: tuple[dict[str, Any], int, SeqPlan, str]) -> tuple[str, dict]:
    """Worker: render one planned sequence and write it (module-level so processes can pickle it)."""
    cfg, seed, plan, out = args
    seq = render(cfg, seed, plan).sequence
    write_sequence(Path(out), seq)
    return seq.name, seq.meta


def generate(
    preset: str | dict[str, Any] = "demo",
    out: str | Path = "synth",
    seed: int = 0,
    progress: bool = True,
    workers: int = 1,
    exist_ok: bool = False,
    **overrides: Any,
) -> Path:
    """Render ``preset`` and write it in the native layout under ``out`` (see docs/synth.md).

    The dataset is written into a temporary sibling folder and renamed to ``out`` when complete, so a
    killed run leaves no half dataset under ``out``. A non-empty ``out`` is refused unless
    ``exist_ok`` (then an earlier dataset there, one with a ``dataset.yaml``, is replaced whole).

    ``workers`` > 1 renders sequences in that many processes. Every sequence draws only from its own
    seed streams (spec §9), so the files are byte-identical whatever the worker count.
    """
    cfg = resolve_config(preset, **overrides)
    out = Path(out)
    plans = plan_dataset(cfg, int(seed))
    with staged_dir(out, exist_ok, "out", marker=("dataset.yaml",)) as tmp:
        _generate_into(tmp, cfg, int(seed), plans, progress, workers)
    return out


def _generate_into(
    out: Path, cfg: dict[str, Any], seed: int, plans: list[SeqPlan], progress: bool, workers: int
) -> None:
    jobs = [(cfg, int(seed), p, str(out)) for p in plans]
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=len(plans), desc=f"synth {cfg.get('preset', 'custom')}", unit="seq")
    metas = []
    if int(workers) > 1:
        import multiprocessing as mp
        from concurrent.futures import ProcessPoolExecutor

        # "spawn" avoids forking a process that may hold torch/OpenMP threads.
        with ProcessPoolExecutor(int(workers), mp_context=mp.get_context("spawn")) as pool:
            for name, meta in pool.map(_render_and_write, jobs):
                metas.append(_MetaOnly(name, meta))
                if bar is not None:
                    bar.update(1)
    else:
        for job in jobs:
            name, meta = _render_and_write(job)
            metas.append(_MetaOnly(name, meta))
            if bar is not None:
                bar.update(1)
    if bar is not None:
        bar.close()
    meta = dataset_meta(cfg, seed, metas)
    write_index(out, [p.name for p in plans], _splits(plans), cfg["name"], int(cfg["bit_depth"]), None, meta)
    atomic_write_text(out / "meta.json", json.dumps(to_jsonable(meta), indent=1))


@dataclass
class _MetaOnly:
    name: str
    meta: dict
