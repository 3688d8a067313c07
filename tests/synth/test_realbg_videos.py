"""Labelled real videos as moving backgrounds (``backgrounds=`` a videos layout or ``real:drone-ir``):
frames from the reader, real targets' boxes kept outside the crop, only the train split used."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from mirstd.synth import plan_dataset, resolve_config
from mirstd.synth.engine import real_kind, render
from mirstd.synth.realbg import _near_window, real_clip, scan_folder

av = pytest.importorskip("av")

T, H, W = 10, 96, 128
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"


def _write(path: Path, frames: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(CODEC, rate=10)
        s.width, s.height, s.pix_fmt = W, H, "yuv420p"
        s.options = {"crf": "0", "preset": "ultrafast"} if CODEC == "libx264" else {"qscale": "1"}
        for a in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="gray")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)


@pytest.fixture
def videos_root(tmp_path: Path) -> Path:
    """Two videos: a gradient with a bright 'real target' box at x 90-100, y 10-20 in every frame
    (labelled), split by ``videos.csv`` class: 'train' and 'test'."""
    root = tmp_path / "vids"
    for k, name in enumerate(("trainvid", "testvid")):
        base = np.tile(np.linspace(40 + 20 * k, 140, W), (H, 1))
        frames = np.repeat(base[None], T, 0).astype(np.uint8)
        frames[:, 10:20, 90:100] = 250
        _write(root / "videos" / f"{name}.mp4", frames)
        rows = "".join(f"{t},90.5,10.5,10,10\n" for t in range(T))
        (root / "labels").mkdir(exist_ok=True)
        (root / "labels" / f"{name}.csv").write_text("frame,x,y,w,h\n" + rows)
    (root / "videos.csv").write_text(
        f"video,class,decoded_frames,width,height\ntrainvid,train,{T},{W},{H}\ntestvid,test,{T},{W},{H}\n"
    )
    return root


def test_video_sources_use_the_train_split_only(videos_root):
    srcs = scan_folder(str(videos_root))
    assert [s.name for s in srcs] == ["trainvid"] and not srcs[0].still and len(srcs[0]) == T
    assert [s.name for s in scan_folder(str(videos_root), "test")] == ["testvid"]
    boxes = srcs[0].targets(3)
    assert boxes.shape == (1, 4) and np.allclose(boxes[0], [90, 10, 100, 20])  # MATLAB x - 0.5
    with pytest.raises(ValueError, match="background_split"):
        scan_folder(str(videos_root), "nosuchsplit")


def test_crops_keep_the_real_target_outside(videos_root):
    rng = np.random.default_rng(0)
    for _ in range(20):
        frames, info = real_clip(str(videos_root), rng, 5, (48, 48), exclusion=6)
        assert frames.shape == (5, 48, 48) and info["real_target_excluded"] and info["source"] == "trainvid"
        oy, ox = info["crop_yx"]
        # the box x 90-100, y 10-20 enlarged by 6 px does not touch the window
        assert not _near_window(np.array([[90.0, 10, 100, 20]]), oy, ox, 48, 48, 6)
        assert frames.max() < 200  # no bright real target pixel in the crop
    with pytest.raises(ValueError, match="no crop"):
        real_clip(str(videos_root), rng, 5, (96, 128), exclusion=6)  # the full frame holds the target


def test_render_on_a_real_video_background(videos_root):
    cfg = resolve_config("smoke", backgrounds=str(videos_root), real_fraction=1.0, frames=4, size=48)
    plan = plan_dataset(cfg, 0)[0]
    assert real_kind(cfg, 0, plan) == "sequence"
    seq = render(cfg, 0, plan).sequence
    real = seq.meta["background"]["real"]
    assert real["source"] == "trainvid" and real["real_target_excluded"]
    assert len(seq) == 4 and all(len(lab.boxes) >= 1 for lab in seq.labels)  # synthetic targets labelled


@pytest.mark.parametrize(
    "preset, source", [("realbg-airground", "real:airground"), ("realbg-drone", "real:drone-ir")]
)
def test_realbg_presets_draw_from_the_real_train_split(preset, source):
    """The semi-synthetic presets put every sequence on a real data set's footage, and only on the scenes
    of its train split: sim-to-real runs must never see a val or test scene of the real protocol."""
    from mirstd.data import load_dataset
    from mirstd.data.protocols import find_real

    cfg = resolve_config(preset)
    assert cfg["backgrounds"] == source and cfg["real_fraction"] == 1.0
    try:
        find_real(source.split(":", 1)[1])
    except FileNotFoundError:
        pytest.skip(f"{source} is not in the data roots")
    real = load_dataset(source)
    train = {s.name for s in real.split("train")}
    held_out = {s.name for s in real.split("val") + real.split("test")}
    plans = plan_dataset(cfg, 0)
    for split in ("train", "val"):  # the first sequence of each synthetic split
        seq = render(cfg, 0, next(p for p in plans if p.split == split)).sequence
        real_bg = seq.meta["background"]["real"]
        assert real_bg["source"] in train and real_bg["source"] not in held_out
        assert real_bg["real_target_excluded"] and seq.meta["family"] == "real"
