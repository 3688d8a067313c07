"""Cross-scoring conversions and the point-level convention."""

from __future__ import annotations

import numpy as np
import pytest

from mirstd.metrics import Evaluator
from mirstd.metrics.convert import (
    boxes_to_mask,
    boxes_to_points,
    boxes_to_scores,
    mask_to_boxes,
    scores_to_boxes,
)
from mirstd.metrics.points import PointPdFa, match_points


def test_scores_to_boxes_extent_and_max():
    p = np.zeros((10, 10), np.float32)
    p[1:3, 2:5] = 0.6
    p[2, 3] = 0.95
    p[7, 7] = 0.7
    b = scores_to_boxes(p, 0.5)
    np.testing.assert_allclose(b, [[2, 1, 5, 3, 0.95], [7, 7, 8, 8, 0.7]], rtol=1e-6)
    assert scores_to_boxes(p, 0.99).shape == (0, 5)
    assert scores_to_boxes(p, 0.5, score="mean")[0, 4] == pytest.approx((5 * 0.6 + 0.95) / 6)


def test_box_point_mask_roundtrip():
    b = np.array([[2, 1, 5, 3, 0.9], [7, 7, 8, 8, 0.2]])
    np.testing.assert_allclose(boxes_to_points(b), [[3.0, 1.5], [7.0, 7.0]])
    m = boxes_to_mask(b, (10, 10))
    assert m.sum() == 7 and m[1:3, 2:5].all()
    assert boxes_to_mask(b, (10, 10), thr=0.5).sum() == 6
    np.testing.assert_allclose(mask_to_boxes(m), b[:, :4])
    s = boxes_to_scores(b, (10, 10))
    assert (
        s[2, 3] == pytest.approx(0.9)
        and s[7, 7] == pytest.approx(0.2)
        and s.sum() == pytest.approx(6 * 0.9 + 0.2)
    )


def test_match_points_one_to_one_by_score():
    gt = np.array([[10.0, 10.0]])
    pred = np.array([[11.0, 10.0], [10.0, 10.5]])
    assert match_points(gt, pred, np.array([0.3, 0.9])).tolist() == [-1, 0]
    assert match_points(gt, np.array([[13.0, 10.0]]), np.array([1.0])).tolist() == [
        -1
    ]  # distance 3 is not < 3
    assert match_points(gt, np.array([[13.0, 10.0]]), np.array([1.0]), max_dist=3.5).tolist() == [0]


def test_point_protocol_from_scores_and_boxes():
    pts = np.array([[4.0, 4.0], [20.0, 20.0]])
    p = np.zeros((32, 32), np.float32)
    p[4:6, 4:6] = 0.8  # centroid (4.5, 4.5): hit
    p[28, 28] = 0.9  # false alarm, 1 px
    m = PointPdFa()
    m.update(scores=p, gt_points=pts)
    assert m.result() == {"pd[point]": 0.5, "fa[point]": 1 / 1024, "fa_per_frame[point]": 1.0}
    ev = Evaluator()  # points only -> point protocol; boxes -> box-centre rule, flagged approximate
    ev.update(boxes=np.array([[3, 3, 6, 6, 0.9], [0, 0, 2, 2, 0.8], [20, 20, 21, 21, 0.1]]), gt_points=pts,
              sequence="a", shape=(32, 32))  # fmt: skip
    r = ev.compute()
    assert r["pd[point]"] == 0.5 and r["fa[point]"] == 4 / 1024 and r["fa_per_frame[point]"] == 1.0
    assert "pd[point]" in r["meta"]["approximate"]
    ev2 = Evaluator(point_distance=0.4)
    ev2.update(scores=p, gt_points=pts, sequence="a")
    assert ev2.compute()["pd[point]"] == 0.0


def test_box_model_on_mask_dataset_is_flagged_approximate():
    g = np.zeros((16, 16), np.uint8)
    g[5:7, 5:7] = 1
    ev = Evaluator()
    ev.update(boxes=np.array([[5, 5, 8, 7, 0.9]]), gt_mask=g, sequence="s")
    r = ev.compute()
    assert r["iou[box_as_mask]"] == pytest.approx(4 / 6)
    assert r["pd[centroid:box_as_mask]"] == 1.0
    assert r["ap50"] == pytest.approx(1.0)  # IoU 4/6 >= 0.5 with GT boxes from mask components
    assert {"iou[box_as_mask]", "pd[centroid:box_as_mask]", "pd[point]"} <= set(r["meta"]["approximate"])
    assert "ap50" not in r["meta"]["approximate"]
