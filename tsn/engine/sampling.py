"""Deterministic data order and augmentation, so that a resumed run and a
run sharded over processes see exactly the samples (and random crops) an
uninterrupted single-process run would.

- :class:`EpochSampler` draws the epoch's permutation from (seed, epoch),
  takes this rank's shard and can start part-way (resuming mid-epoch).
- :class:`SeededDataset` makes each sample's random augmentation a function
  of (seed, epoch, index), independent of workers and of what ran before.
"""

from __future__ import annotations

import random

import numpy as np
import torch
from torch.utils.data import Dataset, Sampler


def _mix(*parts: int) -> int:
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (p + 0x9E3779B9 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
    return h & 0x7FFFFFFF


class EpochSampler(Sampler[int]):
    def __init__(self, n: int, seed: int, shuffle: bool, rank: int = 0, world: int = 1, drop_last: bool = False,
                 batch_size: int = 1) -> None:
        self.n, self.seed, self.shuffle, self.rank, self.world = n, seed, shuffle, rank, world
        self.drop_last, self.batch_size = drop_last, batch_size
        self.epoch, self.start = 0, 0

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        self.epoch, self.start = epoch, start_batch

    def global_order(self) -> list[int]:
        if not self.shuffle:
            return list(range(self.n))
        g = torch.Generator().manual_seed(_mix(self.seed, self.epoch))
        return torch.randperm(self.n, generator=g).tolist()

    def indices(self) -> list[int]:
        order = self.global_order()
        if self.drop_last:
            # Global batch k is order[k*B*W : (k+1)*B*W] and rank r takes its r-th
            # chunk of B, so W processes with batch B see exactly the batches one
            # process with batch B*W would (incomplete global batches are dropped).
            b, w = self.batch_size, self.world
            return [i for k in range(self.n // (b * w)) for i in order[k * b * w + self.rank * b : k * b * w + (self.rank + 1) * b]]
        return order[self.rank :: self.world]

    def num_batches(self) -> int:
        k = len(self.indices())
        return k // self.batch_size if self.drop_last else -(-k // self.batch_size)

    def __iter__(self):
        return iter(self.indices()[self.start * self.batch_size :])

    def __len__(self) -> int:
        return max(0, len(self.indices()) - self.start * self.batch_size)


class SeededDataset(Dataset):
    """Seed torch, numpy and random from (seed, epoch, index) around each
    ``__getitem__`` and restore the caller's generators afterwards."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        self.dataset, self.seed, self.epoch = dataset, seed, 0

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getattr__(self, name: str):
        if name in ("dataset", "seed", "epoch"):
            raise AttributeError(name)
        return getattr(self.dataset, name)

    def __getitem__(self, index: int):
        s = _mix(self.seed, self.epoch, index)
        np_state, py_state = np.random.get_state(), random.getstate()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            np.random.seed(s)
            random.seed(s)
            try:
                return self.dataset[index]
            finally:
                np.random.set_state(np_state)
                random.setstate(py_state)
