"""Sequence data model, dataset readers and writers, clip sampling and transforms."""

from mirstd.data.sequence import FrameLabels, Sequence, SequenceDataset

__all__ = ["FrameLabels", "Sequence", "SequenceDataset"]
