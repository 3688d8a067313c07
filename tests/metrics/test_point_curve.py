"""Point-in-box matching and the Pd-at-false-alarms-per-frame curve (``point_curve``), by hand."""

from __future__ import annotations

import numpy as np
import pytest

from mirstd.metrics import Evaluator
from mirstd.metrics.points import DEFAULT_CURVE, PointCurve, match_in_boxes

BOX = np.array([[8.0, 8.0, 11.0, 11.0]])  # edge box: covers pixels 8, 9, 10


def _one(x: float, y: float, margin: float, boxes: np.ndarray = BOX) -> int:
    return int(match_in_boxes(boxes, np.array([[x, y]]), np.array([1.0]), margin)[0])


def test_pixel_index_vs_edge_coordinates():
    # a prediction at pixel index i is the point i + 0.5 in edge coordinates
    assert _one(10, 10, 0) == 0  # 10.5 in [8, 11]
    assert _one(8, 8, 0) == 0  # 8.5
    assert _one(11, 9, 0) == -1  # pixel 11 lies right of the box: 11.5 > 11
    assert _one(7, 9, 0) == -1  # 7.5 < 8
    assert _one(10.5, 10.5, 0) == 0  # 11.0: the edge itself counts
    assert _one(10.6, 9, 0) == -1  # 11.1


def test_margin_enlarges_every_side():
    assert _one(12.5, 9, 2) == 0  # 13.0 <= 11 + 2
    assert _one(12.6, 9, 2) == -1  # 13.1 > 13
    assert _one(5.5, 9, 2) == 0  # 6.0 >= 8 - 2
    assert _one(5.4, 9, 2) == -1  # 5.9
    assert _one(9, 12.5, 2) == 0 and _one(9, 12.6, 2) == -1  # the same in y
    assert _one(9, 5.5, 2) == 0 and _one(9, 5.4, 2) == -1
    assert _one(12.5, 12.5, 2) == 0  # the corner of the enlarged box
    assert _one(12.6, 12.6, 2) == -1


def test_one_to_one_by_score_nearest_centre_first():
    # two boxes overlapping in x 8..10; centres (5, 5) and (14, 5) in edge coordinates
    boxes = np.array([[0.0, 0.0, 10.0, 10.0], [8.0, 0.0, 20.0, 10.0]])
    xy = np.array([[8.5, 4.0], [3.0, 4.0]])  # 9.0 lies in both boxes, nearer A; 3.5 only in A
    assert match_in_boxes(boxes, xy, np.array([0.9, 0.5]), 0).tolist() == [0, -1]
    assert match_in_boxes(boxes, xy, np.array([0.5, 0.9]), 0).tolist() == [1, 0]
    # two predictions in one box: only the higher-scoring one matches
    two = np.array([[9.0, 9.0], [10.0, 10.0]])
    assert match_in_boxes(BOX, two, np.array([0.2, 0.7]), 0).tolist() == [-1, 0]
    assert match_in_boxes(BOX, two, np.array([0.7, 0.7]), 0).tolist() == [0, -1]  # ties: input order
    assert match_in_boxes(np.zeros((0, 4)), two, np.ones(2)).tolist() == [-1, -1]
    assert match_in_boxes(BOX, np.zeros((0, 2)), np.zeros(0)).shape == (0,)


def _box(cx: float, cy: float, score: float, half: float = 1.5) -> list[float]:
    return [cx - half, cy - half, cx + half, cy + half, score]


def _feed(ev: Evaluator) -> None:
    # frame 0: a hit (0.9) and false alarms scored 0.6 and 0.4; frame 1: a hit (0.45), a false alarm (0.8)
    ev.update(boxes=[_box(9.5, 9.5, 0.9), _box(40, 40, 0.6), _box(50, 10, 0.4)],
              gt_boxes=BOX, sequence="s", frame=0, shape=(64, 64))  # fmt: skip
    ev.update(boxes=[_box(32, 32, 0.45), _box(5, 50, 0.8)],
              gt_boxes=[[30, 30, 34, 34]], sequence="s", frame=1, shape=(64, 64))  # fmt: skip


def test_point_curve_budgets_through_the_evaluator():
    thr = [0.3, 0.5, 0.65, 0.7]
    ev = Evaluator(
        protocols=["point_curve"], options={"point_curve": {"thresholds": thr, "budgets": [0, 0.5, 1, 2]}}
    )
    _feed(ev)
    r = ev.compute()
    # per threshold (box score >= thr):  0.3: pd 2/2, 3 FA / 2 frames;  0.5: pd 1/2, FA 1.0;
    # 0.65 and 0.7: pd 1/2, FA 0.5
    c = ev.curves()["pd_fapf[point_curve]"]
    np.testing.assert_allclose(c["thresholds"], thr)
    np.testing.assert_allclose(c["pd"], [1.0, 0.5, 0.5, 0.5])
    np.testing.assert_allclose(c["fa_per_frame"], [1.5, 1.0, 0.5, 0.5])
    assert r["pd@fapf0[point_curve]"] == 0.0 and np.isnan(r["thr@fapf0[point_curve]"])  # none that clean
    # 0.5: 0.65 and 0.7 tie in Pd and FA -> the first (lowest) threshold
    assert r["pd@fapf0.5[point_curve]"] == 0.5 and r["thr@fapf0.5[point_curve]"] == 0.65
    # 1.0: 0.5, 0.65, 0.7 tie in Pd -> the fewest false alarms, then the lowest threshold
    assert r["pd@fapf1[point_curve]"] == 0.5 and r["thr@fapf1[point_curve]"] == 0.65
    assert r["pd@fapf2[point_curve]"] == 1.0 and r["thr@fapf2[point_curve]"] == 0.3
    assert r["frames"] == 2


def test_default_suite_has_point_curve_for_box_models():
    ev = Evaluator()
    _feed(ev)
    r = ev.compute()
    assert "pd[point]" in r and any(k.startswith("ap") for k in r)  # point and coco stay in the suite
    # default grid (score >= t): t <= 0.4: pd 1, FA 1.5;  0.45: pd 1, FA 1.0;  0.5 .. 0.6: pd 1/2, FA 1.0;
    # 0.65 .. 0.8: pd 1/2, FA 0.5;  0.85, 0.9: pd 1/2, FA 0;  >= 0.95: nothing
    c = ev.curves()["pd_fapf[point_curve]"]
    th = np.asarray(DEFAULT_CURVE)
    np.testing.assert_allclose(c["pd"], np.select([th <= 0.45, th <= 0.9], [1.0, 0.5], 0.0))
    np.testing.assert_allclose(
        c["fa_per_frame"], np.select([th <= 0.4, th <= 0.6, th <= 0.8], [1.5, 1.0, 0.5], 0.0)
    )
    for b in (0.05, 0.1, 0.2, 0.5):
        assert r[f"pd@fapf{b:g}[point_curve]"] == 0.5
        assert r[f"thr@fapf{b:g}[point_curve]"] == pytest.approx(0.85)
    assert r["pd@fapf1[point_curve]"] == 1.0 and r["thr@fapf1[point_curve]"] == pytest.approx(0.45)
    # the same numbers as the protocol asked for by name
    named = Evaluator(protocols=["point_curve"])
    _feed(named)
    rn = named.compute()
    assert all(rn[k] == r[k] or (np.isnan(rn[k]) and np.isnan(r[k])) for k in rn if "point_curve" in k)


def test_margin_decides_a_hit_by_the_box_rule():
    # the prediction's centre (pixel 12.4 -> edge 12.9) is outside the box but inside the 2 px margin
    gt = BOX
    pred = [[11.9, 8.0, 13.9, 10.0, 0.9]]  # box centre index ((11.9 + 13.9) / 2 - 0.5) = 12.4
    for margin, pd in ((2.0, 1.0), (1.0, 0.0)):
        m = PointCurve(thresholds=[0.5], box_margin=margin, budgets=[1.0])
        m.update(boxes=np.array(pred), gt_boxes=gt, shape=(32, 32))
        assert m.result()["pd@fapf1[point_curve]"] == pd
    # box_margin=None: the point rule on the box centre (9.5 - 0.5 = 9, 9) -> 3.4 px > 3 px: a miss
    m = PointCurve(thresholds=[0.5], box_margin=None, budgets=[1.0])
    m.update(boxes=np.array(pred), gt_boxes=gt, shape=(32, 32))
    assert m.result()["pd@fapf1[point_curve]"] == 0.0
    m = PointCurve(thresholds=[0.5], box_margin=None, distance=3.5, budgets=[1.0])
    m.update(boxes=np.array(pred), gt_boxes=gt, shape=(32, 32))
    assert m.result()["pd@fapf1[point_curve]"] == 1.0


def _blob(p: np.ndarray, x: int, y: int, peak: float) -> None:
    p[y - 1 : y + 2, x - 1 : x + 2] = peak * 0.9
    p[y, x] = peak


def test_points_only_ground_truth_uses_the_point_rule():
    ev = Evaluator()
    frames = [((10, 10), [(10, 10, 0.93), (25, 5, 0.32)]), ((10, 10), [(10, 10, 0.93)]),
              ((20, 20), [(24, 20, 0.93)])]  # fmt: skip
    for f, (gt, blobs) in enumerate(frames):
        p = np.zeros((32, 32), np.float32)
        for x, y, peak in blobs:
            _blob(p, x, y, peak)
        ev.update(scores=p, gt_points=[gt], sequence="s", frame=f)  # frame 2: 4 px away -> miss + FA
    r = ev.compute()
    # p > t components: t <= 0.3: pd 2/3, 2 FA / 3 frames;  0.35 .. 0.9: pd 2/3, 1/3;  >= 0.95: nothing
    c = ev.curves()["pd_fapf[point_curve]"]
    th = np.asarray(DEFAULT_CURVE)
    np.testing.assert_allclose(c["pd"], np.where(th < 0.93, 2 / 3, 0.0))
    np.testing.assert_allclose(c["fa_per_frame"], np.where(th < 0.32, 2 / 3, np.where(th < 0.93, 1 / 3, 0)))
    assert r["pd@fapf0.2[point_curve]"] == 0.0 and r["thr@fapf0.2[point_curve]"] == 0.95
    # 0.5 and 1: the highest Pd (2/3) with the fewest false alarms (1/3) -> the lowest such threshold
    assert r["pd@fapf0.5[point_curve]"] == pytest.approx(2 / 3) and r["thr@fapf0.5[point_curve]"] == 0.35
    assert r["pd@fapf1[point_curve]"] == pytest.approx(2 / 3) and r["thr@fapf1[point_curve]"] == 0.35
    # the curve at 0.5 is the point protocol's headline number
    k = list(th).index(0.5)
    assert r["pd[point]"] == pytest.approx(c["pd"][k]) and r["fa_per_frame[point]"] == pytest.approx(
        c["fa_per_frame"][k]
    )
    assert "point_curve" in r["meta"]["conventions"]


def test_default_curve_reaches_budgets_through_float32_scores_near_one():
    # Clutter at 0.99996 in every frame, the target at 1 - 5e-7 (both float32, as a network's sigmoid
    # gives them): only the tail beyond 0.9999 reaches a budget below one false alarm per frame.
    assert np.all(np.diff(DEFAULT_CURVE) > 0) and DEFAULT_CURVE[-1] == pytest.approx(1 - 1e-7)
    assert DEFAULT_CURVE[0] == 0.001  # and from 0.001 at the low end (test below)
    ev = Evaluator(protocols=["point_curve"])
    for f in range(4):
        p = np.zeros((32, 32), np.float32)
        p[5, 5], p[20, 20] = np.float32(1 - 5e-7), np.float32(0.99996)
        assert p[5, 5] > p[20, 20]
        ev.update(scores=p, gt_points=[np.array([[5.0, 5.0]])], sequence="s", frame=f)
    r = ev.compute()
    assert r["pd@fapf0.05[point_curve]"] == 1.0 and r["thr@fapf0.05[point_curve]"] > 0.99996
    c = ev.curves()["pd_fapf[point_curve]"]
    k = list(c["thresholds"]).index(0.9999)
    assert c["pd"][k] == 1.0 and c["fa_per_frame"][k] == 1.0  # at the old top of the sweep


def test_default_curve_reads_a_network_that_is_confident_only_below_0_05():
    # A network trained on several sources can rank a source's targets right at low probability: the
    # target at 0.015, clutter at 0.004 in every frame. Only the grid's head below 0.05 reaches them.
    ev = Evaluator(protocols=["point_curve"])
    for f in range(4):
        p = np.full((32, 32), 1e-4, np.float32)
        p[5, 5], p[20, 20] = 0.015, 0.004
        ev.update(scores=p, gt_points=[np.array([[5.0, 5.0]])], sequence="s", frame=f)
    r = ev.compute()
    assert r["pd@fapf0.05[point_curve]"] == 1.0 and r["thr@fapf0.05[point_curve]"] == 0.005
    assert r["pd@fapf1[point_curve]"] == 1.0
    c = ev.curves()["pd_fapf[point_curve]"]
    th = np.asarray(DEFAULT_CURVE)
    np.testing.assert_allclose(c["pd"], np.where(th < 0.015, 1.0, 0.0))
    np.testing.assert_allclose(c["fa_per_frame"], np.where(th < 0.004, 1.0, 0.0))
