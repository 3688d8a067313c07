"""Real data (shared airground-real) and the clip pipeline."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from mirstd.data import ClipDataset, FrameLabels, Sequence, collate_clips, load_dataset


def test_airground_info_and_key_point(airground, capsys):
    from mirstd.data.cli import main

    assert main(["info", str(airground)]) == 0
    text = capsys.readouterr().out
    assert "sequences:               8" in text and "256x256:                 800" in text
    assert main(["info", str(airground), "json=true"]) == 0
    out = capsys.readouterr().out
    assert '"sequences": 8' in out and '"frames": 800' in out and '"256x256": 800' in out
    assert '"mean": 1.0' in out and '"min": 1' in out and '"max": 1' in out
    ds = load_dataset(airground)
    clips = ClipDataset(ds, num_frames=5)
    assert len(clips) == 800
    for name, k in (("sequence1", 0), ("sequence1", 1), ("sequence5", 57), ("sequence11", 99)):
        line = (airground / "anno" / f"{name}.txt").read_text().splitlines()[k].split()
        idx = [n for n, (si, i) in enumerate(clips.index) if ds.split(None)[si].name == name and i == k][0]
        s = clips[idx]
        assert s["clip"].shape == (1, 5, 256, 256) and s["clip"].dtype == torch.float32
        assert s["points"].tolist() == [[float(line[0]) - 1, float(line[1]) - 1]]
        key = ds[name].load_frame(k) / 255.0
        assert torch.allclose(s["clip"][0, -1], torch.from_numpy(key))
        if k == 0:  # history repeats frame 0
            assert all(torch.equal(s["clip"][0, t], s["clip"][0, -1]) for t in range(4))
        assert s["has_mask"] is False and s["mask"].sum() == 0


def _seq(n=6, h=40, w=48, bit_depth=8) -> Sequence:
    rng = np.random.default_rng(0)
    frames = [rng.integers(0, 255, (h, w)).astype(np.float32) for _ in range(n)]
    labels = [
        FrameLabels(
            boxes=[[10 + i, 12, 14 + i, 15]], points=[[11.5 + i, 13.0]], has_boxes=True, has_points=True
        )
        for i in range(n)
    ]
    return Sequence("s", [lambda f=f: f for f in frames], labels, None, "semantic", bit_depth, (h, w))


def test_pad_modes_order_and_scaling():
    seq = _seq()
    rep = ClipDataset([seq], num_frames=3, pad="repeat")
    s = rep[1]["clip"][0].numpy() * 255
    assert (
        np.allclose(s[0], seq.load_frame(0))
        and np.allclose(s[1], seq.load_frame(0))
        and np.allclose(s[2], seq.load_frame(1))
    )
    z = ClipDataset([seq], num_frames=3, pad="zeros")[0]["clip"][0]
    assert z[0].abs().sum() == 0 and z[1].abs().sum() == 0
    skip = ClipDataset([seq], num_frames=3, pad="skip")
    assert len(skip) == 4 and skip[0]["meta"]["index"] == 2
    assert ClipDataset([seq], num_frames=2, channels=3)[0]["clip"].shape == (3, 2, 40, 48)
    seq16 = _seq(bit_depth=16)
    assert torch.allclose(
        ClipDataset([seq16], num_frames=1)[0]["clip"][0, 0],
        torch.from_numpy(seq16.load_frame(0) / 65535.0).float(),
    )


def test_train_transforms_deterministic_and_consistent():
    seq = _seq(n=4, h=64, w=64)
    ds = ClipDataset(
        [seq],
        num_frames=3,
        train=True,
        crop=32,
        target_crop_prob=1.0,
        rotate_deg=0.0,
        mask_from="boxes",
        seed=3,
    )
    ds.set_epoch(2)
    a, b = ds[1], ds[1]
    assert torch.equal(a["clip"], b["clip"]) and a["meta"]["crop"] == b["meta"]["crop"]
    ds.set_epoch(3)
    crops = {tuple(ds[1]["meta"]["crop"]) for _ in range(1)} | {tuple(a["meta"]["crop"])}
    assert len(crops) >= 1
    for e in range(6):  # target always inside; mask, boxes and points stay consistent
        ds.set_epoch(e)
        s = ds[2]
        assert len(s["points"]) == 1 and len(s["boxes"]) == 1
        x1, y1, x2, y2 = s["boxes"][0].tolist()
        m = s["mask"][0].numpy()
        ys, xs = np.nonzero(m)
        assert (xs.min(), ys.min(), xs.max() + 1, ys.max() + 1) == (x1, y1, x2, y2)
        px, py = s["points"][0].tolist()
        assert x1 <= px < x2 and y1 <= py < y2


def test_flip_maps_boxes_and_points():
    from mirstd.data import transforms as tf

    clip = np.zeros((1, 10, 20), np.float32)
    clip[0, 2, 3] = 1
    c, _, b, p = tf.hflip(clip, None, np.array([[3, 2, 4, 3]], np.float32), np.array([[3, 2]], np.float32))
    assert c[0, 2, 16] == 1 and b.tolist() == [[16, 2, 17, 3]] and p.tolist() == [[16, 2]]
    c, _, b, p = tf.vflip(clip, None, np.array([[3, 2, 4, 3]], np.float32), np.array([[3, 2]], np.float32))
    assert c[0, 7, 3] == 1 and b.tolist() == [[3, 7, 4, 8]] and p.tolist() == [[3, 7]]
    c, _, b, p = tf.rotate(
        np.zeros((1, 11, 11), np.float32),
        None,
        np.array([[8, 5, 9, 6]], np.float32),
        np.array([[8, 5]], np.float32),
        90.0,
    )
    assert np.allclose(p, [[5, 2]], atol=1e-4) and np.allclose(b, [[5, 2, 6, 3]], atol=1e-4)


def test_crop_drops_targets_leaving_and_pad_to_collate():
    seq = _seq(n=2, h=40, w=48)
    ds = ClipDataset([seq], num_frames=2, pad_to=32)
    s = ds[0]
    assert s["clip"].shape == (1, 2, 64, 64) and s["meta"]["orig_size"] == (40, 48)
    batch = collate_clips([ds[0], ds[1]])
    assert batch["clip"].shape == (2, 1, 2, 64, 64) and batch["has_mask"].tolist() == [False, False]
    assert len(batch["boxes"]) == 2 and batch["meta"][1]["index"] == 1
    from mirstd.data import transforms as tf

    _, _, b, p = tf.crop(
        np.zeros((1, 40, 48), np.float32),
        None,
        np.array([[10, 12, 14, 15]], np.float32),
        np.array([[11.5, 13]], np.float32),
        20,
        0,
        16,
    )
    assert b.shape == (0, 4) and p.shape == (0, 2)


def test_mask_from_points():
    seq = _seq(n=1)
    s = ClipDataset([seq], num_frames=1, mask_from="points", mask_radius=1)[0]
    assert s["has_mask"] and s["mask"].sum() == 9 and s["mask"][0, 13, 12] == 1


@pytest.mark.parametrize("bad", ["pad", "channels"])
def test_bad_options(bad):
    with pytest.raises(ValueError, match=bad):
        ClipDataset([_seq()], **{bad: "nope" if bad == "pad" else 2})


def test_intensity_jitter_is_clipwide_and_seeded(airground):
    """One gain/offset for every frame of a training clip, reproducible from (seed, epoch, index)."""
    import numpy as np

    ds = load_dataset(airground)
    plain = ClipDataset(ds, num_frames=5, train=True, flip=False, crop=None, seed=1)
    jit = ClipDataset(ds, num_frames=5, train=True, flip=False, crop=None, seed=1, intensity_jitter=0.4)
    a, b, c = plain[10]["clip"][0], jit[10]["clip"][0], jit[10]["clip"][0]
    assert torch.equal(b, c) and not torch.equal(a, b)
    assert float(b.min()) >= 0.0 and float(b.max()) <= 1.0
    # The same affine map b = g*a + c on every frame: a least-squares fit leaves no residual.
    ok = (b > 0.001) & (b < 0.999)
    A = torch.stack([a[ok], torch.ones_like(a[ok])], 1).double()
    coef = torch.linalg.lstsq(A, b[ok].double()[:, None]).solution
    resid = (A @ coef)[:, 0] - b[ok].double()
    assert float(resid.abs().max()) < 1e-4 and 0.6 <= float(coef[0]) <= 1.4
    assert "int" in jit[10]["meta"]["ops"][-1] and np.isfinite(float(b.mean()))
