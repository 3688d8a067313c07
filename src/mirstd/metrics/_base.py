"""Per-frame inputs with cached derived arrays, and the accumulator protocol every metric follows.

A metric is stateless configuration plus three pure steps:
``frame(fd) -> stats`` (per-frame sufficient statistics), ``add(state, stats)`` (in-place sum), and
``compute(state) -> dict`` (finalise). States are dicts of NumPy arrays / floats (summed) or lists
(concatenated), so states of several sequences merge by ``add`` and a 40,000-frame test set is kept as
a handful of counters, never as frames.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from mirstd.utils.components import component_max, component_stats, label8


class FrameData:
    """One frame's predictions and ground truth; binarisations and labelings are computed once."""

    def __init__(
        self,
        scores: np.ndarray | None = None,
        boxes: np.ndarray | None = None,
        gt_mask: np.ndarray | None = None,
        gt_boxes: np.ndarray | None = None,
        gt_points: np.ndarray | None = None,
        shape: tuple[int, int] | None = None,
    ) -> None:
        self.scores = scores
        self.boxes = boxes
        self.gt_mask = gt_mask
        self.gt_boxes = gt_boxes
        self.gt_points = gt_points
        if shape is None:
            for a in (scores, gt_mask):
                if a is not None:
                    shape = tuple(a.shape)
                    break
        self.shape = shape
        self.image: np.ndarray | None = None  # the input key frame (classical_figures only)
        self._cache: dict[Any, Any] = {}

    @property
    def num_pixels(self) -> int:
        if self.shape is None:
            raise ValueError("frame size unknown: pass scores, gt_mask or shape")
        return int(self.shape[0] * self.shape[1])

    def pred_bin(self, thr: float, strict: bool = True) -> np.ndarray:
        key = ("bin", thr, strict)
        if key not in self._cache:
            self._cache[key] = (self.scores > thr) if strict else (self.scores >= thr)
        return self._cache[key]

    def pred_components(
        self, thr: float, strict: bool = True
    ) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """(labels, n, areas, centroids) of the binarised score map."""
        key = ("pc", thr, strict)
        if key not in self._cache:
            lab, n = label8(self.pred_bin(thr, strict))
            self._cache[key] = (lab, n, *component_stats(lab, n))
        return self._cache[key]

    def pred_component_scores(self, thr: float, strict: bool = True) -> np.ndarray:
        key = ("pcs", thr, strict)
        if key not in self._cache:
            lab, n, _, _ = self.pred_components(thr, strict)
            self._cache[key] = component_max(self.scores, lab, n)
        return self._cache[key]

    @property
    def gt_bin(self) -> np.ndarray:
        if "gtb" not in self._cache:
            self._cache["gtb"] = self.gt_mask > 0
        return self._cache["gtb"]

    def gt_components(self) -> tuple[np.ndarray, int, np.ndarray, np.ndarray]:
        """(labels, n, areas, centroids) of the 8-connected components of the GT mask."""
        if "gtc" not in self._cache:
            lab, n = label8(self.gt_bin)
            self._cache["gtc"] = (lab, n, *component_stats(lab, n))
        return self._cache["gtc"]

    def gt_centres_xy(self) -> np.ndarray:
        """GT target centres (x, y): points, else GT box centres, else mask component centroids."""
        if self.gt_points is not None:
            return np.asarray(self.gt_points, np.float64).reshape(-1, 2)
        if self.gt_boxes is not None:
            b = np.asarray(self.gt_boxes, np.float64).reshape(-1, 4)
            return np.stack([(b[:, 0] + b[:, 2]) / 2 - 0.5, (b[:, 1] + b[:, 3]) / 2 - 0.5], axis=1)
        if self.gt_mask is not None:
            return self.gt_components()[3][:, ::-1].copy()
        return np.zeros((0, 2))


def add_state(state: dict[str, Any], stats: dict[str, Any]) -> None:
    """Sum arrays/numbers, concatenate lists."""
    for k, v in stats.items():
        if isinstance(v, list):
            state.setdefault(k, []).extend(v)
        elif k in state:
            state[k] = state[k] + v
        else:
            state[k] = np.array(v, dtype=np.float64) if np.ndim(v) else float(v)


class Metric:
    """Base class: subclasses set ``protocol`` and implement ``frame``/``compute``."""

    protocol = "metric"
    needs: tuple[str, ...] = ()  # FrameData attributes that must be present

    def tag(self) -> str:
        return self.protocol

    def frame(self, fd: FrameData) -> dict[str, Any]:  # pragma: no cover - interface
        raise NotImplementedError

    def compute(self, state: dict[str, Any]) -> dict[str, float]:  # pragma: no cover - interface
        raise NotImplementedError

    def curves(self, state: dict[str, Any]) -> dict[str, dict[str, np.ndarray]]:
        return {}

    def describe(self) -> str:
        return self.protocol

    # Stand-alone use without an Evaluator: m.update(scores=..., gt_mask=...); m.result()
    def update(self, **inputs: Any) -> None:
        st = self.__dict__.setdefault("_state", {})
        add_state(st, self.frame(FrameData(**inputs)))

    def result(self) -> dict[str, float]:
        return self.compute(self.__dict__.get("_state", {}))


def safe_div(a: float, b: float) -> float:
    return float(a) / float(b) if b else float("nan")
