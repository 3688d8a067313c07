"""Single-frame and multi-frame classical small-target filters: NumPy in, NumPy out.

Every function maps a float frame ``I`` (H, W) — or a stack (T, H, W) for multi-frame methods — to a
target saliency map ``S >= 0`` of the same size (bright targets). Borders are reflected. See
``docs/classical.md`` and the spec ``classical.md`` for the papers and parameters.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage

_OFFSETS8 = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _as_float(image: np.ndarray) -> np.ndarray:
    a = np.asarray(image, dtype=np.float64)
    if a.ndim != 2:
        raise ValueError(f"expected a single frame (H, W), got shape {a.shape}")
    return a


def top_hat(image: np.ndarray, size: int = 7) -> np.ndarray:
    """White top-hat: ``S = I - (I ⊖ B) ⊕ B`` with a flat square structuring element B of side ``size``.

    The opening removes bright structures smaller than B, so the residual keeps small targets.
    """
    img = _as_float(image)
    return ndimage.white_tophat(img, size=size, mode="reflect")


def max_median(image: np.ndarray, n: int = 15) -> np.ndarray:
    """Max-Median filter (Deshpande et al., SPIE 1999).

    ``B = max(m_h, m_v, m_d1, m_d2)``, the medians of the four n-pixel lines through the centre;
    ``S = max(I - B, 0)``.
    """
    img = _as_float(image)
    eye = np.eye(n, dtype=bool)
    line_h = np.zeros((n, n), bool)
    line_h[n // 2, :] = True
    footprints = (line_h, line_h.T, eye, eye[::-1])
    bg = np.max([ndimage.median_filter(img, footprint=f, mode="reflect") for f in footprints], axis=0)
    return np.maximum(img - bg, 0.0)


def _shift(a: np.ndarray, dy: int, dx: int) -> np.ndarray:
    """Value at (y + dy, x + dx) for every (y, x), with reflected borders."""
    pad = max(abs(dy), abs(dx))
    p = np.pad(a, pad, mode="reflect")
    h, w = a.shape
    return p[pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def lcm(image: np.ndarray, scales: tuple[int, ...] = (3, 5, 7, 9)) -> np.ndarray:
    """Local contrast measure (Chen et al., TGRS 2014).

    ``C_l = L0^2 / max_i m_i`` with L0 the maximum of the central l×l cell and m_i the means of the 8
    surrounding cells; ``S = max_l C_l``.
    """
    img = _as_float(image)
    out = np.zeros_like(img)
    for l in scales:
        l0 = ndimage.maximum_filter(img, size=l, mode="reflect")
        mean = ndimage.uniform_filter(img, size=l, mode="reflect")
        m_max = np.max([_shift(mean, dy * l, dx * l) for dy, dx in _OFFSETS8], axis=0)
        out = np.maximum(out, l0**2 / np.maximum(m_max, 1e-6))
    return out


def mpcm(image: np.ndarray, scales: tuple[int, ...] = (3, 5, 7, 9)) -> np.ndarray:
    """Multiscale patch-based contrast measure (Wei, You, Li, Pattern Recognition 2016), bright targets.

    ``d_i = M(x) - M(x + l·o_i)``; ``PCM_l = min_{i=1..4} max(d_i, 0)·max(d_{i+4}, 0)``; ``S = max_l PCM_l``.
    """
    img = _as_float(image)
    out = np.zeros_like(img)
    for l in scales:
        mean = ndimage.uniform_filter(img, size=l, mode="reflect")
        d = [mean - _shift(mean, dy * l, dx * l) for dy, dx in _OFFSETS8]
        pcm = np.min([np.maximum(d[i], 0) * np.maximum(d[i + 4], 0) for i in range(4)], axis=0)
        out = np.maximum(out, pcm)
    return out


def adaptive_threshold(saliency: np.ndarray, k: float = 5.0) -> float:
    """``T = mu_S + k·sigma_S`` over the frame — the ``mean_k_std`` rule (see
    :func:`saliency_to_probability`)."""
    s = np.asarray(saliency, dtype=np.float64)
    return float(s.mean() + k * s.std())


def saliency_to_probability(saliency: np.ndarray, k: float = 5.0) -> np.ndarray:
    """The ``mean_k_std`` thresholding rule of mirstd for classical score maps, as a probability.

    Rule: a pixel is a target when ``S > T``, ``T = mu_S + k·sigma_S`` (mean and population std of
    the frame's map, ``k = 5`` by default; the spec's range is 3–10). Encoding:
    ``p = S / (S + T)`` (S clipped at 0), so ``p > 0.5`` ⇔ ``S > T`` exactly, ``p`` is monotone in
    ``S`` (a threshold sweep over p — ROC, Pd–Fa curves — ranks pixels exactly as one over S) and
    classical and deep methods are read off at the same 0.5 and the same sweeps. A constant or
    all-zero map gives ``p = 0`` everywhere (T is floored at 1e-12). The PSTFNet paper does not say
    which threshold or k produced its classical rows (spec ``classical.md`` §6).
    """
    s = np.maximum(np.asarray(saliency, dtype=np.float64), 0.0)
    t = max(adaptive_threshold(s, k), 1e-12)
    return (s / (s + t)).astype(np.float32)


THRESHOLD_RULE = "mean_k_std"

from mirstd.classical.local import stlcf, wslcm  # noqa: E402
from mirstd.classical.lowrank import asttv_ntla, imnn_lwec, ipi, pstnn, ript, stt, wsnm_stipt  # noqa: E402
from mirstd.classical.temporal import mctd  # noqa: E402

SINGLE_FRAME = {
    "tophat": top_hat,
    "maxmedian": max_median,
    "lcm": lcm,
    "mpcm": mpcm,
    "wslcm": wslcm,
    "ipi": ipi,
    "pstnn": pstnn,
    "ript": ript,
}
MULTI_FRAME = {
    "stlcf": stlcf,
    "stt": stt,
    "asttv_ntla": asttv_ntla,
    "wsnm_stipt": wsnm_stipt,
    "imnn_lwec": imnn_lwec,
    "mctd": mctd,
}
