"""Classical (non-learned) small-target detectors as pure NumPy functions.

They are also registered as models (``mirstd.models.create("tophat")``) through the same clip
interface as the networks, so evaluation and prediction treat them alike.
"""

from mirstd.classical.filters import (
    MULTI_FRAME,
    SINGLE_FRAME,
    adaptive_threshold,
    lcm,
    max_median,
    mpcm,
    saliency_to_probability,
    stlcf,
    top_hat,
)

__all__ = [
    "MULTI_FRAME",
    "SINGLE_FRAME",
    "adaptive_threshold",
    "lcm",
    "max_median",
    "mpcm",
    "saliency_to_probability",
    "stlcf",
    "top_hat",
]
