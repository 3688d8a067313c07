"""Local-contrast detectors that need more than box filters: WSLCM (single frame) and the
spatial–temporal local contrast filter STLCF (multi-frame)."""

from __future__ import annotations

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from scipy import ndimage

from mirstd.classical._common import check_frame, check_stack

_OFFSETS8 = ((-1, -1), (-1, 0), (-1, 1), (0, 1), (1, 1), (1, 0), (1, -1), (0, -1))


def _shifted(a: np.ndarray, dy: int, dx: int, pad: int) -> np.ndarray:
    """Views of a reflect-padded array: value at (y + dy, x + dx)."""
    h, w = a.shape[0] - 2 * pad, a.shape[1] - 2 * pad
    return a[pad + dy : pad + dy + h, pad + dx : pad + dx + w]


def _topk_mean(img: np.ndarray, l: int, k: int) -> np.ndarray:
    """Mean of the k largest grey values of the l×l cell centred on every pixel (reflected borders);
    ``np.partition`` on a strided view, no pixel loops."""
    r = l // 2
    win = sliding_window_view(np.pad(img, r, mode="reflect"), (l, l)).reshape(*img.shape, l * l)
    k = min(max(int(k), 1), l * l)
    part = np.partition(win, l * l - k, axis=-1)[..., l * l - k :]
    return part.mean(axis=-1)


def wslcm(
    image: np.ndarray,
    scales: tuple[int, ...] = (3, 5, 7, 9),
    K: tuple[int, ...] | None = None,
    sigma: float = 0.8,
) -> np.ndarray:
    """WSLCM — weighted strengthened local contrast measure (Han, Moradi, Faramarzi, Liu, Zhang,
    Zhao, IEEE GRSL 2021, doi 10.1109/LGRS.2020.3004978).

    Only the outline of the paper is public (the reference MATLAB code is not readable); mirstd's
    reading, with the paper's structure and names:

    1. Gaussian pre-filter ``G = g_σ * I`` (σ = 0.8, suppresses single-pixel noise).
    2. At scale l (cell l×l, l ∈ {3, 5, 7, 9}): ``m_T`` = mean of the K largest grey values of the
       central cell (K = ⌈l²/4⌉ unless given: a target covers part of the cell), ``m_i`` = means of
       the 8 surrounding cells at distance l, ``m_max = max_i m_i``, ``m̄`` = their mean.
    3. Strengthened local contrast (ratio × difference, RLCM-style):
       ``SLCM_l = (m_T / m_max) · max(m_T − m_max, 0)``.
    4. Weighting function from the local intensity distribution: ``W_l = max(m_T − m̄, 0) /
       (σ_B + 1)`` with σ_B the std of the 8 cell means (homogeneous surroundings → large weight,
       edges and clutter → small).
    5. ``WSLCM = max_l SLCM_l · W_l``.
    """
    img = check_frame(image, "wslcm", 1)
    g = ndimage.gaussian_filter(img, sigma, mode="reflect") if sigma > 0 else img
    out = np.zeros_like(g)
    ks = K if K is not None else tuple(int(np.ceil(l * l / 4)) for l in scales)
    if len(ks) != len(scales):
        raise ValueError(f"wslcm: K has {len(ks)} entries for {len(scales)} scales")
    for l, k in zip(scales, ks):
        if l < 1:
            raise ValueError(f"wslcm: scales must be >= 1, got {l}")
        m_t = _topk_mean(g, l, k)
        mean = ndimage.uniform_filter(g, l, mode="reflect")
        mp = np.pad(mean, l, mode="reflect")
        cells = np.stack([_shifted(mp, dy * l, dx * l, l) for dy, dx in _OFFSETS8])
        m_max = cells.max(axis=0)
        m_bar = cells.mean(axis=0)
        s_b = cells.std(axis=0)
        slcm = m_t / np.maximum(m_max, 1e-6) * np.maximum(m_t - m_max, 0.0)
        weight = np.maximum(m_t - m_bar, 0.0) / (s_b + 1.0)
        out = np.maximum(out, slcm * weight)
    return out


def stlcf(frames: np.ndarray, r: int = 2, Nt: int = 4, temporal: str = "difference") -> np.ndarray:
    """STLCF — spatial–temporal local contrast filter (Deng, Zhu, Tao, Wei, Infrared Physics &
    Technology 76, 2016), for the key (last) frame k of the last ``Nt + 1`` frames.

    - spatial local contrast ``SLC(x) = |I_k(x) − mean_{Ω(x)∖x} I_k|`` over the ``(2r+1)²``
      window clipped at the border (centre excluded), normalised by its frame maximum:
      ``I_s = SLC / max SLC``;
    - temporal local contrast (``temporal="difference"``, default): the pixel against its own
      history, ``TLC(x) = max(I_k(x) − (1/N_t) Σ_{i=1..N_t} I_{k−i}(x), 0)``, normalised by the
      frame maximum, ``I_t = TLC / max TLC``; ``temporal="port"`` is the public MATLAB port's term
      (temporal mean over the window normalised by the local temporal maximum of those means),
      which does not suppress static clutter;
    - ``STLCF = I_s · I_t``.

    The paper's window is centred on k; mirstd's clips end at the key frame, so the temporal
    window is causal (the N_t previous frames).
    """
    stack = check_stack(frames, "stlcf", int(Nt) + 1)
    if r < 1 or Nt < 1:
        raise ValueError(f"stlcf: r and Nt must be >= 1, got r={r}, Nt={Nt}")
    cur = stack[-1]
    size = 2 * r + 1
    ones = np.ones_like(cur)
    # window sums clipped at the border: uniform_filter with constant 0 padding, times the count
    win_sum = ndimage.uniform_filter(cur, size, mode="constant", cval=0.0) * size**2
    win_cnt = np.rint(ndimage.uniform_filter(ones, size, mode="constant", cval=0.0) * size**2)
    mean_nb = (win_sum - cur) / np.maximum(win_cnt - 1, 1)
    slc = np.abs(cur - mean_nb)
    i_s = slc / slc.max() if slc.max() > 0 else np.zeros_like(slc)
    if temporal == "difference":
        tlc = np.maximum(cur - stack[:-1].mean(axis=0), 0.0)
        i_t = tlc / tlc.max() if tlc.max() > 0 else np.zeros_like(tlc)
    elif temporal == "port":
        n = stack.shape[0]
        means = np.stack([stack[max(0, j - Nt) : j + 1].mean(axis=0) for j in range(n)])
        i_t = means[-1] / np.maximum(means.max(axis=0), 1e-12)
    else:
        raise ValueError(f"stlcf: unknown temporal term {temporal!r}; valid: difference, port")
    return i_s * i_t


stlcf.num_frames = lambda kw: int(kw["Nt"]) + 1  # type: ignore[attr-defined]
