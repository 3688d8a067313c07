"""Classical (non-learned) small-target detectors as pure NumPy functions.

They are also registered as models (``mirstd.models.create("tophat")``) through the same clip
interface as the networks, so evaluation and prediction treat them alike. Single frame: Top-Hat,
Max-Median, LCM, MPCM, WSLCM (``local``), IPI, PSTNN, RIPT (``lowrank``); multi-frame: STLCF, STT,
ASTTV-NTLA, WSNM-STIPT, IMNN-LWEC. Score maps become probabilities by the ``mean_k_std`` rule
(:func:`saliency_to_probability`). See ``docs/classical.md``.
"""

from mirstd.classical.filters import (
    MULTI_FRAME,
    SINGLE_FRAME,
    THRESHOLD_RULE,
    adaptive_threshold,
    lcm,
    max_median,
    mpcm,
    saliency_to_probability,
    top_hat,
)
from mirstd.classical.local import stlcf, wslcm
from mirstd.classical.lowrank import asttv_ntla, imnn_lwec, ipi, pstnn, ript, rpca_ialm, stt, wsnm_stipt

__all__ = [
    "MULTI_FRAME",
    "SINGLE_FRAME",
    "THRESHOLD_RULE",
    "adaptive_threshold",
    "asttv_ntla",
    "imnn_lwec",
    "ipi",
    "lcm",
    "max_median",
    "mpcm",
    "pstnn",
    "ript",
    "rpca_ialm",
    "saliency_to_probability",
    "stlcf",
    "stt",
    "top_hat",
    "wslcm",
    "wsnm_stipt",
]
