"""Evaluator: default suites, per-frame accumulation, mSCR groups, bad input."""

from __future__ import annotations

import numpy as np
import pytest

from mirstd.metrics import Evaluator, fa_scaled, scr_group


def _frame(hit: bool, seed: int):
    rng = np.random.default_rng(seed)
    g = np.zeros((32, 32), np.uint8)
    g[10:12, 10:12] = 1
    p = rng.uniform(0, 0.2, (32, 32)).astype(np.float32)
    if hit:
        p[10:12, 10:12] = 0.9
    p[25, 25] = 0.8  # one false-alarm pixel per frame
    return p, g


def test_default_seg_suite_and_scr_groups():
    ev = Evaluator(scr_thresholds=(3.0,))
    for f in range(3):
        p, g = _frame(True, f)
        ev.update(scores=p, gt_mask=g, sequence="easy", frame=f, scr=5.0)
    ev.set_sequence_scr("hard", 1.5)
    for f in range(2):
        p, g = _frame(False, 10 + f)
        ev.update(scores=p, gt_mask=g, sequence="hard", frame=f)
    r = ev.compute()
    assert {
        "iou",
        "niou",
        "pd[centroid]",
        "fa[centroid]",
        "pd[shooting]",
        "auc[shooting]",
        "auc[roc]",
    } <= set(r)
    assert r["pd[centroid]"] == pytest.approx(3 / 5) and r["fa[centroid]"] == pytest.approx(5 / (5 * 1024))
    assert r["frames"] == 5 and r["sequences"] == 2
    assert r["by_scr"]["high"]["pd[centroid]"] == 1.0 and r["by_scr"]["low"]["pd[centroid]"] == 0.0
    assert r["by_scr"]["low"]["frames"] == 2
    assert r["iou"] == pytest.approx(12 / (20 + 5))  # 3 hit frames: 4/5 each; 2 miss frames: 0/5
    c = ev.curves()
    assert c["roc"]["tpr"].shape == (201,) and c["pdfa[shooting]"]["pd"].shape == (50,)
    assert ev.curves("low")["pdfa[shooting]"]["pd"][-1] == 0.0


def test_scr_group_labels():
    assert scr_group(2.99) == "low" and scr_group(3.0) == "high" and scr_group("custom") == "custom"
    assert scr_group(float("nan")) is None
    assert (
        scr_group(4.0, (3.0, 6.0)) == "3<=scr<6"
        and scr_group(7, (3, 6)) == "scr>=6"
        and scr_group(1, (3, 6)) == "scr<3"
    )


def test_fa_scaled():
    assert fa_scaled(2.5e-5) == pytest.approx(25.0)
    assert fa_scaled(2.5e-5, 1e-5) == pytest.approx(2.5)


def test_bad_inputs_name_the_frame():
    ev = Evaluator()
    p, g = _frame(True, 0)
    p[3, 3] = np.nan
    with pytest.raises(ValueError, match=r"frame s/7: scores contain NaN"):
        ev.update(scores=p, gt_mask=g, sequence="s", frame=7)
    with pytest.raises(ValueError, match=r"frame s/1: prediction size \(32, 32\) != GT mask size \(16, 16\)"):
        ev.update(scores=_frame(True, 0)[0], gt_mask=np.zeros((16, 16)), sequence="s", frame=1)
    with pytest.raises(ValueError, match="outside"):
        ev.update(scores=np.full((4, 4), 3.0), gt_mask=np.zeros((4, 4)), sequence="s", frame=2)
    with pytest.raises(ValueError, match="protocol 'iou' needs a GT mask"):
        Evaluator(protocols=["iou"]).update(scores=np.zeros((4, 4)), gt_points=np.zeros((0, 2)), sequence="s")


def test_empty_frames_count_in_fa_denominator():
    ev = Evaluator(protocols=["pdfa_centroid"])
    p, g = _frame(True, 0)
    ev.update(scores=p, gt_mask=g, sequence="s", frame=0)
    ev.update(scores=np.zeros((32, 32), np.float32), gt_mask=np.zeros((32, 32)), sequence="s", frame=1)
    assert ev.compute()["fa[centroid]"] == pytest.approx(1 / 2048)


def test_classical_figures_protocol_through_the_evaluator():
    """SCR gain / BSF / contrast gain (metrics.md §8) as an Evaluator protocol fed the input frame."""
    from mirstd.metrics import Evaluator
    from mirstd.metrics.classical_figures import ClassicalFigures

    rng = np.random.RandomState(0)
    image = 0.3 + 0.02 * rng.randn(48, 48)
    image[20:23, 20:23] += 0.2
    gt = np.zeros((48, 48), np.uint8)
    gt[20:23, 20:23] = 1
    scores = np.clip(0.05 * rng.rand(48, 48), 0, 1)
    scores[20:23, 20:23] = 0.9  # a detector that suppresses the background
    ev = Evaluator(protocols=["classical_figures"])
    ev.update(scores=scores, gt_mask=gt, image=image)
    res = ev.compute()
    direct = ClassicalFigures()
    direct.update(scores=scores, gt_mask=gt, image=image)
    ref = direct.result()
    figs = {
        k: v for k, v in res.items() if isinstance(v, float) and ("scrg" in k.lower() or "bsf" in k.lower())
    }
    assert figs and all(res[k] == pytest.approx(ref[k]) for k in figs)
    assert any(v > 1 for k, v in figs.items() if "scrg" in k.lower())  # the map raised the target's SCR
    with pytest.raises(ValueError, match="needs the input frame"):
        Evaluator(protocols=["classical_figures"]).update(scores=scores, gt_mask=gt)
