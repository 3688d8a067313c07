"""Reading frames and masks of any common layout into single-channel arrays.

Frames come back as float32 (H, W) in the file's raw units plus the source bit depth, whatever the
file holds: 8/16-bit PNG, BMP, TIFF, 3-channel grey, RGBA, palette. Colour images are converted to
grey with ITU-R BT.601 luma weights (exact for R = G = B, the usual case for infrared).
"""

from __future__ import annotations

import os
from pathlib import Path

import cv2
import numpy as np

from mirstd.utils.io import atomic_write_bytes

IMAGE_SUFFIXES = (".png", ".bmp", ".tif", ".tiff", ".jpg", ".jpeg", ".pgm")


class ImageReadError(ValueError):
    """An image file could not be read; the message names the file."""


class BitDepthError(ImageReadError):
    """A frame whose bit depth differs from its sequence's (it would be scaled wrongly)."""


def container_depth(bit_depth: int) -> int:
    """The file depth a sequence of ``bit_depth`` is stored in (8 or 16; 0 for float sources)."""
    return 0 if bit_depth <= 0 else 8 if bit_depth <= 8 else 16 if bit_depth <= 16 else bit_depth


def _read_raw(path: str | os.PathLike) -> np.ndarray:
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such image file")
    # IMREAD_UNCHANGED keeps 16-bit depth and alpha; palette PNGs are expanded by OpenCV.
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    if arr is None:
        # OpenCV cannot read some palette / exotic files; fall back to matplotlib's PIL-free reader.
        try:
            import matplotlib.image as mpimg

            arr = mpimg.imread(str(path))
            if arr.dtype.kind == "f":
                arr = np.round(arr * 255).astype(np.uint8)
        except Exception as e:  # noqa: BLE001 - any decoder failure is a read error for the user
            raise ImageReadError(f"{path}: cannot decode image ({e})") from e
    return arr


def to_gray(arr: np.ndarray, path: str | os.PathLike = "<array>") -> np.ndarray:
    """Collapse (H, W), (H, W, 1), (H, W, 3) BGR or (H, W, 4) BGRA to (H, W), dtype preserved."""
    if arr.ndim == 2:
        return arr
    if arr.ndim == 3 and arr.shape[2] == 1:
        return arr[:, :, 0]
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        bgr = arr[:, :, :3]
        if np.array_equal(bgr[:, :, 0], bgr[:, :, 1]) and np.array_equal(bgr[:, :, 1], bgr[:, :, 2]):
            return bgr[:, :, 0]
        w = np.array([0.114, 0.587, 0.299])  # B, G, R (OpenCV order)
        g = bgr.astype(np.float64) @ w
        return np.round(g).astype(arr.dtype) if arr.dtype.kind in "ui" else g.astype(arr.dtype)
    raise ImageReadError(f"{path}: unsupported image shape {arr.shape}")


def bit_depth_of(arr: np.ndarray) -> int:
    if arr.dtype == np.uint8 or arr.dtype == bool:
        return 8
    if arr.dtype == np.uint16:
        return 16
    if arr.dtype.kind == "f":
        return 0  # already float; 0 means "values are used as they are"
    return 8 * arr.dtype.itemsize


def read_frame(path: str | os.PathLike) -> tuple[np.ndarray, int]:
    """Frame as ``(float32 (H, W) in raw units, source bit depth)``."""
    arr = to_gray(_read_raw(path), path)
    return arr.astype(np.float32), bit_depth_of(arr)


def read_mask(path: str | os.PathLike) -> np.ndarray:
    """Mask as uint8 (H, W). Values are kept (instance ids survive); 255 binary masks stay 255.

    Use ``binarize`` for a 0/1 semantic mask.
    """
    arr = to_gray(_read_raw(path), path)
    if arr.dtype != np.uint8:
        arr = np.clip(arr, 0, 255).astype(np.uint8)
    return arr


def binarize(mask: np.ndarray, threshold: int = 127) -> np.ndarray:
    """0/1 uint8 mask; 0/255 and 0/1 inputs both map correctly (any value > threshold, or == 1)."""
    m = np.asarray(mask)
    if m.max(initial=0) <= 1:
        return (m > 0).astype(np.uint8)
    return (m > threshold).astype(np.uint8)


def write_png(path: str | os.PathLike, arr: np.ndarray) -> None:
    """Write a uint8 or uint16 single-channel PNG atomically, with fixed compression (reproducible bytes)."""
    arr = np.asarray(arr)
    if arr.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"{path}: PNG frames must be uint8 or uint16, got {arr.dtype}")
    ok, buf = cv2.imencode(".png", arr, [cv2.IMWRITE_PNG_COMPRESSION, 3])
    if not ok:
        raise ImageReadError(f"{path}: PNG encoding failed")
    atomic_write_bytes(path, buf.tobytes())
