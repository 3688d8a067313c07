"""Box metrics against the spec's E10 and pycocotools; UESTC result files; E8 conversion caveat."""

from __future__ import annotations

import contextlib
import io

import numpy as np
import pytest

from mirstd.metrics import Evaluator
from mirstd.metrics.convert import mask_to_boxes, scores_to_boxes
from mirstd.metrics.det import (
    box_iou,
    coco_eval,
    lab_prf,
    precision_vector,
    read_result_file,
    write_result_file,
)


def _edge(b):
    x, y, w, h = b
    return [x, y, x + w, y + h]


GT = {0: [_edge([10, 10, 8, 8]), _edge([40, 40, 6, 6])], 1: [_edge([20, 20, 8, 8])]}
DT = {
    0: [_edge([11, 11, 8, 8]) + [0.9], _edge([60, 60, 5, 5]) + [0.8], _edge([40, 41, 6, 6]) + [0.3]],
    1: [_edge([21, 20, 8, 8]) + [0.6], _edge([5, 5, 4, 4]) + [0.5]],
}


def _evaluate(drop_d3=False):
    ev = Evaluator()
    for f in (0, 1):
        d = np.array(DT[f][:2] if (drop_d3 and f == 0) else DT[f])
        ev.update(boxes=d, gt_boxes=np.array(GT[f]), sequence="s", frame=f, shape=(100, 100))
    return ev


def test_e10_ap_and_lab_prf():
    r = _evaluate().compute()
    assert r["ap50"] == pytest.approx(0.756436, abs=1e-6)
    assert r["ap"] == pytest.approx(0.291221, abs=1e-6)
    assert r["ap75"] == pytest.approx(0.112211, abs=1e-6)
    assert (r["p[lab]"], r["r[lab]"], r["f1[lab]"]) == (
        pytest.approx(0.758),
        1.0,
        pytest.approx(0.862344, abs=1e-6),
    )
    assert r["ap50[area:point]"] == -1 and r["ap50[area:larger]"] == -1
    assert r["ap50[area:tiny]"] == pytest.approx(1 / 3) and r["ap50[area:small]"] == 1.0
    # fixed confidence 0.5: d1, d4 TP; d2, d5 FP; g2 missed
    assert (r["p[conf0.5]"], r["r[conf0.5]"]) == (0.5, pytest.approx(2 / 3))
    pr = _evaluate().curves()["pr"]
    assert pr["precision"][:34].tolist() == [1.0] * 34
    np.testing.assert_allclose(pr["precision"][34:67], 2 / 3)
    np.testing.assert_allclose(pr["precision"][67:], 0.6)


def test_e10_without_d3():
    r = _evaluate(drop_d3=True).compute()
    assert r["ap50"] == pytest.approx(0.554455, abs=1e-6)
    assert r["r[lab]"] == pytest.approx(2 / 3)
    assert r["p[lab]"] == pytest.approx(0.838384, abs=1e-6)
    assert r["f1[lab]"] == pytest.approx(0.742729, abs=1e-6)


def test_lab_prf_int_truncation():
    p = np.linspace(1, 0, 101)
    assert lab_prf(p, 0.29)[0] == pytest.approx(p[:28].mean())  # int(100*0.29) == 28, faithfully


def test_ap50_equals_pycocotools_on_random_fixture():
    pytest.importorskip("pycocotools")
    from pycocotools.coco import COCO
    from pycocotools.cocoeval import COCOeval

    rng = np.random.default_rng(3)
    frames, images, anns, dets = [], [], [], []
    for img in range(1, 21):
        n = int(rng.integers(0, 4))
        xy = rng.uniform(0, 100, (n, 2))
        wh = rng.uniform(2, 10, (n, 2))
        gt = np.concatenate([xy, xy + wh], 1)
        jit = gt + rng.normal(0, 1.0, gt.shape)
        fp = np.concatenate([(q := rng.uniform(0, 100, (2, 2))), q + rng.uniform(2, 8, (2, 2))], 1)
        dt = np.concatenate([np.concatenate([jit, fp]), rng.random((n + 2, 1))], 1)
        frames.append((gt, dt, (128, 128)))
        images.append({"id": img, "width": 128, "height": 128})
        for b in gt:
            anns.append({"id": len(anns) + 1, "image_id": img, "category_id": 1, "iscrowd": 0,
                         "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]], "area": (b[2] - b[0]) * (b[3] - b[1])})  # fmt: skip
        for b in dt:
            dets.append(
                {
                    "image_id": img,
                    "category_id": 1,
                    "bbox": [b[0], b[1], b[2] - b[0], b[3] - b[1]],
                    "score": b[4],
                }
            )
    ours = coco_eval(frames)
    with contextlib.redirect_stdout(io.StringIO()):
        g = COCO()
        g.dataset = {"images": images, "annotations": anns, "categories": [{"id": 1, "name": "t"}]}
        g.createIndex()
        ref = COCOeval(g, g.loadRes(dets), "bbox")
        ref.evaluate()
        ref.accumulate()
        ref.summarize()
    assert len(anns) > 20
    assert ours.stats[1] == pytest.approx(ref.stats[1], abs=1e-12)
    assert ours.stats[0] == pytest.approx(ref.stats[0], abs=1e-12)


def test_result_file_roundtrip(tmp_path):
    ev = _evaluate()
    p = ev.curves()["pr"]["precision"]
    write_result_file(tmp_path / "ours.txt", p)
    line = (tmp_path / "ours.txt").read_text()
    assert line.count("\t") == 100 and line.endswith("\n")
    r = read_result_file(tmp_path / "ours.txt")
    assert r["ap50"] == pytest.approx(ev.compute()["ap50"], abs=1e-12)
    assert r["recall_bin"] == 1.0 and r["p"] == pytest.approx(0.758)
    # without d3 the last non-zero precision sits at index 66 -> R in [0.66, 0.67)
    r2 = read_result_file(
        write_result_file(
            tmp_path / "b.txt",
            precision_vector(
                coco_eval(
                    [
                        (np.array(GT[0]), np.array(DT[0][:2]), (100, 100)),
                        (np.array(GT[1]), np.array(DT[1]), (100, 100)),
                    ]
                )
            ),
        )
    )
    assert r2["ap50"] == pytest.approx(0.554455, abs=1e-6) and r2["recall_bin"] == 0.66
    assert r2["p"] == pytest.approx(0.838384, abs=1e-6)
    (tmp_path / "bad.txt").write_text("0.5\t0.4\n")
    with pytest.raises(ValueError, match=r"bad\.txt: expected 101"):
        read_result_file(tmp_path / "bad.txt")


def test_e8_mask_to_box_caveat():
    G = np.zeros((12, 12), np.uint8)
    G[2, 2] = G[2, 3] = 1
    P = np.zeros((12, 12), np.float32)
    P[2, 3] = P[2, 4] = 0.9
    gb, pb = mask_to_boxes(G), scores_to_boxes(P)
    assert gb.tolist() == [[2, 2, 4, 3]]  # xywh [2, 2, 2, 1]
    assert pb[:, :4].tolist() == [[3, 2, 5, 3]] and pb[0, 4] == pytest.approx(0.9)
    assert box_iou(pb[:, :4], gb)[0, 0] == pytest.approx(1 / 3)
    ev = Evaluator(protocols=["coco", "pdfa_centroid", "pdfa_shooting"])
    ev.update(scores=P, gt_mask=G, sequence="e8")
    r = ev.compute()
    assert r["ap50"] == 0.0 and r["pd[centroid]"] == 1.0 and r["pd[shooting]"] == 1.0
