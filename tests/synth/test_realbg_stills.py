"""Real still images as scene canvases (``backgrounds=`` a folder of unrelated stills)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from scipy import ndimage

from mirstd.synth import load_synth, plan_dataset, resolve_config
from mirstd.synth import presets as P
from mirstd.synth.engine import SeqPlan, real_kind, render
from mirstd.synth.realbg import _same_scene, real_canvas, scan_folder
from mirstd.synth.sensor import QUANT
from mirstd.utils.scr import scr_clean

SMALL = {"frames": 4, "size": 64}


def _smooth(
    rng: np.random.Generator, shape: tuple[int, int], sigma: float, lo: float, hi: float
) -> np.ndarray:
    a = ndimage.gaussian_filter(rng.normal(size=shape), sigma)
    return (a - a.min()) / np.ptp(a) * (hi - lo) + lo


@pytest.fixture
def real_root(tmp_path: Path) -> Path:
    """``stills/``: 3 unrelated scenes (different sizes); ``seq/``: 5 frames of one scene."""
    rng = np.random.default_rng(7)
    root = tmp_path / "real"
    (root / "stills").mkdir(parents=True)
    (root / "seq").mkdir()
    for i, shape in enumerate([(90, 110), (120, 100), (80, 140)]):
        img = _smooth(rng, shape, 4 + 2 * i, 40 + 10 * i, 170)
        assert cv2.imwrite(str(root / "stills" / f"still{i}.png"), img.astype(np.uint8))
    base = _smooth(rng, (80, 96), 5, 60, 180)
    for t in range(5):
        frame = np.clip(base + rng.normal(0, 1.0, base.shape), 0, 255)
        assert cv2.imwrite(str(root / "seq" / f"{t:04d}.png"), frame.astype(np.uint8))
    return root


def test_scan_folder_tells_stills_from_a_sequence(real_root):
    src = scan_folder(str(real_root))
    seqs = [s for s in src if not s.still]
    stills = [s for s in src if s.still]
    assert [s.name for s in seqs] == ["seq"] and len(seqs[0].frames) == 5 and seqs[0].points is None
    assert sorted(s.name for s in stills) == [f"stills/still{i}.png" for i in range(3)]
    assert all(len(s.frames) == 1 and s.points is None for s in stills)
    assert not _same_scene(sorted((real_root / "stills").iterdir()))
    assert _same_scene(sorted((real_root / "seq").iterdir()))
    assert not _same_scene([real_root / "seq" / "0000.png"])  # one image is never a sequence
    only = scan_folder(str(real_root / "stills"))  # images directly in the root folder
    assert len(only) == 3 and all(s.still and s.name.startswith("stills/") for s in only)


def test_real_canvas_crops_and_scales(real_root):
    rng = np.random.default_rng(0)
    for size in ((60, 70), (150, 200)):  # smaller and larger than every still
        canvas, info = real_canvas(str(real_root / "stills"), rng, size)
        assert canvas.shape == size and canvas.dtype == np.float64 and info["still"]
        assert 1.0 <= info["scale"] and 30 <= canvas.min() and canvas.max() <= 175
    with pytest.raises(ValueError, match="no still images"):
        real_canvas(str(real_root / "seq"), rng, (32, 32))


def test_stills_render_as_real_family(real_root):
    ds = load_synth("smoke", backgrounds=str(real_root / "stills"), real_fraction=1.0, **SMALL)
    assert len(ds) == 6
    sources = set()
    for seq in ds:
        info = seq.meta["background"]["real"]
        assert seq.meta["family"] == "real" and info["still"] and info["source"].startswith("stills/")
        sources.add(info["source"])
        assert len(seq) == 4 and seq.load_frame(0).shape == (64, 64)
        assert seq.labels[0].num_targets >= 1 and np.isfinite(seq.labels[0].scr).all()
        assert seq.meta["sensor"].get("real") is not True
    assert len(sources) >= 2  # the stills are drawn at random
    # the camera moves over the still (ego-motion on): frames differ
    assert any(not np.array_equal(s.load_frame(0), s.load_frame(3)) for s in ds)


def test_sequence_folder_and_mixed_folder(real_root):
    cfg = resolve_config("smoke", backgrounds=str(real_root / "seq"), real_fraction=1.0, **SMALL)
    plan = plan_dataset(cfg, 0)[0]
    assert real_kind(cfg, 0, plan) == "sequence"
    seq = render(cfg, 0, plan).sequence
    assert seq.meta["background"]["real"]["source"] == "seq" and "still" not in seq.meta["background"]["real"]
    mixed = resolve_config("smoke", backgrounds=str(real_root), real_fraction=1.0, **SMALL)
    kinds = [real_kind(mixed, 0, SeqPlan(i, f"seq{i:04d}", "train", "low", "real", False)) for i in range(40)]
    assert 8 <= kinds.count("still") <= 32 and set(kinds) == {"still", "sequence"}
    again = [real_kind(mixed, 0, SeqPlan(i, f"seq{i:04d}", "train", "low", "real", False)) for i in range(40)]
    assert kinds == again  # drawn from the seed
    assert real_kind(mixed, 0, SeqPlan(0, "seq0000", "train", "low", "sky", False)) is None


def test_scr_guarantee_on_real_stills(real_root):
    cfg = resolve_config("smoke", backgrounds=str(real_root / "stills"), real_fraction=1.0,
                         scr=[0.5, 10.0], targets=[0.2, 0.4, 0.4], frames=5, size=64)  # fmt: skip
    lsb = QUANT[int(cfg["bit_depth"])][0]
    errs, n = [], 0
    for plan in plan_dataset(cfg, 1):
        r = render(cfg, 1, plan, keep_background=True)
        assert r.sequence.meta["background"]["real"]["still"]
        for t, lab in enumerate(r.sequence.labels):
            inst = r.instances[t]
            for k, rec in enumerate(lab.extra["targets"]):
                n += 1
                this = inst == lab.ids[k]
                meas = scr_clean(r.stored[t] / lsb, this, (inst > 0) & ~this)
                assert abs(meas - rec["scr_measured"]) < 1e-9 and abs(lab.scr[k] - meas) < 1e-4
                if rec["scr_guard"] is not None:
                    assert rec["scr_guard"] in ("full_scale", "bright_background")
                    assert rec["scr_requested"] == pytest.approx(meas, rel=1e-3)
                    continue
                assert 0.5 <= rec["scr_requested"] <= 10.0
                errs.append(abs(meas / rec["scr_requested"] - 1))
    assert n >= 30 and len(errs) >= 0.7 * n
    assert max(errs) <= 0.10, f"max SCR error {max(errs):.3f}"


def test_same_seed_same_frames(real_root):
    kw = {"backgrounds": str(real_root / "stills"), "real_fraction": 1.0, **SMALL}
    a, b = load_synth("smoke", seed=5, **kw), load_synth("smoke", seed=5, **kw)
    for name in a.sequences:
        assert a[name].meta["sha256"] == b[name].meta["sha256"]
        assert all(np.array_equal(a[name].load_frame(t), b[name].load_frame(t)) for t in range(4))
        assert a[name].meta["background"] == b[name].meta["background"]
    c = load_synth("smoke", seed=6, **kw)
    assert any(c[n].meta["sha256"] != a[n].meta["sha256"] for n in a.sequences)


def test_backgrounds_auto(tmp_path, monkeypatch, real_root):
    target = tmp_path / "roots" / "ir-backgrounds"
    target.parent.mkdir()
    (real_root / "stills").rename(target)
    monkeypatch.setenv("MIRSTD_DATA", str(tmp_path / "roots"))
    assert P.resolve_backgrounds("auto") == str(target)
    assert resolve_config("smoke", backgrounds="auto")["backgrounds"] == str(target)
    assert P.resolve_backgrounds(None) is None and P.resolve_backgrounds("/some/dir") == "/some/dir"

    def missing(name):
        raise FileNotFoundError(name)

    monkeypatch.setattr(P, "find_real", missing)
    assert resolve_config("smoke", backgrounds="auto")["backgrounds"] is None  # procedural only
