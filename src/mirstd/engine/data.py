"""Training data: seeded, shardable, resumable batch order, and the bridge to ``mirstd.data``.

The order of epoch ``e`` is ``randperm(N)`` drawn from a generator seeded with ``(seed, e)``; global
batch ``k`` is ``perm[k·B:(k+1)·B]`` and DDP rank ``r`` of ``W`` takes the ``r``-th slice of ``B/W``
samples. So a run on W processes sees the same global batches as one process, and a resumed run
skips the batches already consumed in its epoch without drawing them.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from mirstd.data.clips import ClipDataset, collate_clips
from mirstd.data.readers import load_dataset
from mirstd.data.sequence import SequenceDataset


def epoch_permutation(n: int, seed: int, epoch: int) -> list[int]:
    g = torch.Generator().manual_seed(int(seed) * 100_003 + int(epoch))
    return torch.randperm(n, generator=g).tolist()


class SeededBatchSampler:
    """Batches of ``(epoch, index)`` pairs for one rank; ``set_epoch(e, skip=k)`` drops the first k batches."""

    def __init__(self, n: int, global_batch: int, seed: int, rank: int = 0, world: int = 1) -> None:
        if global_batch % world:
            raise ValueError(f"batch={global_batch} is not divisible by the {world} DDP processes")
        if n < global_batch:
            raise ValueError(f"the training split has {n} samples, fewer than batch={global_batch}")
        self.n, self.batch, self.seed, self.rank, self.world = n, global_batch, seed, rank, world
        self.epoch, self.skip = 0, 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.epoch, self.skip = int(epoch), int(skip)

    def __len__(self) -> int:
        return self.n // self.batch - self.skip  # drop_last keeps every global batch full

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        perm = epoch_permutation(self.n, self.seed, self.epoch)
        local = self.batch // self.world
        for k in range(self.skip, self.n // self.batch):
            start = k * self.batch + self.rank * local
            yield [(self.epoch, i) for i in perm[start : start + local]]


class SeededSamples(Dataset):
    """Runs ``dataset[i]`` with torch/numpy/python RNGs seeded from ``(seed, epoch, i)``.

    Random augmentations then depend only on the sample, not on worker count or on where a run was
    resumed; the caller's RNG states are restored afterwards so training randomness is untouched.
    """

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed = dataset, int(seed)

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, i = key
        s = (self.seed * 1_000_003 + epoch * 10_007 + int(i)) % (2**31)
        states = torch.get_rng_state(), np.random.get_state(), random.getstate()
        torch.manual_seed(s), np.random.seed(s), random.seed(s)
        if hasattr(self.dataset, "set_epoch"):  # ClipDataset seeds its own augmentation per (seed, epoch, i)
            self.dataset.set_epoch(epoch)
        try:
            return self.dataset[i]
        finally:
            torch.set_rng_state(states[0]), np.random.set_state(states[1]), random.setstate(states[2])


default_collate_clips = collate_clips  # the contract's collate (name used by engine.trainer)


def load_sequences(data: Any, split: str) -> tuple[list[Any], Any]:
    """``(sequences of split, dataset)`` from a path / ``synth:<preset>`` / ``SequenceDataset``."""
    ds = (
        data
        if isinstance(data, SequenceDataset)
        else load_dataset(data if isinstance(data, (list, tuple)) else str(data))
    )
    return ds.split(split), ds


def clip_dataset(
    sequences: list[Any], cfg: dict[str, Any], channels: int, train: bool, pad_to: int | None = None
) -> Dataset:
    """``mirstd.data.clips.ClipDataset`` for training (random crops of ``imgsz``) or evaluation (full
    frames, zero-padded to a multiple of ``pad_to``, the model's ``size_divisor``)."""
    crop = cfg.get("imgsz") if train else None
    if isinstance(crop, (list, tuple)):
        crop = int(crop[0])
    ds = ClipDataset(
        sequences,
        num_frames=int(cfg["frames"]),
        pad=str(cfg["pad"]),
        channels=channels,
        crop=int(crop) if crop else None,
        train=train,
        flip=bool(cfg.get("flip", True)),
        rotate_deg=float(cfg.get("rotate_deg") or 0.0),
        mask_from=cfg.get("mask_from"),
        mask_radius=int(cfg.get("mask_radius") or 0),
        point_mask=str(cfg.get("point_mask") or "square"),
        point_box=cfg.get("point_box"),
        seed=int(cfg.get("seed") or 0),
        target_crop_prob=float(cfg.get("target_crop_prob", 0.8)),
        intensity_jitter=float(cfg.get("intensity_jitter") or 0.0),
        pad_to=None if train or not pad_to or pad_to <= 1 else int(pad_to),
    )
    if train and cfg.get("balance"):
        balance_parts(ds)
    return ds


def balance_parts(ds: ClipDataset) -> None:
    """Give each source of a merged dataset (``data=[a, b, ...]``) the same number of training clips,
    by repeating the key frames of the smaller ones (in order, so the seeded sampler stays in charge)."""
    parts: dict[Any, list[tuple[int, int]]] = {}
    for si, i in ds.index:
        parts.setdefault(ds.sequences[si].meta.get("part", 0), []).append((si, i))
    if len(parts) < 2:
        return
    n = max(len(v) for v in parts.values())
    ds.index = [v[k % len(v)] for _, v in sorted(parts.items()) for k in range(n)]
