"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A crash mid-write leaves the previous file intact, never a truncated one.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise
    return path


def atomic_write_text(path: str | os.PathLike, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def atomic_save_torch(obj: Any, path: str | os.PathLike) -> Path:
    """torch.save through a temporary file and rename (checkpoints survive a crash mid-save)."""
    import io

    import torch

    buf = io.BytesIO()
    torch.save(obj, buf)
    return atomic_write_bytes(path, buf.getvalue())


def to_jsonable(o: Any) -> Any:
    """The one JSON sanitiser: NumPy/torch scalars and arrays to Python, paths to str, non-finite
    floats to None, dict keys to str. Anything else unknown becomes its ``str``."""
    import math

    import numpy as np

    if isinstance(o, dict):
        return {str(k): to_jsonable(v) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v) for v in o]
    if hasattr(o, "detach") and hasattr(o, "tolist"):  # torch tensor, without importing torch
        return to_jsonable(o.detach().cpu().tolist())
    if isinstance(o, np.ndarray):
        return to_jsonable(o.tolist())
    if isinstance(o, (bool, np.bool_)):
        return bool(o)
    if isinstance(o, (int, np.integer)):
        return int(o)
    if isinstance(o, (float, np.floating)):
        f = float(o)
        return f if math.isfinite(f) else None
    if o is None or isinstance(o, str):
        return o
    if isinstance(o, os.PathLike):
        return os.fspath(o)
    return str(o)


def write_json(path: str | os.PathLike, doc: Any, indent: int | None = 1) -> Path:
    """``to_jsonable(doc)`` written atomically as JSON."""
    import json

    return atomic_write_text(path, json.dumps(to_jsonable(doc), indent=indent))


def increment_dir(parent: Path, name: str | None, exist_ok: bool = False, base: str = "exp") -> Path:
    """``parent/name`` if given (error if it exists and is not empty, unless ``exist_ok``), else the
    first free ``exp, exp2, ...``."""
    parent = Path(parent)
    if name:
        d = parent / str(name)
        if d.exists() and not exist_ok and any(d.iterdir()):
            raise FileExistsError(
                f"run folder {d} exists; pick another name=, or exist_ok=true, or resume=true"
            )
        return d
    taken = {p.name for p in parent.iterdir()} if parent.is_dir() else set()
    k = 1
    while (base if k == 1 else f"{base}{k}") in taken:
        k += 1
    return parent / (base if k == 1 else f"{base}{k}")
