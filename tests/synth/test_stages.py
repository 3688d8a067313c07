"""Stage-level checks of the synthetic engine (spec synth.md §11 items 4, 5, 6, 9)."""

import numpy as np
import pytest

from mirstd.synth import rng as R
from mirstd.synth.background import FAMILIES, fbm, make_background
from mirstd.synth.egomotion import EgoMotion, prefilter, warp_frame
from mirstd.synth.motion import simulate
from mirstd.synth.presets import DEFAULTS
from mirstd.synth.render import render_tile, target_mask
from mirstd.synth.sensor import Sensor, expose, quantize
from mirstd.synth.templates import Template, aircraft_mesh, draw_template


@pytest.mark.parametrize("delta", [0.0, 0.25, 0.5])
def test_area_resampling_conserves_energy_and_centroid(delta):
    tmpl = Template("point", {"sigma_x": 0.5, "sigma_y": 0.5}, 0.0)
    x, y = 20.0 + delta, 30.0 + delta
    tile = render_tile(tmpl, (x, y), (64, 64), psf_sigma=0.0, supersample=8)
    assert abs(tile.tau.sum() / (2 * np.pi * 0.25) - 1) < 1e-3
    rr, cc = np.mgrid[tile.slices]
    cx, cy = (cc * tile.tau).sum() / tile.tau.sum(), (rr * tile.tau).sum() / tile.tau.sum()
    assert abs(cx - x) < 0.01 and abs(cy - y) < 0.01


def test_mask_threshold_and_argmax():
    tau = np.array([[0.0, 0.1, 0.0], [0.19, 1.0, 0.5], [0.0, 0.2, 0.0]])
    m = target_mask(tau, None, 0.2)
    assert m.sum() == 3 and m[1, 1] and m[1, 2] and m[2, 1]
    alpha = np.full((2, 2), 0.3)
    assert target_mask(tau[:2, :2], alpha, 0.2).sum() == 1  # arg-max pixel always included


def test_aircraft_mesh_and_silhouette():
    mesh = aircraft_mesh()
    assert mesh.shape == (12 * 8 * 2 + 4 + 4 + 2, 3, 3)
    assert np.isclose(mesh[..., 0].max(), 0.5) and np.isclose(mesh[..., 0].min(), -0.5)
    t = draw_template("aircraft", R.stream(0, 0), {**DEFAULTS, "aircraft_length": 16.0})
    tile = render_tile(t, (32.0, 32.0), (64, 64), 0.6, 8, attitude=(0.0, 0.0, 0.0))
    assert tile.occluding and tile.alpha.max() == 1.0
    rows, cols = np.nonzero(tile.mask)
    assert 14 <= cols.max() - cols.min() + 1 <= 18  # nose to tail ≈ L along x at yaw 0


def test_fbm_normalised_and_anisotropic():
    f = fbm(128, 128, 2.4, R.stream(1, 0), ax=4.0)
    assert abs(f.mean()) < 1e-9 and abs(f.std() - 1) < 1e-9
    gx, gy = np.abs(np.diff(f, axis=1)).mean(), np.abs(np.diff(f, axis=0)).mean()
    assert gx < 0.7 * gy  # stretched along x: smoother along rows


@pytest.mark.parametrize("family", FAMILIES)
def test_background_families_in_range(family):
    bg = make_background(family, 96, 96, R.stream(3, 0), noise_sigma=2.0)
    full = bg.canvas + (bg.cloud if bg.cloud is not None else 0)
    lo, hi = np.percentile(full, [0.1, 99.9])
    assert np.isfinite(full).all() and lo >= 15 - 1e-6 and hi <= 170 + 1e-6


def test_egomotion_translation_recovered_by_phase_correlation():
    canvas = 100 + 10 * fbm(160, 160, 2.2, R.stream(5, 0))
    T, h = 3, 96
    d = np.array([[0.0, 0.0], [0.7, -0.4], [1.9, 0.3]])
    ego = EgoMotion(d, np.zeros(T), np.ones(T), 32, (h, h), {})
    co = prefilter(canvas)
    frames = [warp_frame(co, ego, t) for t in range(T)]
    for t in (1, 2):
        a, b = frames[0], frames[t]
        win = np.outer(np.hanning(h), np.hanning(h))
        Fa, Fb = np.fft.fft2((a - a.mean()) * win), np.fft.fft2((b - b.mean()) * win)
        cps = Fa * np.conj(Fb)
        p = cps / np.abs(cps)
        corr = np.fft.ifft2(p).real
        r, c = np.unravel_index(np.argmax(corr), corr.shape)
        r, c = (r + h // 2) % h - h // 2, (c + h // 2) % h - h // 2
        # sub-pixel: evaluate the inverse DFT on a 0.01-px grid around the peak (matrix-multiply DFT)
        fr = np.fft.fftfreq(h)
        sy_c, sx_c = r + np.arange(-100, 101) / 100, c + np.arange(-100, 101) / 100
        ey, ex = np.exp(2j * np.pi * np.outer(sy_c, fr)), np.exp(2j * np.pi * np.outer(sx_c, fr))
        fine = (ey @ p @ ex.T).real
        i, j = np.unravel_index(np.argmax(fine), fine.shape)
        assert abs(sx_c[j] - d[t, 0]) < 0.1 and abs(sy_c[i] - d[t, 1]) < 0.1


def test_sensor_noise_std_and_fixed_pattern():
    h = 128
    off = R.stream(7, 1).standard_normal((h, h))
    sensor = Sensor(np.ones((h, h)), np.ones((h, h)), off, 2.5, 0.0)
    scene = np.full((h, h), 80.0)
    f1, f2 = expose(scene, sensor, R.stream(7, 1000)), expose(scene, sensor, R.stream(7, 1001))
    noise = f1 - (scene + off)
    assert abs(noise.std() / 2.5 - 1) < 0.1
    assert np.abs((f1 - f2).mean()) < 0.1  # offset O identical in both frames
    q = quantize(np.array([-1.0, 0.5, 100.0, 300.0]), 14)
    assert q.dtype == np.uint16 and q.tolist() == [0, 32, 6400, 16383]


@pytest.mark.parametrize("hard,vmax", [(False, 4.0), (True, 10.0)])
def test_motion_displacement_bounded(hard, vmax):
    T = 60
    ego = EgoMotion(np.zeros((T, 2)), np.zeros(T), np.ones(T), 8, (128, 128), {})
    for k in range(5):
        tr = simulate(R.stream(k, 10), np.array([64.0, 64.0]), ego, DEFAULTS, hard=hard)
        step = np.hypot(*np.diff(tr.image, axis=0).T)
        assert np.isfinite(tr.image).all() and step.max() <= vmax + 1
        assert tr.image.min() >= 4 - 1e-9 and tr.image.max() <= 127 - 4 + 1e-9
        assert set(tr.modes) <= {"CV", "CA", "CT", "CJ"}
