"""Segmentation conventions against the metrics spec's worked examples (§12 E1-E5)."""

from __future__ import annotations

import numpy as np
import pytest

from mirstd.metrics import Evaluator
from mirstd.metrics.seg import (
    CURVE_THRESHOLDS,
    CURVE_THRESHOLDS_DEEP,
    DTUM_THRESHOLDS,
    IoUMetric,
    PdFaCentroid,
    PdFaShooting,
    RocPixel,
    pdfa_centroid_frame,
    shooting_frame,
)


def _e1():
    A_g = np.zeros((4, 4), np.uint8)
    A_g[1:3, 1:3] = 1
    A_p = np.zeros((4, 4), np.uint8)
    A_p[1:3, 1:4] = 1
    B_g = np.zeros((4, 4), np.uint8)
    B_g[0, 0] = 1
    Z = np.zeros((4, 4), np.uint8)
    return [(A_p, A_g), (Z, B_g), (Z, Z)]


@pytest.mark.parametrize(
    "policy,key,value",
    [("zero", "niou", 0.222222), ("skip", "niou[skip]", 0.333333), ("one", "niou[one]", 0.555556)],
)
def test_e1_iou_niou(policy, key, value):
    m = IoUMetric(empty_policy=policy)
    for p, g in _e1():
        m.update(scores=p.astype(np.float32), gt_mask=g)
    r = m.result()
    assert r["iou"] == pytest.approx(4 / 7, abs=1e-6)
    assert r[key] == pytest.approx(value, abs=1e-6)
    assert r["pixacc"] == pytest.approx(4 / 5)


def _e2():
    G = np.zeros((12, 12), np.uint8)
    G[2, 2] = G[2, 3] = G[9, 9] = 1
    P = np.zeros((12, 12), np.uint8)
    P[2, 3] = P[2, 4] = P[6, 0] = P[7, 0] = P[9, 5] = P[9, 6] = P[10, 5] = 1
    return P, G


def _e4_prob():
    p = np.full((12, 12), 0.004)
    p[2, 3] = p[2, 4] = 0.92
    p[6, 0] = p[7, 0] = 0.62
    p[9, 5] = p[9, 6] = p[10, 5] = 0.42
    p[9, 9] = 0.32
    return p


def test_e2_centroid():
    P, G = _e2()
    assert pdfa_centroid_frame(P, G, "basicirstd") == (2, 1, 5)
    assert pdfa_centroid_frame(P, G, "area_quirk") == (2, 1, 3)
    m = PdFaCentroid()
    m.update(scores=P.astype(float), gt_mask=G)
    assert m.result() == {"pd[centroid]": 0.5, "fa[centroid]": pytest.approx(0.0347222, abs=1e-7)}
    q = PdFaCentroid(dnanet_compat=True)
    q.update(scores=P.astype(float), gt_mask=G)
    assert q.result()["fa[centroid:area_quirk]"] == pytest.approx(0.0208333, abs=1e-7)


def test_e2_eight_connectivity():
    G = np.zeros((4, 4), np.uint8)
    G[1, 1] = G[2, 2] = 1
    assert pdfa_centroid_frame(np.zeros_like(G), G)[0] == 1


@pytest.mark.parametrize("variant,fa", [("clipped", 1 / 144), ("dtum_faithful", 4 / 144)])
def test_e3_shooting_binary(variant, fa):
    P, G = _e2()
    n, hits, false = shooting_frame(P.astype(float), G, np.array([0.5]), variant)
    assert (n, int(hits[0])) == (2, 1)
    assert false[0] / 144 == pytest.approx(fa)


@pytest.mark.parametrize(
    "variant,auc3,auc50,fa50,false3",
    [
        ("clipped", 0.230903, 0.309028, 1 / 144, [45, 1, 0]),
        ("dtum_faithful", 0.480903, 0.642361, 4 / 144, [95, 4, 0]),
    ],
)
def test_e4_shooting_sweep(variant, auc3, auc50, fa50, false3):
    P, G = _e2()
    p = _e4_prob()
    n, hits, false = shooting_frame(p, G, np.array([0.0, 0.5, 1.0]), variant)
    assert hits.tolist() == [2, 1, 0] and false.tolist() == false3
    m = PdFaShooting(variant=variant, thresholds=[0.0, 0.5, 1.0])
    m.update(scores=p, gt_mask=G)
    tag = "shooting" if variant == "clipped" else "shooting:dtum_faithful"
    assert m.result()[f"auc[{tag}]"] == pytest.approx(auc3, abs=1e-6)
    full = PdFaShooting(variant=variant)
    full.update(scores=p, gt_mask=G)
    r = full.result()
    assert r[f"auc[{tag}]"] == pytest.approx(auc50, abs=1e-6)
    assert r[f"pd[{tag}]"] == 0.5 and r[f"fa[{tag}]"] == pytest.approx(fa50)


def test_dtum_threshold_list():
    assert len(DTUM_THRESHOLDS) == 50
    assert DTUM_THRESHOLDS[0] == 0 and DTUM_THRESHOLDS[1] == 1e-30 and DTUM_THRESHOLDS[-1] == 1.0
    assert np.all(np.diff(DTUM_THRESHOLDS) > 0) and 0.5 in DTUM_THRESHOLDS


def test_default_curve_separates_scores_above_099():
    # A trained network's clutter sits at probabilities above 0.99; the default sweep must reach past
    # it (to 1 - 1e-7) or Pd at a low Fa is never measured. Clutter at 0.9995, the target at 0.99999.
    assert CURVE_THRESHOLDS[-1] == pytest.approx(1 - 1e-7) and np.all(np.diff(CURVE_THRESHOLDS) > 0)
    p = np.zeros((32, 32))
    p[5, 5], p[20:22, 20:22] = 0.99999, 0.9995
    g = np.zeros((32, 32), np.uint8)
    g[5, 5] = 1
    ev = Evaluator(protocols=["pdfa_curve"])
    ev.update(scores=p, gt_mask=g, sequence="s")
    c = ev.curves()["pdfa[centroid]"]
    k = int(np.argmin(np.abs(c["thresholds"] - 0.9999)))
    assert c["pd"][k] == 1.0 and c["fa"][k] == 0.0  # the clutter gone, the target kept
    assert c["fa"][int(np.argmin(np.abs(c["thresholds"] - 0.99)))] == pytest.approx(4 / 1024)
    assert c["pd"][-1] == 0.0  # above the target's score


def test_e4_centroid_at_half():
    P, G = _e2()
    ev = Evaluator(protocols=["pdfa_centroid", "pdfa_centroid:area_quirk"])
    ev.update(scores=_e4_prob(), gt_mask=G, sequence="e4")
    r = ev.compute()
    assert r["pd[centroid]"] == 0.5 and r["fa[centroid]"] == pytest.approx(2 / 144)
    assert r["pd[centroid:area_quirk]"] == 0.5 and r["fa[centroid:area_quirk]"] == 0.0


def test_e5_pixel_roc():
    p = np.array([[0.93, 0.81, 0.64], [0.45, 0.33, 0.22], [0.15, 0.05, 0.72]])
    g = np.array([[1, 1, 0], [1, 0, 0], [0, 0, 0]])
    m = RocPixel(bins=10)
    m.update(scores=p, gt_mask=g)
    t = m.table(m._state)
    assert t["tp"].tolist() == [3, 3, 3, 3, 3, 2, 2, 2, 2, 1, 0]
    assert t["fp"].tolist() == [6, 5, 4, 3, 2, 2, 2, 1, 0, 0, 0]
    np.testing.assert_allclose(t["precision"][:10], [1 / 3, 0.375, 3 / 7, 0.5, 0.6, 0.5, 0.5, 2 / 3, 1, 1])
    assert np.isnan(t["precision"][10])
    assert m.result()["auc[roc]"] == pytest.approx(0.888889, abs=1e-6)


# ----------------------------------------------------------------- independent centroid implementation


def _plain_components(b):
    """Raster-order 8-connected flood fill in plain Python: list of pixel lists."""
    h, w = b.shape
    seen = np.zeros_like(b, bool)
    comps = []
    for r in range(h):
        for c in range(w):
            if b[r, c] and not seen[r, c]:
                stack, pix = [(r, c)], []
                seen[r, c] = True
                while stack:
                    y, x = stack.pop()
                    pix.append((y, x))
                    for dy in (-1, 0, 1):
                        for dx in (-1, 0, 1):
                            yy, xx = y + dy, x + dx
                            if 0 <= yy < h and 0 <= xx < w and b[yy, xx] and not seen[yy, xx]:
                                seen[yy, xx] = True
                                stack.append((yy, xx))
                comps.append(pix)
    return comps


def _plain_pdfa(pred, gt, quirk=False):
    gts, preds = _plain_components(gt > 0), _plain_components(pred > 0)
    cen = lambda pix: (sum(p[0] for p in pix) / len(pix), sum(p[1] for p in pix) / len(pix))  # noqa: E731
    pool = list(preds)
    matched_areas, matched = [], 0
    for g in gts:
        gc = cen(g)
        for k, pcomp in enumerate(pool):
            pc = cen(pcomp)
            if ((gc[0] - pc[0]) ** 2 + (gc[1] - pc[1]) ** 2) ** 0.5 < 3:
                matched += 1
                matched_areas.append(len(pcomp))
                del pool[k]
                break
    if quirk:
        false = sum(len(p) for p in preds if len(p) not in matched_areas)
    else:
        false = sum(len(p) for p in preds) - sum(matched_areas)
    return len(gts), matched, false


def test_centroid_agrees_with_plain_implementation_on_200_random_pairs():
    rng = np.random.default_rng(0)
    tot = np.zeros(3)
    for _ in range(200):
        h, w = rng.integers(8, 24, size=2)
        gt = (rng.random((h, w)) < rng.uniform(0.02, 0.15)).astype(np.uint8)
        noise = rng.random((h, w)) < rng.uniform(0.0, 0.15)
        pred = np.where(rng.random((h, w)) < 0.7, gt, 0).astype(bool) | noise
        for quirk in (False, True):
            ours = pdfa_centroid_frame(pred, gt, "area_quirk" if quirk else "basicirstd")
            assert ours == _plain_pdfa(pred, gt, quirk)
        tot += _plain_pdfa(pred, gt)
    assert tot[0] > 200 and 0 < tot[1] < tot[0] and tot[2] > 0  # the fixture exercises matches and misses


def test_unknown_convention_lists_valid():
    with pytest.raises(ValueError, match=r"valid: .*pdfa_centroid:area_quirk.*pdfa_shooting:dtum_faithful"):
        Evaluator(protocols=["pdfa_bogus"])
    with pytest.raises(ValueError, match="valid: clipped, dtum_faithful"):
        PdFaShooting(variant="wrapped")


def test_deep_curve_reads_pd_where_float32_would_tie_at_one():
    # As the demo's networks: clutter at logit 30, the target at logit 33 (float64 sigmoid; in float32
    # both are exactly 1). The default sweep, to 1 - 1e-7, keeps the clutter at every threshold; the
    # deep sweep, to 1 - 1e-15, drops it and keeps the target.
    sig = lambda x: 1.0 / (1.0 + np.exp(-x))  # noqa: E731
    assert np.float32(sig(30.0)) == np.float32(sig(33.0)) == 1.0 and sig(30.0) < sig(33.0) < 1.0
    # approx(1 - 1e-15) would hold for any value near 1: check the distance from 1 itself
    assert np.all(np.diff(CURVE_THRESHOLDS_DEEP) > 0) and 1 - CURVE_THRESHOLDS_DEEP[-1] == pytest.approx(
        1e-15, rel=0.2
    )
    p = np.zeros((32, 32))
    p[5, 5], p[20:22, 20:22] = sig(33.0), sig(30.0)
    g = np.zeros((32, 32), np.uint8)
    g[5, 5] = 1
    got = {}
    for name, th in (("default", CURVE_THRESHOLDS), ("deep", CURVE_THRESHOLDS_DEEP)):
        ev = Evaluator(protocols=["pdfa_curve"], curve_thresholds=th)
        ev.update(scores=p, gt_mask=g, sequence="s")
        c = ev.curves()["pdfa[centroid]"]
        got[name] = c["fa"][c["pd"] == 1.0].min()
    assert got["default"] == pytest.approx(4 / 1024) and got["deep"] == 0.0


def test_deep_curve_steps_at_most_a_quarter_decade_near_one():
    # Pd@Fa is interpolated between neighbouring thresholds: above p = 0.9 no gap may exceed a
    # quarter decade of 1 - p (logit ~0.58), or a 1e-5 reading is a guess across a wide gap.
    top = CURVE_THRESHOLDS_DEEP[CURVE_THRESHOLDS_DEEP >= 0.9]
    decades = -np.log10(1.0 - top)
    assert decades[0] == pytest.approx(1.0) and decades[-1] == pytest.approx(15.0, abs=0.01)
    # + 0.02: near 1 - 1e-15, 1 - p is a multiple of float64's 1.1e-16 spacing (measured max gap 0.26)
    assert np.diff(decades).max() <= 0.25 + 0.02
    assert set(CURVE_THRESHOLDS) <= set(CURVE_THRESHOLDS_DEEP)  # the default sweep's points are kept
