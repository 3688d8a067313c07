"""Streaming predictor: rolling buffer and padding, targets, folder outputs, video message."""

import csv
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

sys.path.insert(0, str(Path(__file__).parents[1] / "engine"))
import standins  # noqa: E402

from mirstd.infer import Predictor  # noqa: E402
from mirstd.infer.predictor import infer_clip, read_video, targets_from_boxes, targets_from_scores  # noqa: E402


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
    t = targets_from_scores(prob, 0.5)
    np.testing.assert_allclose(t, [[4, 2.5, 3, 2, 6, 4, 0.9], [10, 7, 10, 7, 11, 8, 0.6]], atol=1e-6)
    b = targets_from_boxes(np.array([[2, 2, 6, 4, 0.8], [0, 0, 1, 1, 0.2]], np.float32), 0.5)
    np.testing.assert_allclose(b, [[3.5, 2.5, 2, 2, 6, 4, 0.8]])  # centre = (x1+x2)/2 - 0.5


def test_predict_folder_writes_pngs_and_csv(tmp_path):
    src = tmp_path / "seqA"
    src.mkdir()
    for i, f in enumerate(_frames(4)):
        cv2.imwrite(str(src / f"{i:03d}.png"), (f * 255).astype(np.uint8))
    model = _model()
    with torch.no_grad():
        model.head.bias.fill_(5.0)  # everything above conf: one big component per frame
    res = Predictor(model, device="cpu", frames=3, conf=0.5).predict_folder(src, out=tmp_path / "out")
    assert len(res) == 4
    assert sorted(p.name for p in (tmp_path / "out" / "seqA" / "prob").iterdir()) == [
        f"{i:03d}.png" for i in range(4)
    ]
    assert cv2.imread(str(tmp_path / "out" / "seqA" / "overlay" / "000.png")).shape == (20, 20, 3)
    rows = list(csv.DictReader(open(tmp_path / "out" / "predictions.csv")))
    assert len(rows) == 4 and rows[0]["sequence"] == "seqA" and rows[0]["frame"] == "000"
    assert float(rows[0]["x1"]) == 0 and float(rows[0]["x2"]) == 20 and float(rows[0]["score"]) > 0.99


def test_video_without_av_is_a_clear_error(tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "av", None)  # as if the optional extra were not installed
    with pytest.raises(ValueError, match=r"needs the optional 'av' package: pip install 'mirstd\[video\]'"):
        read_video(tmp_path / "clip.mp4")


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
