"""Data order and augmentation randomness that survive a kill and resume bit for bit.

- :class:`ResumableDistributedSampler` is torch's ``DistributedSampler`` (same per-epoch
  permutation from ``seed + epoch``, same ``rank::world_size`` sharding) that can start an epoch
  part-way (``set_epoch(epoch, start=k)`` skips the first k samples of this rank), so a resumed
  run sees exactly the batches the killed run had not seen yet.
- With ``per_sample_seeds=True`` it yields ``(index, seed)`` pairs, and :class:`SeededDataset`
  seeds python/numpy/torch from that seed around each ``__getitem__``. A sample's random
  augmentation then depends only on (run seed, epoch, position in the epoch), not on which
  worker loaded it or how many samples that worker loaded before, which is what makes resume
  exact with ``num_workers > 0``. In the main process (``num_workers=0``) the caller's generator
  state is restored after each batch, so data loading does not disturb the training RNG.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset, DistributedSampler

from paperzoo.train.seeding import derive_seed

__all__ = ["ResumableDistributedSampler", "SeededDataset"]


class ResumableDistributedSampler(DistributedSampler):
    """``DistributedSampler`` with a start offset and optional per-sample seeds.

    Works without a process group: pass ``num_replicas=1, rank=0``.
    """

    def __init__(
        self,
        dataset: Any,
        *,
        num_replicas: int,
        rank: int,
        shuffle: bool = True,
        seed: int = 0,
        per_sample_seeds: bool = True,
    ) -> None:
        # drop_last=False pads by repeating samples so every rank gets the same count, as
        # torch's default does; the DataLoader's drop_last drops the trailing partial batch.
        super().__init__(
            dataset,
            num_replicas=num_replicas,
            rank=rank,
            shuffle=shuffle,
            seed=seed,
            drop_last=False,
        )
        self.per_sample_seeds = per_sample_seeds
        self.start = 0

    def set_epoch(self, epoch: int, start: int = 0) -> None:
        """Use epoch ``epoch``'s order and skip its first ``start`` samples (of this rank)."""
        if not 0 <= start <= self.num_samples:
            raise ValueError(f"start {start} outside [0, {self.num_samples}] samples per rank")
        super().set_epoch(epoch)
        self.start = start

    def __iter__(self) -> Iterator[Any]:
        indices = list(super().__iter__())
        for pos in range(self.start, len(indices)):
            if self.per_sample_seeds:
                global_pos = pos * self.num_replicas + self.rank
                yield (indices[pos], derive_seed(self.seed, self.epoch, global_pos))
            else:
                yield indices[pos]

    def __len__(self) -> int:
        return self.num_samples - self.start


class SeededDataset(Dataset):
    """Wraps a map-style dataset; ``ds[(index, seed)]`` loads ``index`` under ``seed``.

    Seeds python ``random``, numpy's global generator and torch's CPU generator before loading
    each item. In the main process (``num_workers=0``) the three generators are saved before and
    restored after each batch, so data loading leaves the training RNG untouched; DataLoader
    workers own their generators and skip that (it costs ~0.1 ms, mostly numpy's get/set_state).
    """

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def _load(self, item: Any) -> Any:
        if not isinstance(item, tuple):
            return self.dataset[item]
        index, seed = item
        random.seed(seed)
        np.random.seed(seed % 2**32)
        # Only the CPU generator: torch.manual_seed would also reseed CUDA generators.
        torch.default_generator.manual_seed(seed)
        return self.dataset[index]

    def __getitem__(self, item: Any) -> Any:
        return self.__getitems__([item])[0]

    def __getitems__(self, items: list[Any]) -> list[Any]:
        # The DataLoader calls this once per batch (torch >= 2.1), so the save/restore below is
        # paid per batch, not per sample.
        if torch.utils.data.get_worker_info() is not None:
            return [self._load(item) for item in items]
        py_state = random.getstate()
        np_state = np.random.get_state()
        torch_state = torch.get_rng_state()
        try:
            return [self._load(item) for item in items]
        finally:
            random.setstate(py_state)
            np.random.set_state(np_state)
            torch.set_rng_state(torch_state)
