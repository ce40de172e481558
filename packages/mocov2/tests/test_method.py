"""The MoCo objective: InfoNCE, queue, momentum update, shuffle-BN (alone and across 2 ranks)."""

from __future__ import annotations

import math
import os

import pytest
import torch
import torch.multiprocessing as mp
import torch.nn.functional as F

from paperzoo.core import create_method, create_model
from paperzoo.mocov2.method import MoCoMethod, batch_shuffle, batch_unshuffle, encode_in_chunks
from paperzoo.mocov2.model import info_nce_logits, resnet_pooled_features


def _tiny_moco(queue_size: int = 32, **kw):
    torch.manual_seed(0)
    return create_model(
        "mocov2_resnet10_narrow", widths=(4, 8, 8, 8), dim=8, queue_size=queue_size, **kw
    )


def test_info_nce_matches_hand_computed_value():
    q = torch.tensor([[1.0, 0.0]])
    k = torch.tensor([[0.6, 0.8]])
    queue = torch.tensor([[0.0, -1.0], [1.0, 0.0]])  # columns: negatives (0, 1) and (-1, 0)
    logits = info_nce_logits(q, k, queue, temperature=0.5)
    torch.testing.assert_close(logits, torch.tensor([[1.2, 0.0, -2.0]]))
    loss = F.cross_entropy(logits, torch.zeros(1, dtype=torch.long))
    expected = -math.log(math.exp(1.2) / (math.exp(1.2) + math.exp(0.0) + math.exp(-2.0)))
    assert loss.item() == pytest.approx(expected, rel=1e-6)


def test_queue_enqueue_dequeue_wraps_and_advances_pointer():
    model = _tiny_moco(queue_size=6)
    before = model.queue.clone()
    first = F.normalize(torch.randn(4, 8), dim=1)
    model.dequeue_and_enqueue(first)
    assert int(model.queue_ptr) == 4
    torch.testing.assert_close(model.queue[:, :4], first.T)
    torch.testing.assert_close(model.queue[:, 4:], before[:, 4:])  # untouched, oldest entries
    second = F.normalize(torch.randn(4, 8), dim=1)
    model.dequeue_and_enqueue(second)
    # The two oldest slots (4, 5) are overwritten first, then it wraps to 0, 1.
    assert int(model.queue_ptr) == 2
    torch.testing.assert_close(model.queue[:, [4, 5, 0, 1]], second.T)
    torch.testing.assert_close(model.queue[:, 2:4], first[2:].T)
    with pytest.raises(ValueError, match="queue_size"):
        model.dequeue_and_enqueue(torch.randn(7, 8))


def test_momentum_update_math():
    model = _tiny_moco(momentum=0.9)
    for p in model.encoder_q.parameters():
        p.data.normal_()
    k_before = [p.clone() for p in model.encoder_k.parameters()]
    bn_before = model.encoder_k.bn1.running_mean.clone()
    model.momentum_update_key_encoder()
    for pk, pk0, pq in zip(model.encoder_k.parameters(), k_before, model.encoder_q.parameters()):
        torch.testing.assert_close(pk, 0.9 * pk0 + 0.1 * pq)
        assert not pk.requires_grad
    assert torch.equal(model.encoder_k.bn1.running_mean, bn_before)  # buffers are not averaged


def test_training_step_order_and_gradients_only_reach_the_query_encoder():
    model = _tiny_moco(queue_size=16)
    method = create_method("moco", model=model, bn_splits=2)
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)]
    queue_before = model.queue.clone()
    out = method.training_step((views, torch.zeros(4)), step=0)
    # Logits were taken against the queue *before* this batch was enqueued.
    assert out["loss"].ndim == 0
    out["loss"].backward()
    assert all(p.grad is None for p in model.encoder_k.parameters())
    assert model.encoder_q.conv1.weight.grad is not None
    assert int(model.queue_ptr) == 4
    torch.testing.assert_close(model.queue[:, 4:], queue_before[:, 4:])
    assert not torch.allclose(model.queue[:, :4], queue_before[:, :4])
    # The enqueued keys are unit vectors of the key encoder.
    torch.testing.assert_close(model.queue[:, :4].norm(dim=0), torch.ones(4))


def test_batch_shuffle_then_unshuffle_is_identity_alone():
    x = torch.arange(12.0).view(6, 2)
    shuffled, idx_unshuffle = batch_shuffle(x)
    assert sorted(shuffled[:, 0].tolist()) == x[:, 0].tolist()
    torch.testing.assert_close(batch_unshuffle(shuffled, idx_unshuffle), x)


def test_shuffle_without_bn_groups_is_a_no_op_so_groups_are_needed():
    """One BN over the whole batch is permutation-invariant: shuffling alone changes nothing."""
    model = _tiny_moco()
    x = torch.randn(8, 3, 16, 16)
    no_shuffle = MoCoMethod(model, shuffle_bn=False, bn_splits=1).encode_keys(x)
    shuffled = MoCoMethod(model, shuffle_bn=True, bn_splits=1).encode_keys(x)
    torch.testing.assert_close(shuffled, no_shuffle, rtol=1e-5, atol=1e-6)
    # With 4 BN groups, shuffling changes which samples share statistics, hence the keys.
    grouped = MoCoMethod(model, shuffle_bn=False, bn_splits=4).encode_keys(x)
    torch.manual_seed(1)
    grouped_shuffled = MoCoMethod(model, shuffle_bn=True, bn_splits=4).encode_keys(x)
    assert not torch.allclose(grouped, grouped_shuffled, atol=1e-4)


def test_shuffled_keys_are_per_group_keys_of_the_permuted_batch_unpermuted():
    model = _tiny_moco()
    x = torch.randn(8, 3, 16, 16)
    torch.manual_seed(3)
    keys = MoCoMethod(model, bn_splits=4).encode_keys(x)
    torch.manual_seed(3)
    perm = torch.randperm(8)
    by_hand = torch.empty(8, 8)
    for g in range(4):
        idx = perm[2 * g : 2 * g + 2]  # virtual GPU g encodes these two samples in one BN
        by_hand[idx] = F.normalize(model.encoder_k(x[idx]), dim=1)
    torch.testing.assert_close(keys, by_hand, rtol=1e-5, atol=1e-6)


def test_encode_in_chunks_rejects_uneven_groups():
    model = _tiny_moco()
    with pytest.raises(ValueError, match="bn_splits"):
        encode_in_chunks(model.encoder_q, torch.randn(6, 3, 16, 16), 4)


# -- two gloo processes vs one process with two BN groups -------------------------------------


def _ddp_worker(
    rank: int, world: int, init_file: str, x_q, x_k, out_dir: str, sync_key_head: bool = False
) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=world)
    try:
        model = _bn_head_moco(queue_size=16) if sync_key_head else _tiny_moco(queue_size=16)
        method = MoCoMethod(model, bn_splits=1, sync_key_head=sync_key_head)
        b = x_q.shape[0] // world
        torch.manual_seed(123)  # rank 0's permutation is the one broadcast
        logits, _ = method(x_q[rank * b : (rank + 1) * b], x_k[rank * b : (rank + 1) * b])
        torch.save(
            {"logits": logits.detach(), "queue": method.model.queue.clone()},
            os.path.join(out_dir, f"rank{rank}.pt"),
        )
    finally:
        dist.destroy_process_group()


def test_two_process_shuffle_bn_equals_one_process_with_two_bn_groups(tmp_path):
    torch.manual_seed(7)
    x_q, x_k = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    mp.spawn(
        _ddp_worker, args=(2, str(tmp_path / "init"), x_q, x_k, str(tmp_path)), nprocs=2, join=True
    )
    single = MoCoMethod(_tiny_moco(queue_size=16), bn_splits=2)
    torch.manual_seed(123)
    logits, _ = single(x_q, x_k)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.testing.assert_close(
        torch.cat([r["logits"] for r in ranks]), logits, rtol=1e-5, atol=1e-5
    )
    for r in ranks:  # every rank enqueued the keys of the whole global batch, in order
        torch.testing.assert_close(r["queue"], single.model.queue, rtol=1e-5, atol=1e-6)


# -- the hooks papers built on MoCo use (asymsiam) -------------------------------------------


def _bn_head(num_features: int, dim: int) -> torch.nn.Module:
    nn = torch.nn
    return nn.Sequential(
        nn.Linear(num_features, num_features), nn.BatchNorm1d(num_features), nn.ReLU(),
        nn.Linear(num_features, dim),
    )  # fmt: skip


def _bn_head_moco(queue_size: int = 32):
    from paperzoo.mocov2.model import MoCo, NarrowResNet

    torch.manual_seed(0)
    return MoCo(
        lambda num_classes: NarrowResNet(widths=(4, 8, 8, 8), num_classes=num_classes),
        dim=8, queue_size=queue_size, momentum=0.99, temperature=0.2, head_fn=_bn_head,
    )  # fmt: skip


def test_head_fn_replaces_the_projector_in_both_encoders():
    model = _bn_head_moco()
    assert isinstance(model.encoder_q.fc[1], torch.nn.BatchNorm1d)
    assert isinstance(model.encoder_k.fc[1], torch.nn.BatchNorm1d)
    assert model.num_features == 8 and model(torch.randn(4, 3, 16, 16)).shape == (4, 8)
    assert {k for k in model.state_dict() if k.startswith("encoder_q.fc.")} == {
        "encoder_q.fc.0.weight", "encoder_q.fc.0.bias", "encoder_q.fc.1.weight",
        "encoder_q.fc.1.bias", "encoder_q.fc.1.running_mean", "encoder_q.fc.1.running_var",
        "encoder_q.fc.1.num_batches_tracked", "encoder_q.fc.3.weight", "encoder_q.fc.3.bias",
    }  # fmt: skip


def test_key_views_are_encoded_as_one_batch_and_averaged_before_normalising():
    method = MoCoMethod(_bn_head_moco(), bn_splits=1)  # one BN group: shuffling is a no-op
    v1, v2 = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    keys = method.encode_keys([v1, v2])
    with torch.no_grad():
        raw = method.model.encoder_k(torch.cat([v1, v2]))
    expected = F.normalize((raw[:4] + raw[4:]) / 2, dim=1)
    torch.testing.assert_close(keys, expected, rtol=1e-5, atol=1e-6)
    # Averaging normalised keys instead would give another (wrong) answer.
    wrong = F.normalize(F.normalize(raw[:4], dim=1) + F.normalize(raw[4:], dim=1), dim=1)
    assert not torch.allclose(keys, wrong, atol=1e-4)


def test_contrast_gives_one_logits_per_query_view_against_the_queue_before_the_step():
    method = MoCoMethod(_bn_head_moco(queue_size=16), bn_splits=2)
    views = [torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16), torch.randn(4, 3, 8, 8)]
    queue_before = method.model.queue.clone()
    logits = method.contrast(views, torch.randn(4, 3, 16, 16))
    assert [tuple(x.shape) for x in logits] == [(4, 17)] * 3
    assert int(method.model.queue_ptr) == 4  # the keys are enqueued once, not once per view
    for view, lg in zip(views, logits):  # each view is its own batch (its own BN statistics)
        q = method.encode_queries(view)
        torch.testing.assert_close(lg[:, 1:], q @ queue_before / 0.2, rtol=1e-4, atol=1e-4)
    sum(F.cross_entropy(lg, torch.zeros(4, dtype=torch.long)) for lg in logits).backward()
    assert all(p.grad is None for p in method.model.encoder_k.parameters())
    assert method.model.encoder_q.conv1.weight.grad is not None


def test_sync_key_head_normalises_the_key_projector_over_all_bn_groups():
    from paperzoo.train.sync_bn import SyncBatchNorm

    x = torch.randn(8, 3, 16, 16)
    synced = MoCoMethod(_bn_head_moco(), bn_splits=2, shuffle_bn=False, sync_key_head=True)
    assert isinstance(synced.model.encoder_k.fc[1], SyncBatchNorm)
    assert not isinstance(synced.model.encoder_q.fc[1], SyncBatchNorm)  # the source keeps BN
    assert synced.model.state_dict().keys() == _bn_head_moco().state_dict().keys()
    enc = synced.model.encoder_k
    with torch.no_grad():  # expected: backbone per BN group, projector over the whole batch
        pooled = torch.cat([resnet_pooled_features(enc, c) for c in x.chunk(2)])
        expected = F.normalize(enc.fc(pooled), dim=1)
    torch.testing.assert_close(synced.encode_keys(x), expected, rtol=1e-5, atol=1e-6)
    per_group = MoCoMethod(_bn_head_moco(), bn_splits=2, shuffle_bn=False)
    assert not torch.allclose(per_group.encode_keys(x), expected, atol=1e-3)


def test_two_process_sync_key_head_equals_one_process_head_over_the_whole_batch(tmp_path):
    """AsymBN across 2 gloo ranks = 1 process with 2 BN groups whose key projector sees both."""
    torch.manual_seed(7)
    x_q, x_k = torch.randn(8, 3, 16, 16), torch.randn(8, 3, 16, 16)
    mp.spawn(
        _ddp_worker, args=(2, str(tmp_path / "init"), x_q, x_k, str(tmp_path), True), nprocs=2,
        join=True,
    )  # fmt: skip
    single = MoCoMethod(_bn_head_moco(queue_size=16), bn_splits=2, sync_key_head=True)
    torch.manual_seed(123)
    logits, _ = single(x_q, x_k)
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in range(2)]
    torch.testing.assert_close(
        torch.cat([r["logits"] for r in ranks]), logits, rtol=1e-5, atol=1e-5
    )
    for r in ranks:
        torch.testing.assert_close(r["queue"], single.model.queue, rtol=1e-5, atol=1e-6)


def test_encode_in_chunks_returns_the_pooled_features_of_the_same_pass():
    model = _tiny_moco()
    x = torch.randn(8, 3, 16, 16)
    expected = encode_in_chunks(model.encoder_q, x, 2)
    out, pooled = encode_in_chunks(model.encoder_q, x, 2, return_features=True)
    torch.testing.assert_close(out, expected)  # the projections do not change
    per_group = torch.cat([resnet_pooled_features(model.encoder_q, c) for c in x.chunk(2)])
    torch.testing.assert_close(pooled, per_group)
    assert pooled.shape == (8, model.num_features)


def test_contrast_hands_back_query_features_with_gradients():
    model = _tiny_moco()
    method = MoCoMethod(model, bn_splits=2)
    im_q, im_k = torch.randn(4, 3, 16, 16), torch.randn(4, 3, 16, 16)
    features: list[torch.Tensor] = []
    (logits,) = method.contrast([im_q], im_k, query_features=features)
    assert len(features) == 1 and features[0].shape == (4, model.num_features)
    features[0].sum().backward()  # the features are part of the query encoder's graph
    assert model.encoder_q.conv1.weight.grad is not None
    assert logits.shape == (4, 1 + model.queue_size)


def test_an_encoder_that_pools_itself_runs_inside_moco():
    """The hook of non-torchvision backbones: ``forward_features`` replaces the ResNet walk."""

    class Pooled(torch.nn.Module):
        def __init__(self, num_classes: int) -> None:
            super().__init__()
            self.conv = torch.nn.Conv3d(3, 6, 3, padding=1)
            self.fc = torch.nn.Linear(6, num_classes)

        def forward_features(self, x: torch.Tensor) -> torch.Tensor:
            return self.conv(x).mean(dim=(2, 3, 4))

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.fc(self.forward_features(x))

    from paperzoo.mocov2.model import MoCo

    torch.manual_seed(0)
    model = MoCo(Pooled, dim=8, queue_size=16)
    clip = torch.randn(2, 3, 4, 8, 8)
    features = model.forward_features(clip)
    torch.testing.assert_close(features, model.encoder_q.conv(clip).mean(dim=(2, 3, 4)))
    out = MoCoMethod(model).training_step(([clip, clip.flip(2)], None), 0)
    assert torch.isfinite(out["loss"])
