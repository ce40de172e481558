"""Data order and per-sample seeding: what exact resume rests on."""

from __future__ import annotations

import torch
from tiny_methods import RegressionData
from torch.utils.data import DataLoader

from paperzoo.train.sampling import ResumableDistributedSampler, SeededDataset


def _loader(data, sampler, num_workers=0):
    # As in the Trainer: a private generator, so the loader's worker seed is not drawn from the
    # global RNG.
    return DataLoader(
        SeededDataset(data), batch_size=4, sampler=sampler, num_workers=num_workers, drop_last=True,
        generator=torch.Generator().manual_seed(0),
    )  # fmt: skip


def test_offset_is_a_suffix_and_ranks_partition_the_epoch():
    data = RegressionData(n=20)
    full = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=3)
    full.set_epoch(2)
    order = [i for i, _ in full]
    assert sorted(order) == list(range(20))
    full.set_epoch(2, start=8)
    assert [i for i, _ in full] == order[8:] and len(full) == 12
    ranks = [ResumableDistributedSampler(data, num_replicas=2, rank=r, seed=3) for r in (0, 1)]
    for s in ranks:
        s.set_epoch(2)
    assert sorted(i for s in ranks for i, _ in s) == list(range(20))
    # per-sample seeds depend on the global position, so they agree with the single-process run
    full.set_epoch(2)
    assert {pair for s in ranks for pair in s} == set(full)
    full.set_epoch(3)
    assert [i for i, _ in full] != order  # a new epoch, a new order


def test_augmentation_depends_only_on_seed_epoch_position():
    data = RegressionData(n=24, augment=True)
    sampler = ResumableDistributedSampler(data, num_replicas=1, rank=0, seed=1)
    sampler.set_epoch(0)
    torch.manual_seed(5)
    before = torch.get_rng_state()
    batches = [x for x, _ in _loader(data, sampler)]
    assert torch.equal(torch.get_rng_state(), before), "loading data moved the training RNG"
    sampler.set_epoch(0, start=8)  # resume after two batches
    resumed = [x for x, _ in _loader(data, sampler)]
    assert all(torch.equal(a, b) for a, b in zip(batches[2:], resumed)) and len(resumed) == 4
    sampler.set_epoch(0)
    with_workers = [x for x, _ in _loader(data, sampler, num_workers=2)]
    assert all(torch.equal(a, b) for a, b in zip(batches, with_workers))
    # and the augmentation is really random: a sample differs from its clean value
    assert not torch.equal(batches[0], torch.stack([data.x[i] for i, _ in list(sampler)[:4]]))
