"""The ``videos`` reader: a folder of MP4s with per-video ``frame,x,y,w,h`` CSVs (drone-ir layout)."""

from __future__ import annotations

import json
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest

from mirstd.data import load_dataset
from mirstd.data.check import check_dataset
from mirstd.data.cli import main as data_main
from mirstd.data.readers import detect_format
from mirstd.data.readers import videos as V

av = pytest.importorskip("av")

T, H, W = 12, 48, 64
CODEC = "libx264" if "libx264" in av.codecs_available else "mpeg4"
# libx264 at crf 0 is lossless on the luma plane (only the grey <-> yuv range conversion rounds, +-1)
TOL = 1.5 if CODEC == "libx264" else 12.0


def clip(seed: int = 0) -> np.ndarray:
    """(T, H, W) uint8: a horizontal grey gradient with a bright 6x6 square moving 4 px a frame."""
    base = np.tile(np.linspace(40, 120, W), (H, 1)) + seed * 5
    out = np.repeat(base[None], T, 0).astype(np.uint8)
    for t in range(T):
        out[t, 10:16, 5 + 4 * t : 11 + 4 * t] = 230
    return out


def write_mp4(path: Path, frames: np.ndarray, rate: int = 10) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as c:
        s = c.add_stream(CODEC, rate=rate)
        s.width, s.height, s.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        s.options = {"crf": "0", "preset": "ultrafast"} if CODEC == "libx264" else {"qscale": "1"}
        for a in frames:
            for pk in s.encode(av.VideoFrame.from_ndarray(np.ascontiguousarray(a), format="gray")):
                c.mux(pk)
        for pk in s.encode():
            c.mux(pk)
    return path


# frame 3: an empty-box row (no target); frame 7: two boxes; frames 12 and 20 do not exist (T = 12)
LABELS = """frame,x,y,w,h
0,6.5,11.5,6,6
1,10.5,11.5,6,6
2,14.5,11.5,6,6
3,,,,
4,22.5,11.5,6,6
7,34.5,11.5,6,6
7,1,1,2.5,3
12,5,5,3,3
20,5,5,3,3
"""


@pytest.fixture
def video_root(tmp_path: Path) -> Path:
    root = tmp_path / "vids"
    write_mp4(root / "videos" / "clipA.mp4", clip(0))
    write_mp4(root / "videos" / "clipB.mp4", clip(1))
    (root / "labels").mkdir()
    (root / "labels" / "clipA.csv").write_text(LABELS)
    (root / "labels" / "clipB.csv").write_text("frame,x,y,w,h\n0,6.5,11.5,6,6\n")
    (root / "videos.csv").write_text(
        "video,class,distance_bin,decoded_frames,label_rows,labelled_frames,width,height\n"
        f"clipA,DRONE,DISTANT,{T},9,7,{W},{H}\n"
        f"clipB,BIRD,CLOSE,{T},1,1,{W},{H}\n"
    )
    return root


@pytest.fixture
def fresh_cache(monkeypatch):
    monkeypatch.setattr(V.CACHE, "_items", OrderedDict())
    monkeypatch.setattr(V.CACHE, "_bytes", 0)
    return V.CACHE


def test_detect_count_lazy_and_pixels(video_root, fresh_cache):
    assert detect_format(video_root) == "videos"
    ds = load_dataset(video_root, strict=False)
    assert ds.format == "videos" and sorted(ds.sequences) == ["clipA", "clipB"]
    seq = ds["clipA"]
    assert len(seq) == T and seq.size == (H, W) and seq.meta["video"].endswith("clipA.mp4")
    assert seq.meta["class"] == "DRONE" and seq.meta["distance_bin"] == "DISTANT"
    assert len(fresh_cache._items) == 0  # nothing decoded yet
    f5 = seq.load_frame(5)
    assert list(fresh_cache._items) == [(str(video_root / "videos" / "clipA.mp4"), 0)]  # its chunk
    assert f5.dtype == np.float32 and f5.shape == (H, W)
    ref = clip(0)
    got = np.stack([seq.load_frame(t) for t in range(T)])
    err = np.abs(got - ref)
    assert err.mean() < TOL / 3 and err.max() <= (TOL if CODEC == "libx264" else 80)
    # the square is where it was drawn in every frame
    for t in (0, 6, 11):
        ys, xs = np.unravel_index(np.argmax(got[t]), got[t].shape)
        assert 10 <= ys < 16 and 5 + 4 * t <= xs < 11 + 4 * t
    assert len(fresh_cache._items) == 1  # the 12 frames are one chunk, decoded once
    with pytest.raises(IndexError, match="frame 12 requested"):
        V._FrameLoader(str(video_root / "videos" / "clipA.mp4"), 12)()


def test_matlab_boxes_empty_frames_and_past_the_end(video_root):
    ds = load_dataset(video_root, strict=False)
    labs = ds["clipA"].labels
    np.testing.assert_allclose(labs[0].boxes, [[6.0, 11.0, 12.0, 17.0]])  # (x-0.5, y-0.5, +w, +h)
    np.testing.assert_allclose(labs[1].boxes, [[10.0, 11.0, 16.0, 17.0]])
    np.testing.assert_allclose(labs[7].boxes, [[34.0, 11.0, 40.0, 17.0], [0.5, 0.5, 3.0, 3.5]])
    for k in (3, 5, 6, 8, 11):  # the empty row and frames without rows: labelled, no target
        assert labs[k].has_boxes and not labs[k].has_points and len(labs[k].boxes) == 0
    assert all(lab.has_boxes for lab in labs) and len(labs) == T
    past = [f for f in ds.findings if f.kind == "label_without_frame"]
    assert len(past) == 1 and past[0].severity == "warning"
    assert Path(past[0].path).name == "clipA.csv" and "2 label row(s)" in past[0].message
    assert not [f for f in ds.findings if f.severity == "error"]
    load_dataset(video_root)  # a warning does not stop a strict load
    # box_origin=0 reads the same numbers as 0-based edge coordinates
    ds0 = load_dataset(video_root, box_origin=0)
    np.testing.assert_allclose(ds0["clipA"].labels[0].boxes, [[6.5, 11.5, 12.5, 17.5]])


def test_read_video_frames_seeks_to_the_same_frames(video_root, fresh_cache):
    seq = load_dataset(video_root)["clipA"]
    path = video_root / "videos" / "clipA.mp4"
    got = V.read_video_frames(path, 5, 3)
    assert got.dtype == np.uint8 and got.shape == (3, H, W)
    np.testing.assert_array_equal(got, np.stack([seq.load_frame(t) for t in (5, 6, 7)]).astype(np.uint8))
    np.testing.assert_array_equal(V.read_video_frames(path, 0, 2), V.decode_video(path)[:2])
    assert V.read_video_frames(path, 10, 5).shape == (2, H, W)  # clipped at the end


def test_splits_from_videos_csv_and_selection(video_root):
    ds = load_dataset(video_root)
    assert ds.splits["distant"] == ["clipA"] and ds.splits["close"] == ["clipB"]
    assert ds.splits["drone"] == ["clipA"] and ds.splits["bird"] == ["clipB"]
    assert [s.name for s in ds.split("distant+close")] == ["clipA", "clipB"]
    assert "train" not in ds.splits  # no named protocol for an unknown folder
    one = load_dataset(video_root, videos=["clipB"])
    assert list(one.sequences) == ["clipB"] and one.splits == {"bird": ["clipB"], "close": ["clipB"]}


def test_without_videos_csv_the_header_is_probed(video_root):
    (video_root / "videos.csv").unlink()
    (video_root / "labels" / "clipB.csv").unlink()
    ds = load_dataset(video_root, strict=False)
    assert len(ds["clipA"]) == T and ds["clipA"].size == (H, W) and ds.splits == {}
    assert len(ds["clipA"].labels[0].boxes) == 1  # frame 12 is past the probed count too
    miss = [f for f in ds.findings if f.kind == "missing_labels"]
    assert len(miss) == 1 and Path(miss[0].path).name == "clipB.csv" and miss[0].severity == "warning"
    assert not any(lab.has_boxes for lab in ds["clipB"].labels)


def test_bad_header_is_an_error(video_root):
    (video_root / "labels" / "clipB.csv").write_text("f,a,b,c,d\n0,1,1,2,2\n")
    found = {(Path(f.path).name, f.line, f.kind) for f in check_dataset(video_root)}
    assert ("clipB.csv", 1, "bad_label") in found


def test_cache_evicts_least_recently_used(video_root):
    cache = V.VideoCache(
        limit_mb=1.5 * T * H * W / 2**20
    )  # room for one chunk (= a 12-frame video) and a half
    a, b = (str(video_root / "videos" / f"clip{n}.mp4") for n in "AB")
    fa = cache.chunk(a, 0)
    assert cache.chunk(a, 0) is fa  # a hit returns the cached array
    cache.chunk(b, 0)
    assert list(cache._items) == [(b, 0)]


def test_data_info_and_check_cli(video_root, capsys):
    assert data_main(["info", str(video_root), "json=true"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["format"] == "videos" and info["sequences"] == 2 and info["frames"] == 2 * T
    assert info["boxes"] == 7 and info["sizes"] == {f"{H}x{W}": 2 * T} and info["reader_findings"] == 1
    assert info["targets_per_frame"]["frames_without_targets"] == 2 * T - 6
    assert data_main(["check", str(video_root)]) == 0  # past-the-end rows are a warning only
    out = capsys.readouterr().out
    assert "clipA.csv" in out and "0 error(s), 1 warning(s)" in out


DRONE = Path("/work/shared/data/drone-ir")


@pytest.mark.skipif(not (DRONE / "videos.csv").is_file(), reason="drone-ir not available")
def test_real_drone_ir_one_video(fresh_cache):
    ds = load_dataset("real:drone-ir", videos=["IR_AIRPLANE_001"])
    seq = ds["IR_AIRPLANE_001"]
    assert len(ds) == 1 and len(seq) == 322 and seq.size == (256, 320)
    assert seq.meta["class"] == "AIRPLANE" and seq.meta["distance_bin"] == "CLOSE"
    np.testing.assert_allclose(seq.labels[0].boxes, [[137.5, 80.5, 161.5, 95.5]])
    assert ds.meta["protocol"]["name"] == "drone-ir" and "drone_train" in ds.splits
    got = V.read_video_frames(seq.meta["video"], 100, 2)
    assert got.shape == (2, 256, 320) and len(fresh_cache._items) == 0  # seeking does not fill the cache
