"""Sequence data model, dataset readers and writers, clip sampling and transforms (docs/data.md)."""

from mirstd.data.findings import DataError, Finding
from mirstd.data.readers import detect_format, load_dataset, reader_names
from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset

__all__ = [
    "DataError",
    "Finding",
    "FrameLabels",
    "Sequence",
    "SequenceDataset",
    "detect_format",
    "load_dataset",
    "reader_names",
]


def __getattr__(name: str):
    # ClipDataset pulls in torch: import it on first use only.
    if name in ("ClipDataset", "collate_clips"):
        from mirstd.data import clips  # lazy: clips imports torch; mirstd.data stays torch-free

        return getattr(clips, name)
    raise AttributeError(name)
