"""Image size and bit depth from file headers, without decoding pixels (keeps loading lazy and fast)."""

from __future__ import annotations

import struct
from pathlib import Path

from mirstd.data.image import ImageReadError, read_frame


def probe_image(path: str | Path) -> tuple[int, int, int]:
    """``(H, W, bit_depth per channel)`` of a PNG or BMP from its header; other files are decoded."""
    path = Path(path)
    try:
        with open(path, "rb") as f:
            head = f.read(32)
    except OSError as e:
        raise FileNotFoundError(f"{path}: cannot open image ({e.strerror})") from e
    if head[:8] == b"\x89PNG\r\n\x1a\n" and len(head) >= 26:
        w, h = struct.unpack(">II", head[16:24])
        depth = head[24]
        return int(h), int(w), 16 if depth == 16 else 8
    if head[:2] == b"BM" and len(head) >= 30:
        w, h = struct.unpack("<ii", head[18:26])
        return abs(int(h)), int(w), 8
    arr, bd = read_frame(path)
    return arr.shape[0], arr.shape[1], bd


def probe_ok(path: str | Path) -> tuple[int, int, int] | None:
    try:
        return probe_image(path)
    except (FileNotFoundError, ImageReadError, ValueError):
        return None
