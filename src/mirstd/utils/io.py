"""Atomic file writes: write to a temporary file in the same folder, fsync, then rename.

A crash mid-write leaves the previous file intact, never a truncated one.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


# The modes open() and mkdir() give (0o666 / 0o777 less the umask); mkstemp / mkdtemp's are 0o600 / 0o700
_UMASK = _umask()
_FILE_MODE, _DIR_MODE = 0o666 & ~_UMASK, 0o777 & ~_UMASK


def atomic_write_bytes(path: str | os.PathLike, data: bytes) -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    prefix = f".{path.name}." if len(path.name.encode()) <= 200 else ".mirstd-"
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=prefix, suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, _FILE_MODE)  # readable as any file the user writes, e.g. by a shared group
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


def to_jsonable(o: Any, strict: bool = False) -> Any:
    """The one JSON sanitiser: NumPy/torch scalars and arrays to Python, paths to str, non-finite
    floats to None, dict keys to str. Anything else unknown becomes its ``str``, or raises TypeError
    with ``strict=True`` (files that must round-trip, such as native annotations)."""
    import math

    import numpy as np

    if isinstance(o, dict):
        return {str(k): to_jsonable(v, strict) for k, v in o.items()}
    if isinstance(o, (list, tuple)):
        return [to_jsonable(v, strict) for v in o]
    if hasattr(o, "detach") and hasattr(o, "tolist"):  # torch tensor, without importing torch
        return to_jsonable(o.detach().cpu().tolist(), strict)
    if isinstance(o, np.ndarray):
        return to_jsonable(o.tolist(), strict)
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
    if strict:
        raise TypeError(f"cannot store {type(o).__name__} in a JSON file")
    return str(o)


def write_json(path: str | os.PathLike, doc: Any, indent: int | None = 1) -> Path:
    """``to_jsonable(doc)`` written atomically as JSON."""
    import json

    return atomic_write_text(path, json.dumps(to_jsonable(doc), indent=indent))


def increment_dir(parent: Path, name: str | None, exist_ok: bool = False, base: str = "exp") -> Path:
    """Claim a run folder atomically (exclusive ``os.mkdir``) and return it: ``parent/name`` if given
    (refused when it exists, unless ``exist_ok``), else the first free ``exp, exp2, ...`` — two
    processes never get the same folder."""
    parent = Path(parent)
    parent.mkdir(parents=True, exist_ok=True)
    if name:
        d = parent / str(name)
        check_component(str(name), "name")
        try:
            os.mkdir(d)
        except FileExistsError:
            if not exist_ok:
                raise FileExistsError(
                    f"run folder {d} exists; pick another name=, or exist_ok=true, or resume=true"
                ) from None
            if not d.is_dir():
                raise FileExistsError(
                    f"run folder {d} exists and is not a folder; pick another name="
                ) from None
        return d
    k = 1
    while True:
        d = parent / (base if k == 1 else f"{base}{k}")
        try:
            os.mkdir(d)
            return d
        except FileExistsError:
            k += 1


# ------------------------------------------------------------------------------ output folders
class OutputExistsError(FileExistsError):
    """A writing command's target folder is taken; the message names it and the key to change."""


def check_component(name: str, what: str = "name") -> str:
    """A name used as one path component (a sequence, a frame, a run): no separators, no ``..``."""
    s = str(name)
    if not s or s in (".", "..") or "/" in s or "\\" in s or "\0" in s or os.path.isabs(s):
        raise ValueError(f"{what} {s!r} is not a plain name (no '/', '..' or absolute paths)")
    return s


def inside(root: str | os.PathLike, path: str | os.PathLike) -> Path:
    """``path`` resolved; ValueError naming both when it is not inside ``root`` (no ``..`` escapes)."""
    r, p = Path(root).resolve(), Path(path).resolve()
    if p != r and r not in p.parents:
        raise ValueError(f"{path} lies outside {root}; a name taken from a dataset file must stay inside it")
    return p


def nonempty(path: Path) -> bool:
    return path.is_dir() and any(path.iterdir())


def check_out_dir(
    out: str | os.PathLike, exist_ok: bool = False, key: str = "out", marker: tuple[str, ...] = ()
) -> Path:
    """Refuse ``out`` when it is a file, or a non-empty folder without ``exist_ok``; with ``exist_ok``
    and ``marker`` (files an earlier output of the same command holds) refuse a folder that is not
    such an output, so ``exist_ok=true`` never replaces a user's own folder."""
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise OutputExistsError(f"{key}={out} is a file; give a folder path")
    if nonempty(out):
        if not exist_ok:
            raise OutputExistsError(
                f"{key}={out} exists and is not empty; pick another {key}= or pass exist_ok=true to replace it"
            )
        if marker and not any((out / m).exists() for m in marker):
            raise OutputExistsError(
                f"{key}={out} is not an earlier mirstd output (no {' or '.join(marker)}); "
                f"exist_ok=true only replaces those: pick another {key}="
            )
    return out


@contextmanager
def staged_dir(
    out: str | os.PathLike, exist_ok: bool = False, key: str = "out", marker: tuple[str, ...] = ()
) -> Iterator[Path]:
    """Write a folder output into a temporary sibling and rename it to ``out`` when the block ends
    without error (a killed run leaves only ``.<name>.*.partial``, never a half output under ``out``).
    An existing ``out`` (refused unless ``exist_ok``, see :func:`check_out_dir`) is replaced whole."""
    out = check_out_dir(out, exist_ok, key, marker)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name[:100]}.", suffix=".partial"))
    os.chmod(tmp, _DIR_MODE)  # mkdtemp's own is 0o700; the output is an ordinary folder
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out)


def replace_dir(src: Path, dst: Path) -> None:
    """Move folder ``src`` to ``dst``: a rename when ``dst`` is absent or empty, else swap (``dst``
    renamed aside, ``src`` renamed in, the old one deleted)."""
    try:
        os.rename(src, dst)  # POSIX: atomic, and allowed over an empty folder
        return
    except OSError:
        if not nonempty(dst):
            raise
    old = Path(tempfile.mkdtemp(dir=dst.parent, prefix=f".{dst.name[:100]}.", suffix=".old"))
    os.rename(dst, old / "x")
    os.rename(src, dst)
    shutil.rmtree(old, ignore_errors=True)
