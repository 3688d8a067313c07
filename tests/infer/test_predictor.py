"""Streaming predictor: rolling buffer and padding, targets, folder outputs, video message."""

import csv
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
import standins  # noqa: E402

from mirstd.infer import Predictor  # noqa: E402
from mirstd.infer.predict import predict  # noqa: E402
from mirstd.infer.predictor import infer_clip, iter_video  # noqa: E402
from mirstd.utils.targets import box_targets, score_targets  # noqa: E402


def _model():
    torch.manual_seed(0)
    return standins.TinySeg(num_frames=3).eval()


def _frames(n=5, size=20):
    rng = np.random.RandomState(1)
    return [rng.rand(size, size).astype(np.float32) for _ in range(n)]


@pytest.mark.parametrize("pad", ["repeat", "zeros"])
def test_stream_equals_explicit_clips(pad):
    model, frames = _model(), _frames()
    p = Predictor(model, device="cpu", frames=3, pad=pad)
    got = list(p.predict_frames(frames))
    first = frames[0] if pad == "repeat" else np.zeros_like(frames[0])
    hist = [first, first, *frames]
    for t in range(len(frames)):
        clip = torch.from_numpy(np.stack(hist[t : t + 3]))[None, None]
        want = infer_clip(model, clip)[0]["scores"]
        np.testing.assert_array_equal(got[t]["scores"], want)


def test_padding_to_size_divisor_and_crop_back():
    model = _model()
    clip = torch.rand(1, 1, 3, 18, 21)  # not multiples of size_divisor=4
    r = infer_clip(model, clip)[0]
    assert r["scores"].shape == (18, 21) and r["boxes"] is None
    full = torch.sigmoid(model(torch.nn.functional.pad(clip, (0, 3, 0, 2))))[0, 0, :18, :21].detach().numpy()
    np.testing.assert_allclose(r["scores"], full, rtol=1e-6)


def test_targets_from_scores_and_boxes():
    prob = np.zeros((10, 12), np.float32)
    prob[2:4, 3:6] = 0.9  # 2 x 3 blob: centroid (4, 2.5), edge box [3, 2, 6, 4]
    prob[7, 10] = 0.6
    prob[0, 0] = 0.4  # below conf
    t = score_targets(prob, 0.5)
    np.testing.assert_allclose(t, [[4, 2.5, 3, 2, 6, 4, 0.9, 6], [10, 7, 10, 7, 11, 8, 0.6, 1]], atol=1e-6)
    b = box_targets(np.array([[2, 2, 6, 4, 0.8], [0, 0, 1, 1, 0.2]], np.float32), 0.5)
    np.testing.assert_allclose(b, [[3.5, 2.5, 2, 2, 6, 4, 0.8, 8]], atol=1e-6)  # centre = (x1+x2)/2 - 0.5
    # strict for maps (p > conf), inclusive for box scores (score >= conf)
    assert len(score_targets(np.full((3, 3), 0.5), 0.5)) == 0
    assert len(box_targets(np.array([[0, 0, 1, 1, 0.5]]), 0.5)) == 1


def test_predict_folder_writes_scores_overlays_csv_json(tmp_path):
    src = tmp_path / "seqA"
    src.mkdir()
    for i, f in enumerate(_frames(12)):
        cv2.imwrite(str(src / f"{i}.png"), (f * 255).astype(np.uint8))  # 0.png .. 11.png: natural order
    model = _model()
    with torch.no_grad():
        model.head.bias.fill_(5.0)  # everything above conf: one big component per frame
    out = predict(src, weights=model, out=tmp_path / "out", frames=3, conf=0.5, progress=False)
    scores = sorted((out / "scores" / "seqA").iterdir(), key=lambda p: int(p.stem))
    assert [p.name for p in scores] == [f"{i}.png" for i in range(12)]
    assert cv2.imread(str(out / "overlay" / "seqA" / "0.png")).shape == (20, 20, 3)
    rows = list(csv.DictReader(open(out / "predictions.csv")))
    assert [r["frame"] for r in rows] == [
        str(i) for i in range(12)
    ]  # 0, 1, 2, ..., 10, 11 (not 0, 1, 10, 11, 2)
    assert rows[0]["sequence"] == "seqA" and float(rows[0]["x1"]) == 0 and float(rows[0]["x2"]) == 20
    assert float(rows[0]["score"]) > 0.99
    coco = json.loads((out / "predictions.json").read_text())
    assert len(coco) == 12 and coco[0]["image_id"] == "seqA/0" and coco[0]["bbox"] == [0.0, 0.0, 20.0, 20.0]


def test_stream_pad_skip_gives_no_prediction_for_the_first_frames():
    p = Predictor(_model(), device="cpu", frames=3, pad="skip")
    got = list(p.predict_frames(_frames(5)))
    assert got[0] is None and got[1] is None and all(r is not None for r in got[2:])
    with pytest.raises(ValueError, match="pad='source'"):
        Predictor(_model(), device="cpu", frames=3, pad="source")


def test_video_without_av_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # as if the optional extra were not installed
    with pytest.raises(ValueError, match=r"needs the optional 'av' package: pip install 'mirstd\[video\]'"):
        next(iter_video(tmp_path / "clip.mp4"))


def test_checkpoint_predictor_uses_config(tmp_path):
    from mirstd.engine import train

    run = train(
        train_data=standins.ClipSamples(8),
        model=standins.TINY,
        model_args={"num_frames": 3},
        frames=3,
        steps=1,
        batch=8,
        val_every=0,
        project=str(tmp_path),
        progress=False,
        plots=False,
        pad="zeros",
    )
    p = Predictor(run / "weights" / "best.pt", device="cpu")
    assert p.frames == 3 and p.pad == "zeros" and p.task == "segment"
    assert p.step(np.zeros((16, 16), np.float32))["scores"].shape == (16, 16)


def test_network_scores_are_float64_probabilities_apart_above_float32s_one():
    # float32's sigmoid is 1 for every logit above ~16.6; a network's score map keeps logits 20 and 30
    # apart (float64), through infer_clip as evaluation and prediction use it.
    model = _model()
    with torch.no_grad():
        for prm in model.parameters():
            prm.zero_()
        model.head.bias.fill_(20.0)
    clip = torch.zeros(1, 1, 3, 8, 8)
    lo = infer_clip(model, clip)[0]["scores"]
    with torch.no_grad():
        model.head.bias.fill_(30.0)
    hi = infer_clip(model, clip)[0]["scores"]
    assert lo.dtype == hi.dtype == np.float64
    assert np.all(lo < hi) and np.all(hi < 1.0)
    assert np.allclose(1.0 - lo, np.exp(-20.0), rtol=1e-6) and np.allclose(1.0 - hi, np.exp(-30.0), rtol=1e-3)
