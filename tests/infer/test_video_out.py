"""``mirstd predict save_video=true``: an overlay MP4 per sequence plus the CSV, from a video source."""

from __future__ import annotations

import csv

import numpy as np
import pytest

av = pytest.importorskip("av", reason="PyAV not installed: pip install 'mirstd[video]'")


def _write_video(path, n=6, h=48, w=64):  # noqa: ANN001, ANN202
    with av.open(str(path), mode="w") as c:
        s = c.add_stream("mpeg4", rate=10)
        s.width, s.height, s.pix_fmt = w, h, "yuv420p"
        for i in range(n):
            img = np.full((h, w, 3), 30, np.uint8)
            img[20:24, 10 + 4 * i : 14 + 4 * i] = 250  # a moving bright target
            for p in s.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                c.mux(p)
        for p in s.encode():
            c.mux(p)


def test_save_video_writes_mp4_and_csv(tmp_path) -> None:  # noqa: ANN001
    from mirstd.infer.predict import predict

    src = tmp_path / "clip.mp4"
    _write_video(src)
    out = predict(src, model="tophat", model_args={"size": 5}, out=tmp_path / "pred", conf=0.1,
                  save_video=True, save_overlay=False, save_scores="none", progress=False)  # fmt: skip
    mp4 = out / "overlay" / "clip" / "overlay.mp4"
    assert mp4.is_file()
    with av.open(str(mp4)) as c:
        frames = [f.to_ndarray(format="rgb24") for f in c.decode(video=0)]
    assert len(frames) == 6 and frames[0].shape == (48, 64, 3)
    rows = list(csv.DictReader((out / "predictions.csv").open()))
    assert rows and {r["frame"] for r in rows} <= {f"{i:05d}" for i in range(6)}


def test_dataset_predict_caps_the_video_chunk_cache(monkeypatch) -> None:  # noqa: ANN001
    """A predict pass over a video dataset reads in order: the 3 GB training LRU is capped meanwhile."""
    from mirstd.data.readers.videos import CACHE, VideoCache
    from mirstd.infer.predict import SEQUENTIAL_VIDEO_CACHE_MB, _sequential_video_cache

    monkeypatch.delenv("MIRSTD_VIDEO_CACHE_MB", raising=False)
    old = CACHE.limit
    monkeypatch.setattr(CACHE, "limit", VideoCache(None).limit)
    with _sequential_video_cache():
        assert CACHE.limit == int(SEQUENTIAL_VIDEO_CACHE_MB * 2**20)
    assert CACHE.limit == VideoCache(None).limit
    monkeypatch.setattr(CACHE, "limit", 10 * 2**20)  # set by the user (cache_mb=): left alone
    with _sequential_video_cache():
        assert CACHE.limit == 10 * 2**20
    monkeypatch.setattr(CACHE, "limit", old)


def test_predictions_json_and_csv_streamed(tmp_path) -> None:  # noqa: ANN001
    """The writer appends rows frame by frame; the files equal what json.dumps / csv give for the lists."""
    import json

    from mirstd.infer.predict import CSV_FIELDS, predict

    src = tmp_path / "clip.mp4"
    _write_video(src, n=8)
    out = predict(src, model="tophat", model_args={"size": 5}, out=tmp_path / "pred", conf=0.1,
                  save_overlay=False, save_scores="none", progress=False)  # fmt: skip
    coco = json.loads((out / "predictions.json").read_text())
    assert (out / "predictions.json").read_text() == json.dumps(coco)
    rows = list(csv.reader((out / "predictions.csv").open(newline="")))
    assert rows[0] == CSV_FIELDS and len(rows) > 1
    assert len(coco) == len(rows) - 1  # score-map method: one COCO item per target row


def test_stream_key_is_the_cache_switch(tmp_path, monkeypatch) -> None:  # noqa: ANN001
    import mirstd.infer.predict as P
    from mirstd.utils.config import parse_overrides, task_config

    src = tmp_path / "clip.mp4"
    _write_video(src)
    seen = []
    real = P.Predictor
    monkeypatch.setattr(P, "Predictor", lambda *a, **k: seen.append(k["cache"]) or real(*a, **k))
    for i, stream in enumerate((True, False, None)):
        P.predict(src, model="tophat", out=tmp_path / f"p{i}", cache=False, stream=stream, save_video=True,
                  save_overlay=False, save_scores="none", progress=False)  # fmt: skip
    assert seen == [True, False, False]  # stream decides when given; else cache
    cfg = task_config("predict", parse_overrides(["source=x.mp4", "stream=true", "save_video=true"]))
    assert cfg["stream"] is True and cfg["cache"] is True
