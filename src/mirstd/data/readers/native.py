"""The native layout (``dataset.yaml`` with ``format: mirstd-native``); see mirstd.data.native."""

from __future__ import annotations

from pathlib import Path

from mirstd.data.findings import Collector
from mirstd.data.native import is_native, read_native
from mirstd.data.sequence import SequenceDataset

NAME = "native"


def detect(path: Path) -> bool:
    return path.is_dir() and is_native(path)


def read(path: Path, col: Collector) -> SequenceDataset:
    return read_native(path, col)
