"""`mirstd train`, `mirstd val`, `mirstd predict` end to end on a tiny native dataset written here."""

import csv
import json

import cv2
import numpy as np
import pytest
import standins
import torch

from mirstd.cli import main
from mirstd.data.native import write_native
from mirstd.data.sequence import FrameLabels, Sequence


def _sequence(name: str, n: int = 6, size: int = 32, seed: int = 0) -> Sequence:
    """A 3×3 target moving one pixel right per frame over noise (8-bit)."""
    rng = np.random.RandomState(seed)
    frames, masks, labels = [], [], []
    y, x0 = 10 + seed, 8
    for i in range(n):
        f = (40 + 20 * rng.rand(size, size)).astype(np.float32)
        m = np.zeros((size, size), np.uint8)
        x = x0 + i
        f[y - 1 : y + 2, x - 1 : x + 2] = 230
        m[y - 1 : y + 2, x - 1 : x + 2] = 1
        frames.append(lambda f=f: f)
        masks.append(lambda m=m: m)
        labels.append(
            FrameLabels(
                boxes=[[x - 1, y - 1, x + 2, y + 2]], points=[[x, y]], has_boxes=True, has_points=True
            )
        )
    return Sequence(name, frames, labels, masks=masks, size=(size, size))


@pytest.fixture(scope="module")
def native(tmp_path_factory):
    root = tmp_path_factory.mktemp("native")
    seqs = [_sequence(f"seq{k}", seed=k) for k in range(4)]
    splits = {"train": ["seq0", "seq1"], "val": ["seq2"], "test": ["seq3"]}
    return write_native(seqs, root, splits=splits, name="tiny")


def test_train_val_predict_cli(native, tmp_path, capsys):
    torch.set_num_threads(1)
    assert standins.TINY  # registers the stand-in model
    args = [
        "train",
        f"model={standins.TINY}",
        "model_args.num_frames=3",
        "frames=3",
        f"data={native}",
        "imgsz=32",
        "batch=4",
        "steps=6",
        "val_every=3",
        "lr=0.01",
        f"project={tmp_path}",
        "name=cli",
        "progress=false",
    ]
    assert main(args) == 0
    run = tmp_path / "segment" / "cli"
    for f in ("weights/best.pt", "weights/last.pt", "args.yaml", "env.yaml", "results.csv", "results.png"):
        assert (run / f).is_file(), f
    assert (run / "splits" / "train.txt").read_text() == "seq0\nseq1\n"
    assert (run / "splits" / "val.txt").read_text() == "seq2\n"
    rows = list(csv.DictReader(open(run / "results.csv")))
    assert [r["step"] for r in rows] == ["3", "6"] and "metrics/iou" in rows[0]

    assert (
        main(["val", f"weights={run}/weights/best.pt", f"data={native}", "split=test", "progress=false"]) == 0
    )
    doc = json.loads((run / "metrics_test.json").read_text())
    assert doc["split"] == "test" and 0.0 <= doc["results"]["iou"] <= 1.0
    assert "| iou |" in (run / "metrics_test.md").read_text()

    out = tmp_path / "pred"
    assert (
        main(["predict", f"weights={run}/weights/best.pt", f"source={native}", f"out={out}", "conf=0.5"]) == 0
    )
    for seq in ("seq0", "seq3"):
        probs = sorted((out / "scores" / seq).glob("*.png"))
        # files are named by the sequence's frame ids (the writer kept the in-memory ids "0".."5")
        assert [p.stem for p in probs] == [str(i) for i in range(6)]
        assert cv2.imread(str(probs[0]), cv2.IMREAD_UNCHANGED).shape == (32, 32)
        assert cv2.imread(str(out / "overlay" / seq / "0.png")).shape == (32, 32, 3)
    with open(out / "predictions.csv") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["sequence", "frame", "x", "y", "x1", "y1", "x2", "y2", "score"]
    assert all(r[0] in {"seq0", "seq1", "seq2", "seq3"} and float(r[8]) >= 0.5 for r in rows[1:])


def test_train_refuses_test_split_cli(native, tmp_path, capsys):
    rc = main(["train", f"model={standins.TINY}", f"data={native}", "val_split=test", f"project={tmp_path}"])
    assert rc == 1
    assert "must not be used for model selection" in capsys.readouterr().err


@pytest.mark.parametrize("key_stride", [1, 2])
def test_predict_then_eval_equals_val(native, tmp_path, key_stride):
    """The round trip: `mirstd predict` -> `mirstd eval` scores exactly what `mirstd val` scores."""
    torch.set_num_threads(1)
    common = [f"model={standins.TINY}", "model_args.num_frames=3", f"data={native}", "imgsz=32", "batch=4"]
    assert main(["train", *common, "steps=4", "val_every=0", "lr=0.01", f"project={tmp_path}", "name=rt",
                 "progress=false", "plots=false"]) == 0  # fmt: skip
    best = tmp_path / "segment" / "rt" / "weights" / "best.pt"
    stride = f"key_stride={key_stride}"
    assert main(["val", f"weights={best}", f"data={native}", "split=test", stride, f"out={tmp_path / 'v'}",
                 "progress=false", "plots=false"]) == 0  # fmt: skip
    assert main(["predict", f"weights={best}", f"source={native}", "split=test", f"out={tmp_path / 'p'}",
                 "save_scores=npy", "progress=false"]) == 0  # fmt: skip
    assert main(["eval", f"pred={tmp_path / 'p'}", f"data={native}", "split=test", stride,
                 f"out={tmp_path / 'e'}", "progress=false", "plots=false"]) == 0  # fmt: skip
    val = json.loads((tmp_path / "v" / "metrics_test.json").read_text())["results"]
    ev = json.loads((tmp_path / "e" / "metrics_test.json").read_text())["results"]
    nums = {k: v for k, v in val.items() if isinstance(v, (int, float))}
    assert len(nums) > 10 and nums.keys() == {k for k, v in ev.items() if isinstance(v, (int, float))}
    for k, v in nums.items():
        assert ev[k] == pytest.approx(v, abs=1e-9), k
    assert val["frames"] == (6 if key_stride == 1 else 3)
