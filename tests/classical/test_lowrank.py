"""Low-rank methods on constructed frames (low-rank background + sparse point targets), and each
solver against an independent computation. All comparisons in float64."""

from __future__ import annotations

import numpy as np
import pytest
from classical_scenes import energy_split, make_scene

from mirstd.classical import lowrank as lr
from mirstd.classical._common import extract_patches, fold_patches, gst, prox_tnn, tsvd_shrink

# ----------------------------------------------------------------------------- recovery

# Small patches keep the default run fast; the papers' defaults run in the slow tests below.
FAST = {
    "ipi": (lr.ipi, dict(patch_size=16, step=8), False),
    "pstnn": (lr.pstnn, {}, False),
    "ript": (lr.ript, {}, False),
    "stt": (lr.stt, dict(patch_size=16, step=8), True),
    "wsnm_stipt": (lr.wsnm_stipt, {}, True),
    "asttv_ntla": (lr.asttv_ntla, {}, True),
    "imnn_lwec": (lr.imnn_lwec, dict(patch_size=16), True),
}


@pytest.mark.parametrize("name", list(FAST))
def test_recovers_sparse_targets_and_leaves_background(name, scene5):
    fn, kw, multi = FAST[name]
    stack, masks, sparse, _ = scene5
    sal = fn(stack if multi else stack[-1], **kw)
    assert sal.shape == stack.shape[1:] and np.isfinite(sal).all() and sal.min() >= 0
    on, off = energy_split(sal, sparse, masks[-1])
    assert on >= 0.9, f"{name}: target pixels carry {on:.3f} of the sparse energy"
    assert on <= 1.1, f"{name}: target pixels carry {on:.3f} (background leaked in)"
    assert off < 0.05, f"{name}: {off:.4f} of the sparse energy lies outside the targets"


@pytest.mark.slow
@pytest.mark.parametrize(
    "name,fn,multi",
    [
        ("ipi", lr.ipi, False),
        ("pstnn", lr.pstnn, False),
        ("ript", lr.ript, False),
        ("stt", lr.stt, True),
        ("wsnm_stipt", lr.wsnm_stipt, True),
        ("asttv_ntla", lr.asttv_ntla, True),
        ("imnn_lwec", lr.imnn_lwec, True),
    ],
)
def test_paper_defaults_recover_targets_128(name, fn, multi):
    stack, masks, sparse, _ = make_scene(128, 128, frames=5)
    sal = fn(stack if multi else stack[-1])
    on, off = energy_split(sal, sparse, masks[-1])
    assert 0.9 <= on <= 1.1 and off < 0.05, (name, on, off)


# ----------------------------------------------------------------------------- independent checks


def _rpca_reference(D, lam, mu=None, iters=3000):
    """Dense reference RPCA: ADMM with a *fixed* penalty and exact LAPACK SVDs (Boyd et al. 2011,
    §6.4 / Candès et al. 2011 Alg. 1) — a different algorithm for the same convex problem."""
    mu = mu or D.size / (4.0 * np.abs(D).sum())
    B = np.zeros_like(D)
    T = np.zeros_like(D)
    Y = np.zeros_like(D)
    for _ in range(iters):
        u, s, vt = np.linalg.svd(D - T + Y / mu, full_matrices=False)
        B = (u * np.maximum(s - 1 / mu, 0)) @ vt
        R = D - B + Y / mu
        T = np.sign(R) * np.maximum(np.abs(R) - lam / mu, 0)
        Y += mu * (D - B - T)
    return B, T


def test_ipi_ialm_matches_dense_reference_rpca():
    rng = np.random.default_rng(0)
    low = rng.normal(size=(40, 3)) @ rng.normal(size=(3, 30))
    sp = np.zeros((40, 30))
    idx = rng.choice(sp.size, 30, replace=False)
    sp.flat[idx] = rng.normal(0, 10, 30)
    D = low + sp
    lam = 1 / np.sqrt(40)
    B1, T1, info = lr.rpca_ialm(D, lam, tol=1e-10, max_iter=1000)
    B2, T2 = _rpca_reference(D, lam)
    # Agreement (measured 1.2e-11 for T, 2.1e-11 for B, relative Frobenius); asserted < 1e-8,
    # and both recover the truth.
    assert np.linalg.norm(T1 - T2) / np.linalg.norm(T2) < 1e-8
    assert np.linalg.norm(B1 - B2) / np.linalg.norm(B2) < 1e-8
    assert np.linalg.norm(T1 - sp) / np.linalg.norm(sp) < 1e-6
    assert info["iterations"] < 1000 and info["residual"] < 1e-10


def test_ipi_gram_svd_equals_lapack_svd(scene1):
    stack, *_ = scene1
    a = lr.ipi(stack[-1], patch_size=16, step=8, svd="gram")
    b = lr.ipi(stack[-1], patch_size=16, step=8, svd="exact")
    assert np.abs(a - b).max() <= 1e-8 * max(np.abs(b).max(), 1)  # measured 4e-10 relative


def _explicit_tsvd_prox(X, fn):
    """t-SVD map by the definition: full complex FFT along the slices, one SVD per slice (loop)."""
    Xf = np.fft.fft(X, axis=0)
    out = np.empty_like(Xf)
    for k in range(X.shape[0]):
        u, s, vh = np.linalg.svd(Xf[k], full_matrices=False)
        out[k] = (u * fn(s)) @ vh
    res = np.fft.ifft(out, axis=0)
    assert np.abs(res.imag).max() < 1e-9
    return res.real


@pytest.mark.parametrize("n3", [5, 6])
def test_pstnn_tsvd_matches_explicit_per_slice_svd(n3):
    rng = np.random.default_rng(n3)
    X = rng.normal(size=(n3, 7, 9))
    N, tau = 2, 0.8

    def partial(s):
        o = np.maximum(s - tau, 0)
        o[:N] = s[:N]
        return o

    ref = _explicit_tsvd_prox(X, partial)
    assert np.abs(lr.prox_pstnn(X, N, tau) - ref).max() < 1e-12  # agreement: 1e-12 absolute
    ref_tnn = _explicit_tsvd_prox(X, lambda s: np.maximum(s - tau, 0))
    assert np.abs(prox_tnn(X, tau) - ref_tnn).max() < 1e-12


def test_tsvd_along_other_modes_matches_permuted_tensor():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(4, 5, 6))
    f = lambda s, n3: np.maximum(s - 0.5, 0)  # noqa: E731
    for axis in (1, 2):
        a = tsvd_shrink(X, f, axis=axis)[0]
        b = np.moveaxis(tsvd_shrink(np.moveaxis(X, axis, 0), f)[0], 0, axis)
        assert np.abs(a - b).max() < 1e-12


def test_stt_batched_admm_equals_one_tensor_at_a_time():
    rng = np.random.default_rng(1)
    X = rng.normal(size=(3, 6, 8, 8)) + 5
    X[:, :, 2, 3] += 20
    _, Tb, _ = lr.trpca_tnn_batched(X, 0.1, tol=1e-6, max_iter=200)
    for i in range(3):
        _, Ti, _ = lr.trpca_tnn_batched(X[i : i + 1], 0.1, tol=1e-6, max_iter=200)
        assert np.abs(Tb[i] - Ti[0]).max() < 1e-12


def test_gst_matches_brute_force_minimiser():
    ys = np.array([0.1, 0.5, 1.0, 2.0, 5.0, 20.0])
    w, p = 0.7, 0.8
    grid = np.linspace(0, 25, 250001)
    for y, x in zip(ys, gst(ys, w, p, iters=50)):
        obj = w * grid**p + 0.5 * (grid - y) ** 2
        assert abs(x - grid[obj.argmin()]) < 2e-4  # agreement: grid step 1e-4
    assert np.allclose(gst(ys, w, 1.0), np.maximum(ys - w, 0))  # p = 1: soft threshold


def test_asttv_difference_operators_are_circular_differences():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(3, 5, 6))
    Fx, Fy, Ft = lr._diff_otfs(X.shape)
    Xh = np.fft.fftn(X)
    for F, axis in ((Fx, 2), (Fy, 1), (Ft, 0)):
        d = np.real(np.fft.ifftn(F * Xh))
        assert np.abs(d - (np.roll(X, -1, axis=axis) - X)).max() < 1e-12


def test_local_weighted_entropy_matches_loops():
    rng = np.random.default_rng(4)
    img = rng.integers(0, 50, size=(9, 10)).astype(float)
    got = lr.local_weighted_entropy(img, size=3, bins=4)
    lo, hi = img.min(), img.max()
    q = np.minimum(((img - lo) / (hi - lo) * 4).astype(int), 3)
    cen = lo + (np.arange(4) + 0.5) * (hi - lo) / 4
    pad_q = np.pad(q, 1, mode="symmetric")  # = scipy.ndimage "reflect"
    pad_i = np.pad(img, 1, mode="symmetric")
    for r in range(9):
        for c in range(10):
            wq = pad_q[r : r + 3, c : c + 3].ravel()
            mu = pad_i[r : r + 3, c : c + 3].mean()
            ref = 0.0
            for b in range(4):
                pb = np.mean(wq == b)
                if pb > 0:
                    ref -= (cen[b] - mu) ** 2 * pb * np.log(pb)
            assert got[r, c] == pytest.approx(ref, rel=1e-9, abs=1e-9)


def test_patch_fold_roundtrip_and_coverage():
    img = np.arange(23 * 31, dtype=float).reshape(23, 31)
    p, rows, cols = extract_patches(img, 8, 5)
    assert rows[-1] == 23 - 8 and cols[-1] == 31 - 8  # border-flush last window
    assert np.array_equal(fold_patches(p, img.shape, rows, cols), img)
    assert np.shares_memory(np.lib.stride_tricks.sliding_window_view(img, (8, 8)), img)


@pytest.mark.parametrize("shape", [(5, 7, 9), (6, 9, 7), (4, 8, 8)])
def test_tsvd_gram_method_equals_lapack_svd(shape):
    rng = np.random.default_rng(sum(shape))
    X = rng.normal(size=shape)
    f = lambda s, n3: np.maximum(s - 0.7, 0)  # noqa: E731
    a, sa = tsvd_shrink(X, f, method="gram")
    b, sb = tsvd_shrink(X, f, method="svd")
    assert np.abs(a - b).max() < 1e-11 and np.abs(sa - sb).max() < 1e-11  # agreement: 1e-11
