"""Evaluation: every metric convention of infrared small target detection, named (``docs/metrics.md``).

- :class:`Evaluator` - per-frame accumulation of the default suite or named protocols.
- :mod:`mirstd.metrics.seg` - IoU/nIoU, Pd/Fa (centroid, shooting rules), pixel ROC, Pd-Fa curves.
- :mod:`mirstd.metrics.points` - point-level Pd / false alarms.
- :mod:`mirstd.metrics.det` - COCO AP (faster-coco-eval), lab P/R/F1, UESTC result files.
- :mod:`mirstd.metrics.convert` - score maps <-> boxes <-> points <-> masks.
- :mod:`mirstd.utils.scr` - SCR / mSCR.
- :mod:`mirstd.metrics.efficiency` - params, FLOPs, latency, GEMM rate.
"""

from mirstd.metrics.evaluator import Evaluator, fa_scaled, parse_protocol, scr_group, valid_protocols

__all__ = ["Evaluator", "fa_scaled", "parse_protocol", "scr_group", "valid_protocols"]
