"""WSLCM and STLCF (peaks on the targets, brute-force checks), the model wrapper (frame counts,
contract, model_args), bad inputs, and the classical figures metric (spec metrics.md E7)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from classical_scenes import make_scene

from mirstd.classical import MULTI_FRAME, SINGLE_FRAME, lowrank, saliency_to_probability
from mirstd.classical.local import _topk_mean, stlcf, wslcm

# ----------------------------------------------------------------------------- local contrast


def _peaks_on_targets(sal, mask, n=3):
    """The n highest 5×5-local maxima of the map all lie within 1 px of a target pixel."""
    from scipy import ndimage

    lm = (sal == ndimage.maximum_filter(sal, 5)) & (sal > 0)
    cand = np.argwhere(lm)
    top = cand[np.argsort(sal[lm])[::-1][:n]]
    near = ndimage.binary_dilation(mask, np.ones((3, 3), bool))
    return all(near[r, c] for r, c in top) and len(top) == n


def test_wslcm_peaks_on_targets():
    stack, masks, _, _ = make_scene(64, 64, frames=1)
    assert _peaks_on_targets(wslcm(stack[-1]), masks[-1])


def test_stlcf_peaks_on_moving_targets_and_ignores_static_ones():
    stack, masks, _, _ = make_scene(64, 64, frames=5)
    stack[:, 10, 10] += 60  # static bright clutter point
    s = stlcf(stack)
    assert _peaks_on_targets(s, masks[-1])
    assert s[10, 10] == 0.0


def test_topk_mean_matches_loops():
    rng = np.random.default_rng(0)
    img = rng.random((7, 8))
    got = _topk_mean(img, 3, 2)
    pad = np.pad(img, 1, mode="reflect")
    for r in range(7):
        for c in range(8):
            ref = np.sort(pad[r : r + 3, c : c + 3].ravel())[-2:].mean()
            assert got[r, c] == pytest.approx(ref, abs=1e-15)


def test_stlcf_spatial_term_matches_port_loops():
    """The spatial term against the per-pixel loops of the public MATLAB port (border-clipped
    window, centre excluded, normalised by the frame maximum); static scene → temporal term 0."""
    rng = np.random.default_rng(1)
    stack = rng.random((5, 6, 7))
    stack[-1] += 1.0  # every pixel brighter than its history: temporal term > 0 everywhere
    r = 1
    cur = stack[-1]
    slc = np.zeros_like(cur)
    for y in range(6):
        for x in range(7):
            win = cur[max(0, y - r) : y + r + 1, max(0, x - r) : x + r + 1]
            slc[y, x] = abs(cur[y, x] - (win.sum() - cur[y, x]) / (win.size - 1))
    tlc = np.maximum(cur - stack[:-1].mean(axis=0), 0)
    ref = slc / slc.max() * tlc / tlc.max()
    assert np.abs(stlcf(stack, r=1, Nt=4) - ref).max() < 1e-12


# ----------------------------------------------------------------------------- model wrapper


EXPECTED_FRAMES = {"stlcf": 5, "stt": 3, "asttv_ntla": 3, "wsnm_stipt": 4, "imnn_lwec": 3, "mctd": 21}


def test_every_classical_method_is_a_valid_model_with_its_frame_count():
    from mirstd.models import create, list_models

    names = set(SINGLE_FRAME) | set(MULTI_FRAME)
    assert {"ipi", "pstnn", "wslcm", "stt", "asttv_ntla", "wsnm_stipt", "imnn_lwec"} <= names
    assert names <= set(list_models())
    for name in names:
        m = create(name)
        assert m.trainable is False
        assert m.num_frames == EXPECTED_FRAMES.get(name, 1), name
    assert create("stt", L=5).num_frames == 5
    assert create("stlcf", Nt=6).num_frames == 7
    assert create("mctd", offsets=(4, 8, 12)).num_frames == 13
    with pytest.raises(ValueError, match="patch_size"):
        create("ipi", patch_sise=30)


def test_model_predicts_and_rejects_short_clips():
    from mirstd.models import create

    stack, masks, _, _ = make_scene(64, 64, frames=4)
    clip = torch.from_numpy(stack / 255.0).float()[None, None]  # (1, 1, 4, 64, 64)
    m = create("wsnm_stipt")
    p = m.predict(clip).scores
    assert p.shape == (1, 1, 64, 64) and float(p.max()) <= 1 and float(p.min()) >= 0
    assert bool((p[0, 0].numpy() > 0.5)[masks[-1]].any())
    with pytest.raises(ValueError, match="needs a clip of 4 frames"):
        m.predict(clip[:, :, :3])
    # a longer clip is cut to the last num_frames frames
    long = torch.cat([clip[:, :, :1], clip], dim=2)
    assert torch.equal(m.predict(long).scores, p)
    assert m.saliency(clip).shape == (1, 64, 64)


# ----------------------------------------------------------------------------- bad input

SINGLE = {
    "ipi": (lowrank.ipi, {}),
    "pstnn": (lowrank.pstnn, {}),
    "ript": (lowrank.ript, {}),
    "wslcm": (wslcm, {}),
}
MULTI = {
    "stt": (lowrank.stt, {}),
    "wsnm_stipt": (lowrank.wsnm_stipt, {}),
    "asttv_ntla": (lowrank.asttv_ntla, {}),
    "imnn_lwec": (lowrank.imnn_lwec, {}),
    "stlcf": (stlcf, {}),
}


@pytest.mark.parametrize("name", ["ipi", "pstnn", "ript"])
def test_frame_smaller_than_patch_is_a_clear_error(name):
    fn, _ = SINGLE[name]
    with pytest.raises(ValueError, match="smaller than the patch"):
        fn(np.zeros((20, 20)))
    with pytest.raises(ValueError, match="smaller than the patch"):
        lowrank.stt(np.zeros((3, 30, 30)))


@pytest.mark.parametrize("name", list(SINGLE) + list(MULTI))
def test_nan_is_a_clear_error(name):
    fn, _ = {**SINGLE, **MULTI}[name]
    a = np.full((6, 64, 64) if name in MULTI else (64, 64), 10.0)
    a[..., 5, 5] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        fn(a)


@pytest.mark.parametrize("name", list(MULTI))
def test_clip_shorter_than_frame_count_is_a_clear_error(name):
    fn, _ = MULTI[name]
    with pytest.raises(ValueError, match="needs .* frames"):
        fn(np.zeros((2, 64, 64)))


@pytest.mark.parametrize("name", list(SINGLE) + list(MULTI))
def test_constant_frame_gives_an_empty_map_quickly(name):
    fn, _ = {**SINGLE, **MULTI}[name]
    a = np.full((6, 64, 64) if name in MULTI else (64, 64), 37.0)
    s = fn(a)
    assert np.isfinite(s).all() and np.abs(s).max() < 1e-6
    assert saliency_to_probability(s).max() < 0.5  # nothing detected


def test_max_iter_must_be_positive():
    with pytest.raises(ValueError, match="max_iter"):
        lowrank.ipi(np.zeros((64, 64)), max_iter=0)


# ----------------------------------------------------------------------------- classical figures


def test_classical_figures_worked_example_e7():
    from mirstd.metrics.classical_figures import ClassicalFigures

    img = np.where((np.add.outer(np.arange(9), np.arange(9)) % 2) == 0, 10.0, 14.0)
    m = np.zeros((9, 9), bool)
    m[4:6, 4:6] = True
    img[m] = 40
    out = np.maximum(img - 12, 0)
    cf = ClassicalFigures(rescale=False)
    cf.update(scores=out, gt_mask=m, image=img)
    r = cf.result()
    assert r["scr_in"] == pytest.approx(14.014169, abs=1e-6)
    assert r["scr_out"] == pytest.approx(27.012987, abs=1e-6)
    assert r["scrg"] == pytest.approx(1.927548, abs=1e-6)
    assert r["bsf"] == pytest.approx(2.000000, abs=1e-6)
    assert r["cg"] == pytest.approx(27.012987 / (40 - 11.974026), abs=1e-6)  # 0.963855
    assert r["targets"] == 1


def test_classical_figures_rescale_and_multiple_targets():
    from mirstd.metrics.classical_figures import ClassicalFigures

    stack, masks, _, _ = make_scene(64, 64, frames=1)
    sal = wslcm(stack[-1])
    cf = ClassicalFigures()
    cf.update(scores=sal, gt_mask=masks[-1], image=stack[-1])
    cf.update(scores=sal * 1000.0, gt_mask=masks[-1], image=stack[-1])  # scale-free after rescale
    r = cf.result()
    assert r["targets"] == 6 and r["scrg"] > 1 and r["bsf"] > 1
    assert r["scrg"] == pytest.approx(r["scrg_median"], rel=1.0)
    with pytest.raises(ValueError, match="image"):
        ClassicalFigures().update(scores=sal, gt_mask=masks[-1])
