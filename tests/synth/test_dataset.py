"""Dataset-level checks (spec synth.md §11 items 1, 2, 3, 7, 8), the SCR ablation and the CLI."""

import dataclasses
import hashlib
from pathlib import Path

import numpy as np
import pytest
from scipy import ndimage

from mirstd.synth import load_synth, plan_dataset, render_sequence, resolve_config
from mirstd.synth.cli import main as synth_main
from mirstd.utils.scr import mscr, scr_clean


def _targets(rendered):
    for r in rendered:
        for t, lab in enumerate(r.sequence.labels):
            for k, rec in enumerate(lab.extra["targets"]):
                yield r, t, k, lab, rec


def test_scr_accuracy_on_stored_frames(smoke_rendered):
    cfg, rendered = smoke_rendered
    lsb = 64.0
    errs, guarded, n = [], 0, 0
    for r, t, k, lab, rec in _targets(rendered):
        n += 1
        inst = r.instances[t]
        this = inst == lab.ids[k]
        # independent full-frame recomputation with the metrics module
        meas = scr_clean(r.stored[t] / lsb, this, (inst > 0) & ~this)
        assert abs(meas - rec["scr_measured"]) < 1e-9 and abs(lab.scr[k] - meas) < 1e-4
        if rec["scr_guard"] is not None:
            # spec §6.5 guards: S unreachable (peak would pass full scale on strong clutter, or the
            # background under M is already brighter than requested); the reached SCR is recorded
            guarded += 1
            assert rec["scr_guard"] in ("full_scale", "bright_background")
            assert rec["scr_requested"] == pytest.approx(meas, rel=1e-3)
            if rec["scr_guard"] == "full_scale":
                assert meas < rec["scr_requested_original"] and r.stored[t][this].max() / lsb >= 240
            continue
        assert 0.5 <= rec["scr_requested"] <= 10.0
        errs.append(abs(meas / rec["scr_requested"] - 1))
    errs = np.asarray(errs)
    assert n >= 200 and len(errs) >= 200
    assert errs.max() <= 0.10, f"max SCR error {errs.max():.3f}"
    assert guarded / n < 0.2  # measured 34/260 on this clutter-heavy draw (see docs/synth.md)


def test_masks_boxes_points_signal_agree_and_nothing_unlabelled(smoke_rendered):
    _, rendered = smoke_rendered
    for r in rendered:
        seq = r.sequence
        n_targets = len(seq.meta["targets"])
        for t, lab in enumerate(seq.labels):
            inst = r.instances[t]
            assert lab.num_targets == n_targets  # every planned target is labelled in every frame
            assert np.array_equal(seq.load_mask(t), inst)
            diff = r.stored[t].astype(np.float64) - r.background[t]
            for k in range(lab.num_targets):
                rec = lab.extra["targets"][k]
                m = inst == lab.ids[k]
                rows, cols = np.nonzero(m)
                x1, y1, x2, y2 = (int(v) for v in lab.boxes[k])
                assert (x1, y1, x2, y2) == (cols.min(), rows.min(), cols.max() + 1, rows.max() + 1)
                assert rec["area_px"] == m.sum() and rec["bbox_xyxy"] == [x1, y1, x2 - 1, y2 - 1]
                cx, cy = rec["mask_centroid_xy"]
                assert x1 <= cx < x2 and y1 <= cy < y2
                px, py = lab.points[k]
                if rec["family"] == "point":
                    assert np.hypot(px - cx, py - cy) <= 1.5
                if rec["amplitude"] != 0 and rec["family"] != "aircraft":
                    # the strongest change the target makes lies inside its own mask
                    near = np.zeros_like(m)
                    near[max(y1 - 6, 0) : y2 + 6, max(x1 - 6, 0) : x2 + 6] = True
                    peak = np.unravel_index(
                        np.argmax(np.where(near, diff * np.sign(rec["amplitude"]), -np.inf)), m.shape
                    )
                    assert inst[peak] > 0
            # no unlabelled signal: wherever the targets changed the frame strongly, there is a mask
            strong = np.abs(diff) > 0.5 * max(np.abs(diff).max(), 1)
            assert not (strong & ~ndimage.binary_dilation(inst > 0, iterations=1)).any()


def test_value_ranges_and_bookkeeping(smoke_rendered):
    _, rendered = smoke_rendered
    for r in rendered:
        seq = r.sequence
        assert r.stored.dtype == np.uint16 and r.stored.max() <= 16383
        assert set(np.unique(r.instances)) <= set(range(0, 4))
        frame_vals = [list(lab.scr.astype(float)) for lab in seq.labels]
        assert abs(seq.meta["mSCR"] - mscr(frame_vals)) <= 1e-6
        assert seq.meta["split_scr"] == ("low" if seq.meta["mSCR"] < 3 else "high")
        sat = (r.stored == 16383).mean()
        assert sat < 1e-3 + seq.meta["sensor"].get("hot_pixels", 0) / r.stored[0].size


def test_determinism_alone_vs_dataset_and_seed_change():
    ds = load_synth("smoke", seed=3, frames=6)
    alone = render_sequence("smoke", seed=3, index=4, frames=6)
    ref = ds["seq0004"]
    assert alone.meta["sha256"] == ref.meta["sha256"]
    assert all(np.array_equal(alone.load_frame(t), ref.load_frame(t)) for t in range(6))
    again = render_sequence("smoke", seed=3, index=4, frames=6)
    assert again.meta["sha256"] == alone.meta["sha256"]
    other = render_sequence("smoke", seed=4, index=4, frames=6)
    assert other.meta["sha256"] != alone.meta["sha256"]


def _tree_hash(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_cli_writes_native_byte_identical(tmp_path, capsys):
    from mirstd.data.native import read_native

    args = ["preset=smoke", "frames=4", "seed=1"]
    assert synth_main(args + [f"out={tmp_path / 'a'}"]) == 0
    assert synth_main(args + [f"out={tmp_path / 'b'}"]) == 0
    ha, hb = _tree_hash(tmp_path / "a"), _tree_hash(tmp_path / "b")
    assert ha == hb and len(ha) > 40
    ds = read_native(tmp_path / "a")
    assert sorted(ds.splits) == ["test", "train", "val"] and [
        len(ds.splits[s]) for s in ("train", "val", "test")
    ] == [4, 1, 1]
    seq = ds["seq0000"]
    assert seq.bit_depth == 14 and seq.mask_kind == "instance" and "mSCR" in seq.meta
    lab = seq.labels[0]
    inst = seq.load_mask(0)
    k = 0
    this = inst == lab.ids[k]
    assert abs(scr_clean(seq.load_frame(0) / 64.0, this, (inst > 0) & ~this) - lab.scr[k]) < 1e-4
    assert ds.meta["seed"] == 1 and ds.meta["config"]["frames"] == 4
    assert (tmp_path / "a" / "meta.json").is_file()


def test_unknown_preset_and_key_errors():
    with pytest.raises(KeyError, match="unknown synth preset 'nope'; valid presets: smoke, demo"):
        resolve_config("nope")
    with pytest.raises(ValueError, match="unknown key 'frobs' for mirstd synth"):
        resolve_config("demo", frobs=1)
    with pytest.raises(
        ValueError, match="unknown key 'sensor.nois' for mirstd synth; valid keys: bad_fraction"
    ):
        resolve_config("demo", sensor={"nois": 1})
    with pytest.raises(ValueError, match="missing out=DIR"):
        synth_main(["preset=smoke"])


@pytest.mark.parametrize("preset", ["demo", "standard", "large"])
def test_splits_balanced(preset):
    cfg = resolve_config(preset)
    plans = plan_dataset(cfg, 0)
    by = {}
    for p in plans:
        by.setdefault(p.split, []).append(p)
    for split, ps in by.items():
        if split == "test_hard":
            assert all(p.scr_class == "hard" and p.hard for p in ps)
            continue
        low = sum(p.scr_class == "low" for p in ps)
        assert abs(2 * low - len(ps)) <= 1
        assert len({p.family for p in ps}) >= min(len(ps), 4)
    if preset == "demo":
        assert [len(by[s]) for s in ("train", "val", "test")] == [24, 6, 8]


def _tophat_detect(img: np.ndarray) -> np.ndarray:
    th = ndimage.white_tophat(img, size=(7, 7))
    return th > th.mean() + 4 * th.std()


def _pd(scr: float, n_seq: int = 3) -> float:
    hit = tot = 0
    for i in range(n_seq):
        seq = render_sequence("small", seed=11, index=i, scr=scr, frames=6, shapes={"point": 1.0})
        for t in range(len(seq)):
            det = _tophat_detect(seq.load_frame(t).astype(np.float64))
            inst = seq.load_mask(t)
            for k in seq.labels[t].ids:
                tot += 1
                hit += bool((det & ndimage.binary_dilation(inst == k, iterations=2)).any())
    return hit / tot


def test_detector_pd_grows_with_scr():
    pd1, pd8 = _pd(1.0), _pd(8.0)
    assert pd8 - pd1 > 0.3, (pd1, pd8)


REAL = Path("/work/shared/data/airground-real")


@pytest.mark.skipif(not (REAL / "data").is_dir(), reason="airground-real not available")
def test_real_backgrounds_exclude_the_real_target():
    from mirstd.synth.realbg import _pingpong, scan_folder

    seq = render_sequence("smoke", seed=2, index=0, frames=5, backgrounds=str(REAL), size=128)
    info = seq.meta["background"]["real"]
    assert seq.meta["family"] == "real" and info["real_target_excluded"]
    src = next(s for s in scan_folder(str(REAL)) if s.name == info["source"])
    oy, ox = info["crop_yx"]
    for t in range(5):
        x, y = src.points[_pingpong(info["start"] + t, len(src.frames))]
        assert not (ox - 12 < x < ox + 127 + 12 and oy - 12 < y < oy + 127 + 12)  # real target cropped away
    assert seq.labels[0].num_targets >= 1 and np.isfinite(seq.labels[0].scr).all()


def test_workers_give_byte_identical_files(tmp_path):
    """Rendering in 2 processes writes exactly the files of a single-process run (spec §9 seeding)."""
    from mirstd.synth import generate

    a = generate("smoke", tmp_path / "a", seed=3, progress=False, frames=4, size=64)
    b = generate("smoke", tmp_path / "b", seed=3, progress=False, workers=2, frames=4, size=64)
    files_a = sorted(p.relative_to(a) for p in a.rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(b) for p in b.rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) > 20
    for rel in files_a:
        assert (a / rel).read_bytes() == (b / rel).read_bytes(), rel


def test_in_memory_preset_names_its_splits_for_merging():
    from mirstd.data.readers import merge_datasets

    ds = load_synth("smoke", seed=0, frames=4)
    for split in ("train", "val", "test"):
        assert ds.splits[f"synth_{split}"] == ds.splits[split]
    other = dataclasses.replace(ds, sequences={}, splits={"train": ["x"]}, name="other")
    merged = merge_datasets([ds, other])
    assert merged.splits["synth_train"] == ds.splits["train"]  # only the synthetic source's train
