"""Point labels grown to their target's pixels (``point_mask="peak"``)."""

from __future__ import annotations

import numpy as np
import pytest

from mirstd.data import ClipDataset, FrameLabels, Sequence, load_dataset
from mirstd.data.convert import points_to_mask, points_to_peak_mask


def _frame(seed: int = 0, h: int = 48, w: int = 56) -> np.ndarray:
    return 100.0 + np.random.default_rng(seed).normal(0.0, 3.0, (h, w))


def test_peak_mask_moves_onto_an_offset_target():
    f = _frame()
    f[30:32, 21:23] += 40.0  # a 2x2 hot target; the label sits 1.5 px up-left of it
    m = points_to_peak_mask([[19.6, 29.4]], f, radius=1)
    ys, xs = np.nonzero(m)
    assert m[30:32, 21:23].all()  # every target pixel is in the mask
    assert m[29:33, 20:24].sum() == m.sum()  # and nothing more than 1 px from it
    assert 9 <= m.sum() <= 12 and abs(xs.mean() - 21.5) < 1.0 and abs(ys.mean() - 30.5) < 1.0
    square = points_to_mask([[19.6, 29.4]], f.shape, 1)
    assert square[30:32, 21:23].sum() == 1  # the fixed square holds one of the four target pixels


def test_peak_mask_grows_to_a_larger_target_and_finds_cold_ones():
    f = _frame(1)
    f[10:15, 20:25] += 50.0  # 5x5 hot
    f[30:33, 40:43] -= 50.0  # 3x3 cold
    m = points_to_peak_mask([[22.0, 12.0], [40.0, 30.0]], f, radius=1)
    assert m[10:15, 20:25].all() and m[30:33, 40:43].all()
    assert m[9:16, 19:26].sum() + m[29:34, 39:44].sum() == m.sum()  # nothing more than 1 px from them


def test_peak_mask_keeps_the_square_where_no_target_stands_out():
    f = _frame(2)
    pts = [[20.0, 20.0], [5.0, 40.0]]
    assert np.array_equal(points_to_peak_mask(pts, f, radius=1), points_to_mask(pts, f.shape, 1))
    assert np.array_equal(
        points_to_peak_mask(pts, np.zeros((48, 56)), radius=2), points_to_mask(pts, (48, 56), 2)
    )
    assert points_to_peak_mask([[80.0, 5.0]], f).sum() == 0  # a point outside the frame adds nothing


def test_clip_dataset_point_mask_option():
    f = _frame(3)
    f[20:22, 30:32] += 40.0
    labels = [FrameLabels(points=[[28.4, 18.4]], has_points=True) for _ in range(3)]
    seq = Sequence("s", [lambda: f for _ in range(3)], labels, None, "semantic", 8, f.shape)
    peak = ClipDataset([seq], num_frames=2, mask_from="points", mask_radius=1, point_mask="peak")
    square = ClipDataset([seq], num_frames=2, mask_from="points", mask_radius=1)
    mp, ms = peak[1]["mask"][0].numpy(), square[1]["mask"][0].numpy()
    assert mp[20:22, 30:32].all() and ms[20:22, 30:32].sum() == 0  # the square misses it
    assert np.array_equal(peak.target(1)["mask"][0].numpy(), mp)  # the eval path gives the same mask
    assert np.allclose(peak[1]["points"].tolist(), [[28.4, 18.4]])  # point metrics still use the label
    with pytest.raises(ValueError, match="point_mask='disc'"):
        ClipDataset([seq], mask_from="points", point_mask="disc")


def test_airground_labels_sit_up_left_of_the_aircraft(airground):
    """Why ``configs/real/*.yaml`` use ``point_mask=peak``: measured on the shared sequences."""
    clips = ClipDataset(
        load_dataset(airground), num_frames=1, mask_from="points", mask_radius=1, point_mask="peak"
    )
    offsets = []
    for k in range(0, len(clips), 25):
        t = clips.target(k)
        ys, xs = np.nonzero(t["mask"][0].numpy())
        ((px, py),) = t["points"].numpy()
        offsets.append((xs.mean() - px, ys.mean() - py))
    dx, dy = np.mean(offsets, axis=0)
    assert 0.5 < dx < 2.0 and 0.5 < dy < 2.0
    assert np.hypot(*np.asarray(offsets).T).max() < 3.0  # still within the point protocol's 3 px
