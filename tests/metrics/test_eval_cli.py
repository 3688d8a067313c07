"""Scoring saved predictions: folder of PNG/npy maps and COCO json, reports, bad input."""

from __future__ import annotations

import json

import cv2
import numpy as np
import pytest

from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset
from mirstd.infer.evaluate import SavedPredictions, eval_dataset, run_evaluation
from mirstd.metrics.report import write_results


def evaluate_predictions(ds, pred, split):
    seqs = ds.split(split)
    return run_evaluation(SavedPredictions(pred, seqs), eval_dataset(seqs, frames=1))


def write_report(ev, out):
    return write_results(ev, out, "metrics")


def _dataset(n_seq=2, n_frames=3, size=32):
    seqs = {}
    for s in range(n_seq):
        masks, labels = [], []
        for f in range(n_frames):
            m = np.zeros((size, size), np.uint8)
            m[8 + f : 10 + f, 12:14] = 1
            masks.append(lambda m=m: m)
            labels.append(FrameLabels(boxes=[[12, 8 + f, 14, 10 + f]], has_boxes=True, scr=[2.0 + 3 * s]))
        frames = [lambda: np.zeros((size, size), np.float32)] * n_frames
        name = f"seq{s}"
        seqs[name] = Sequence(
            name, frames, labels, masks=masks, frame_ids=[f"{f:05d}" for f in range(n_frames)]
        )
    return SequenceDataset(seqs, {"test": list(seqs)}, name="toy")


def _write_preds(root, ds, size=32, bad=None):
    for seq in ds:
        (root / seq.name).mkdir(parents=True, exist_ok=True)
        for i in range(len(seq)):
            p = seq.load_mask(i).astype(np.float32) * 0.9
            cv2.imwrite(str(root / seq.name / f"{seq.frame_ids[i]}.png"), np.round(p * 255).astype(np.uint8))


def test_folder_predictions_report(tmp_path):
    ds = _dataset()
    _write_preds(tmp_path / "pred", ds)
    ev = evaluate_predictions(ds, tmp_path / "pred", "test")
    res = write_report(ev, tmp_path / "out")
    assert (
        res["iou"] == 1.0 and res["pd[centroid]"] == 1.0 and res["fa[centroid]"] == 0.0 and res["frames"] == 6
    )
    assert set(res["by_scr"]) == {"low", "high"}  # mSCR 2 and 5 from the labels' SCR values
    for f in ("metrics.json", "metrics.md", "metrics_roc.png", "metrics_pdfa.png"):
        assert (tmp_path / "out" / f).stat().st_size > 100
    saved = json.loads((tmp_path / "out" / "metrics.json").read_text())
    assert saved["results"]["iou"] == 1.0 and len(saved["curves"]["roc"]["tpr"]) == 201
    assert "| pd[centroid] | 1.000000 | fraction |" in (tmp_path / "out" / "metrics.md").read_text()


def test_bad_prediction_folders_name_the_file(tmp_path):
    ds = _dataset(1, 2)
    _write_preds(tmp_path / "p", ds)
    (tmp_path / "p" / "seq0" / "00001.png").unlink()
    with pytest.raises(FileNotFoundError, match=r"seq0/00001.*00001\.png"):
        evaluate_predictions(ds, tmp_path / "p", "test")
    cv2.imwrite(str(tmp_path / "p" / "seq0" / "00001.png"), np.zeros((16, 32), np.uint8))
    with pytest.raises(ValueError, match=r"00001\.png: prediction size \(16, 32\) != frame size \(32, 32\)"):
        evaluate_predictions(ds, tmp_path / "p", "test")
    (tmp_path / "p" / "seq0" / "00001.png").unlink()
    bad = np.zeros((32, 32), np.float32)
    bad[0, 0] = np.nan
    np.save(tmp_path / "p" / "seq0" / "00001.npy", bad)
    with pytest.raises(ValueError, match=r"00001\.npy: contains NaN"):
        evaluate_predictions(ds, tmp_path / "p", "test")


def test_coco_json_predictions(tmp_path):
    ds = _dataset(1, 2)
    dets = [{"image_id": "seq0/00000", "bbox": [12, 8, 2, 2], "score": 0.9, "category_id": 1},
            {"image_id": 2, "bbox": [12, 9, 2, 2], "score": 0.8, "category_id": 1},
            {"image_id": 2, "bbox": [30, 30, 2, 2], "score": 0.7, "category_id": 1}]  # fmt: skip
    (tmp_path / "r.json").write_text(json.dumps(dets))
    ev = evaluate_predictions(ds, tmp_path / "r.json", "test")
    res = write_report(ev, tmp_path / "o")
    assert res["ap50"] == pytest.approx(1.0) and res["pd[point]"] == 1.0
    assert res["fa_per_frame[point]"] == 0.5 and (tmp_path / "o" / "metrics_pr101.txt").exists()
    assert res["iou[box_as_mask]"] == pytest.approx(8 / 12)
    (tmp_path / "bad.json").write_text(json.dumps([{"image_id": "nope/1", "bbox": [0, 0, 1, 1], "score": 1}]))
    with pytest.raises(ValueError, match=r"bad\.json: detection 0 has an unknown image_id"):
        evaluate_predictions(ds, tmp_path / "bad.json", "test")


def test_eval_cli_rejects_unknown_convention_before_reading(tmp_path):
    from mirstd.cli import main

    assert main(["eval", f"pred={tmp_path}", "data=x", "protocols=[pdfa_nope]"]) == 1
    assert main(["eval", "--help"]) == 0
