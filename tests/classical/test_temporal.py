"""MCTD: registration by phase correlation and the registered min-difference score."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from scipy import ndimage

from mirstd.classical import global_shift, mctd, register_to, top_hat
from mirstd.classical.temporal import mctd_probability


def _canvas(seed: int, size: int = 200) -> np.ndarray:
    """Ground-like clutter on the 8-bit scale: smoothed noise at two scales plus bright specks."""
    rng = np.random.default_rng(seed)
    c = 110 + 40 * ndimage.gaussian_filter(rng.normal(size=(size, size)), 6) * 6
    c += 15 * ndimage.gaussian_filter(rng.normal(size=(size, size)), 1.2) * 2
    ys, xs = rng.integers(0, size, 40), rng.integers(0, size, 40)
    c[ys, xs] += 70  # point-like clutter a single-frame filter cannot tell from a target
    return c


def _panning_clip(seed: int, frames: int = 21, pan=(0.7, -0.4), target_rel=(0.5, 0.3), amp: float = 60.0):
    """Camera pans over a static canvas by ``pan`` px/frame; a 2-px target moves ``target_rel``
    px/frame relative to the ground. Returns the (T, 64, 64) clip and the key frame's target (x, y)."""
    canvas = _canvas(seed)
    out, pos = [], None
    for t in range(frames):
        ox, oy = 60 + pan[0] * t, 60 + pan[1] * t
        frame = ndimage.shift(canvas, (-oy, -ox), order=3, mode="reflect")[:64, :64]
        tx, ty = 20 + (pan[0] + target_rel[0]) * 0 + target_rel[0] * t, 30 + target_rel[1] * t
        yy, xx = np.mgrid[:64, :64]
        frame = frame + amp * np.exp(-((xx - tx) ** 2 + (yy - ty) ** 2) / (2 * 0.7**2))
        out.append(frame)
        pos = (tx, ty)
    return np.stack(out), pos


@pytest.mark.parametrize("shift", [(3.0, -2.0), (0.6, 1.3), (-5.25, 0.4)])
def test_global_shift_recovers_a_known_translation(shift):
    canvas = _canvas(0)
    ref = canvas[36:164, 36:164]
    moved = ndimage.shift(canvas, (shift[1], shift[0]), order=3, mode="reflect")[36:164, 36:164]
    dx, dy = global_shift(ref, moved)
    # OpenCV's centroid refinement is biased by up to ~0.25 px at fractional shifts of smooth
    # clutter (measured: 0.6 -> 0.82); MCTD's min over two offsets tolerates that
    assert abs(dx - shift[0]) < 0.3 and abs(dy - shift[1]) < 0.3
    warped, inside = register_to(ref, moved)
    interior = inside.copy()
    interior[:8], interior[-8:], interior[:, :8], interior[:, -8:] = False, False, False, False
    # registered: the residual is far below the clutter's own contrast
    assert np.abs(warped - ref)[interior].mean() < 0.3 * np.abs(moved - ref)[interior].mean()
    assert not inside.all()  # the warp reads past the border on the shifted side


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_mctd_finds_the_moving_target_where_top_hat_ranks_clutter_first(seed):
    clip, (tx, ty) = _panning_clip(seed)
    s = mctd(clip)
    yy, xx = np.unravel_index(np.argmax(s), s.shape)
    assert np.hypot(xx - tx, yy - ty) < 2.0
    # the specks and texture that top-hat keeps are gone: the target's score beats everything
    # farther than 4 px from it by a margin
    far = np.hypot(*np.mgrid[:64, :64][::-1] - np.array([tx, ty])[:, None, None]) > 4
    assert s.max() > 2.0 * s[far].max()
    th = top_hat(clip[-1])
    assert th[far].max() > th.max() * 0.5  # single-frame contrast does not separate them


@pytest.mark.parametrize("seed", [3, 4, 5, 6, 7, 8])
def test_mctd_without_a_target_is_flat_and_zero_outside_the_warp(seed):
    clip, _ = _panning_clip(seed, amp=0.0)
    s = mctd(clip)
    target_clip, _ = _panning_clip(seed)
    # S is a local SNR, so a target-free map is not 0; its peak (ringing of the interpolated specks)
    # stays well under the target's (measured 0.0-0.5 of it over these seeds)
    assert s.max() < 0.6 * mctd(target_clip).max()
    # pan (0.7, -0.4) px/frame: 20 frames back, the warp reads 14 px past the right border
    assert (s[:, -14:] == 0).all() and (s >= 0).all()


def test_mctd_rejects_bad_arguments_and_short_clips():
    clip, _ = _panning_clip(0)
    with pytest.raises(ValueError, match="needs 21 frames"):
        mctd(clip[:20])
    with pytest.raises(ValueError, match="offsets"):
        mctd(clip, offsets=(0, 5))
    assert mctd(clip, offsets=(5,)).shape == (64, 64)


def test_mctd_as_a_model_cuts_long_clips_and_scores_in_0_1():
    from mirstd.models import create

    clip, (tx, ty) = _panning_clip(1, frames=23)
    m = create("mctd")
    x = torch.from_numpy(clip / 255.0)[None, None]
    p = m.predict(x).scores
    assert p.shape == (1, 1, 64, 64) and 0 <= float(p.min()) and float(p.max()) <= 1
    assert torch.equal(p, m.predict(x[:, :, 2:]).scores)
    yy, xx = np.unravel_index(int(torch.argmax(p)), (64, 64))
    assert np.hypot(xx - tx, yy - ty) < 2.0


def test_mctd_probability_keeps_the_score_ranking_across_frames():
    """The k-sigma rule normalises each frame by its own map; MCTD's score is already an SNR, so
    its probability is one fixed logistic of S: the same S gives the same p in any frame."""
    from mirstd.models import create

    m = create("mctd")
    clips = [_panning_clip(seed)[0] for seed in (0, 1)]
    p = [m.predict(torch.from_numpy(c / 255.0)[None, None]).scores[0, 0].double().numpy() for c in clips]
    for c, pi in zip(clips, p):
        # the wrapper works on the [0, 1] clip times 255, as here
        expected = mctd_probability(mctd(np.round(c / 255.0 * 255.0, 12)))
        assert np.abs(pi - np.clip(expected, 1e-6, 1 - 1e-6)).max() < 1e-6
    assert mctd_probability(np.array([5.0]))[0] == 0.5
    s = np.linspace(0, 20, 41)
    assert np.all(np.diff(mctd_probability(s)) > 0)
