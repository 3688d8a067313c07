"""Classical (non-learned) small-target detectors as pure NumPy functions.

They are also registered as models (``mirstd.models.create("tophat")``) through the same clip
interface as the networks, so evaluation and prediction treat them alike. Single frame: Top-Hat,
Max-Median, LCM, MPCM, WSLCM (``local``), IPI, PSTNN, RIPT (``lowrank``); multi-frame: STLCF, STT,
ASTTV-NTLA, WSNM-STIPT, IMNN-LWEC, and mirstd's own motion-compensated temporal difference MCTD
(``temporal``). Score maps become probabilities by the ``mean_k_std`` rule
(:func:`saliency_to_probability`), MCTD's by its own logistic (``mctd_probability``). See
``docs/classical.md``.
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
from mirstd.classical.temporal import global_shift, mctd, register_to

__all__ = [
    "MULTI_FRAME",
    "SINGLE_FRAME",
    "THRESHOLD_RULE",
    "adaptive_threshold",
    "asttv_ntla",
    "imnn_lwec",
    "ipi",
    "global_shift",
    "lcm",
    "max_median",
    "mctd",
    "mpcm",
    "pstnn",
    "register_to",
    "ript",
    "rpca_ialm",
    "saliency_to_probability",
    "stlcf",
    "stt",
    "top_hat",
    "wslcm",
    "wsnm_stipt",
]
