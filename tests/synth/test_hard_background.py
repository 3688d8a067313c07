"""``make_background(hard=True)``: the ``test_hard`` split's backgrounds carry more target-like clutter."""

import numpy as np
import pytest
from scipy import ndimage

from mirstd.synth import plan_dataset, render_sequence, resolve_config
from mirstd.synth import rng as R
from mirstd.synth.background import FAMILIES, make_background

SEEDS = range(5)
NOISE = 2.0


def _frame(family: str, seed: int, hard: bool) -> np.ndarray:
    bg = make_background(family, 128, 128, R.stream(seed, 0), noise_sigma=NOISE, hard=hard)
    scene = bg.canvas + (bg.cloud if bg.cloud is not None else 0.0)
    noise = NOISE * np.random.default_rng(seed).standard_normal(scene.shape)  # same noise for both
    return ndimage.gaussian_filter(scene, 0.7) + noise  # PSF + temporal noise, as the sensor does


def _false_alarms(img: np.ndarray, k: float = 2.0) -> int:
    """Detections of a local-contrast detector on a target-free frame: 3×3 means that are a local
    extremum over 7×7 and differ from the 21×21 mean by more than ``k`` local stds (SCR-like)."""
    m3 = ndimage.uniform_filter(img, 3)
    m = ndimage.uniform_filter(img, 21)
    sd = np.maximum(np.sqrt(np.maximum(ndimage.uniform_filter(img * img, 21) - m * m, 0.0)), 1.0)
    peak = (m3 == ndimage.maximum_filter(m3, 7)) | (m3 == ndimage.minimum_filter(m3, 7))
    return int(((np.abs(m3 - m) / sd > k) & peak).sum())


def test_hard_backgrounds_give_more_false_alarms():
    normal = {f: sum(_false_alarms(_frame(f, s, False)) for s in SEEDS) for f in FAMILIES}
    hard = {f: sum(_false_alarms(_frame(f, s, True)) for s in SEEDS) for f in FAMILIES}
    # measured (5 seeds, 128 px): sky 1 -> 77, cloud 87 -> 126, ground 149 -> 168, sea 14 -> 67,
    # horizon 58 -> 109; all 309 -> 547
    assert all(hard[f] >= normal[f] for f in FAMILIES), (normal, hard)
    assert sum(hard.values()) >= 1.5 * sum(normal.values()), (normal, hard)


@pytest.mark.parametrize("family", FAMILIES)
def test_hard_background_deterministic_in_range_and_same_scene(family):
    a = make_background(family, 96, 96, R.stream(7, 0), noise_sigma=NOISE, hard=True)
    b = make_background(family, 96, 96, R.stream(7, 0), noise_sigma=NOISE, hard=True)
    assert a.canvas.tobytes() == b.canvas.tobytes() and a.params == b.params
    full = a.canvas + (a.cloud if a.cloud is not None else 0)
    lo, hi = np.percentile(full, [0.1, 99.9])
    assert np.isfinite(full).all() and lo >= 15 - 1e-6 and hi <= 170 + 1e-6
    normal = make_background(family, 96, 96, R.stream(7, 0), noise_sigma=NOISE)
    assert not np.array_equal(normal.canvas, a.canvas)
    # clutter is drawn after the family's own draws: the same scene parameters, plus the clutter
    extra = {"hard", "hard_clutter", "level_map", "glint"}
    if normal.glint is not None:  # hard sea: three times the glint density (capped)
        assert a.glint["density"] == pytest.approx(min(3 * normal.glint["density"], 6e-3))
    assert {k: v for k, v in a.params.items() if k not in extra} == {
        k: v for k, v in normal.params.items() if k not in extra
    }
    assert a.params["hard"] is True and a.params["hard_clutter"]["spots"] > 0 and "hard" not in normal.params


def test_standard_test_hard_split_renders_hard_backgrounds():
    cfg = resolve_config("standard")
    plans = plan_dataset(cfg, 0)
    hard = next(p for p in plans if p.split == "test_hard")
    normal = next(p for p in plans if p.split == "test")
    kw = dict(seed=0, frames=2, size=96)
    seq = render_sequence("standard", index=hard.index, **kw)
    assert seq.meta["background"]["hard"] is True and seq.meta["hard"] is True
    assert "hard" not in render_sequence("standard", index=normal.index, **kw).meta["background"]
    again = render_sequence("standard", index=hard.index, **kw)
    assert again.meta["sha256"] == seq.meta["sha256"]
    assert all(np.array_equal(again.load_frame(t), seq.load_frame(t)) for t in range(2))
