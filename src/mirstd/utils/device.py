"""The one device parser: ``device=`` of train, val, predict and profile (``cpu``, ``cuda``,
``cuda:N`` or ``N``, ``mps``; null/``auto``: CUDA when available, else CPU). Errors name the key and
what to do, so the CLI prints one line."""

from __future__ import annotations

import re
from typing import Any

from mirstd.utils.config import ConfigError

_SPEC = re.compile(r"(cpu|cuda|mps)(?::(\d+))?")


def resolve_device(spec: Any = None, local_rank: int = 0, key: str = "device") -> Any:
    """``torch.device`` for ``spec``; ConfigError for a malformed name or a device this machine lacks.
    A bare ``cuda`` under torchrun means ``cuda:<local_rank>``."""
    import torch

    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "auto")):
        spec = "cuda" if torch.cuda.is_available() else "cpu"
    if isinstance(spec, torch.device):
        spec = str(spec)
    text = str(spec).strip().lower()
    if isinstance(spec, int) and not isinstance(spec, bool) or text.isdigit():
        text = f"cuda:{int(text)}"
    m = _SPEC.fullmatch(text)
    if m is None:
        raise ConfigError(
            f"{key}={spec!r} is not a device; use cpu, cuda, cuda:N (or N), mps, or leave it unset"
        )
    kind, idx = m.group(1), (int(m.group(2)) if m.group(2) is not None else None)
    if kind == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"{key}={spec!r}: CUDA is not available on this machine; use {key}=cpu")
        n = torch.cuda.device_count()
        idx = local_rank if idx is None else idx
        if idx >= n:
            raise ConfigError(f"{key}={spec!r}: this machine has {n} CUDA device(s) (cuda:0..cuda:{n - 1})")
        return torch.device("cuda", idx)
    if kind == "mps":
        mps = getattr(torch.backends, "mps", None)
        if mps is None or not mps.is_available():
            raise ConfigError(f"{key}={spec!r}: MPS is not available on this machine; use {key}=cpu")
    if idx not in (None, 0):
        raise ConfigError(f"{key}={spec!r}: {kind} takes no device index; use {key}={kind}")
    return torch.device(kind)
