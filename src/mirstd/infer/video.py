"""Overlay video output for ``mirstd predict save_video=true``: one ``overlay.mp4`` per sequence.

Frames are encoded as they come (PyAV, ``pip install 'mirstd[video]'``), so memory does not grow
with the video length. Each frame shows the targets (rectangles for box models, circles around
score-map components, as the PNG overlays), each target's score, and the frame index.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["OverlayVideo", "annotate"]


def annotate(frame: np.ndarray, targets: np.ndarray, boxes: bool, label: str) -> np.ndarray:
    """BGR uint8 overlay (see :func:`mirstd.infer.predictor.overlay`) plus scores and ``label``."""
    import cv2

    from mirstd.infer.predictor import overlay

    img = overlay(frame, targets, boxes)
    font = cv2.FONT_HERSHEY_SIMPLEX
    for _x, _y, x1, y1, _x2, _y2, score, *_ in targets:
        org = (int(max(x1, 0)), int(max(y1 - 3, 8)))
        cv2.putText(img, f"{score:.2f}", org, font, 0.3, (0, 255, 255), 1, cv2.LINE_AA)
    cv2.putText(img, label, (2, 10), font, 0.35, (255, 255, 0), 1, cv2.LINE_AA)
    return img


class OverlayVideo:
    """Streaming H.264 (yuv420p) MP4 writer; odd frame sizes are padded by one pixel."""

    def __init__(self, path: str | Path, fps: float = 25.0) -> None:
        try:
            import av
        except ImportError as e:
            raise ValueError(
                "save_video=true needs the optional 'av' package: pip install 'mirstd[video]'"
            ) from e
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._av = av
        self._container: Any = av.open(str(self.path), mode="w")
        self._fps = fps
        self._stream: Any = None
        self.frames = 0

    def write(self, bgr: np.ndarray) -> None:
        h, w = bgr.shape[:2]
        if self._stream is None:
            from fractions import Fraction

            codec = "libx264" if "libx264" in self._av.codecs_available else "mpeg4"
            self._stream = self._container.add_stream(codec, rate=Fraction(self._fps).limit_denominator(1000))
            self._stream.width, self._stream.height = w + w % 2, h + h % 2
            self._stream.pix_fmt = "yuv420p"
        if (h % 2) or (w % 2):
            bgr = np.pad(bgr, ((0, h % 2), (0, w % 2), (0, 0)))
        fr = self._av.VideoFrame.from_ndarray(np.ascontiguousarray(bgr), format="bgr24")
        for packet in self._stream.encode(fr):
            self._container.mux(packet)
        self.frames += 1

    def close(self) -> None:
        if self._container is None:
            return
        if self._stream is not None:
            for packet in self._stream.encode():
                self._container.mux(packet)
        self._container.close()
        self._container = None
