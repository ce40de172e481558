"""Queues, momentum, the hierarchical loss on hand-built embeddings, and where gradients go."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.hit import model as M
from paperzoo.hit.method import HiTMethod, hierarchical_loss
from paperzoo.hit.model import HiT, KeyQueue, hit_tiny, momentum_update
from paperzoo.hit.plugin import PARAMS


def test_queue_writes_the_oldest_columns_and_wraps():
    q = KeyQueue(dim=2, size=4)
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    q.enqueue(a, torch.tensor([7, 8, 9]))
    assert int(q.ptr) == 3 and int(q.filled) == 3
    torch.testing.assert_close(q.queue[:, :3], a.T)
    b = torch.tensor([[2.0, 0.0], [0.0, 2.0]])
    q.enqueue(b, torch.tensor([1, 2]))  # columns 3 and 0 (wraps)
    assert int(q.ptr) == 1 and int(q.filled) == 4
    torch.testing.assert_close(q.queue[:, 3], b[0])
    torch.testing.assert_close(q.queue[:, 0], b[1])
    torch.testing.assert_close(q.queue[:, 1:3], a[1:].T)
    assert q.labels.tolist() == [2, 8, 9, 1]
    with pytest.raises(ValueError, match="queue of 4"):
        q.enqueue(torch.zeros(5, 2))


def test_false_negative_rate_counts_only_filled_entries():
    q = KeyQueue(dim=2, size=4)
    q.enqueue(torch.zeros(2, 2), torch.tensor([3, 5]))
    assert q.false_negative_rate(torch.tensor([3, 3])).item() == pytest.approx(0.5)
    assert q.false_negative_rate(torch.tensor([4])).item() == 0.0


def test_momentum_update_is_an_exponential_moving_average():
    qm, km = torch.nn.Linear(2, 1), torch.nn.Linear(2, 1)
    with torch.no_grad():
        qm.weight.fill_(1.0), qm.bias.fill_(1.0), km.weight.fill_(0.0), km.bias.fill_(3.0)
    momentum_update(qm, km, 0.9)
    torch.testing.assert_close(km.weight, torch.full((1, 2), 0.1))
    torch.testing.assert_close(km.bias, torch.tensor([2.8]))
    torch.testing.assert_close(qm.weight, torch.ones(1, 2))  # the query side is untouched


def _emb(v, t):
    return {"video": {"feature": v, "semantic": v}, "text": {"feature": t, "semantic": t}}


def test_momentum_loss_on_hand_built_embeddings():
    e1, e2 = torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]])
    # Query video e1, its key text e1, the text queue holds e2: logits [1, 0] / T.
    query, keys = _emb(e1, e2), _emb(e2, e1)
    queues = {
        f"{lvl}_{m}": e2.T.clone() for lvl in ("feature", "semantic") for m in ("video", "text")
    }
    out = hierarchical_loss(query, keys, queues, levels=("semantic",), temperature=0.5)
    v2t = math.log(1 + math.exp(-2.0))  # CE of logits [2, 0]
    t2v = math.log(2.0)  # query text e2 vs key video e2 (2) and the video queue's e2 (2)
    assert out["semantic_v2t"].item() == pytest.approx(v2t, abs=1e-6)
    assert out["semantic_t2v"].item() == pytest.approx(t2v, abs=1e-6)
    assert out["loss"].item() == pytest.approx((v2t + t2v) / 2, abs=1e-6)
    both = hierarchical_loss(query, keys, queues, temperature=0.5)
    assert both["loss"].item() == pytest.approx(v2t + t2v, abs=1e-6)  # the levels add up


def test_in_batch_loss_on_hand_built_embeddings():
    eye = torch.eye(2)
    out = hierarchical_loss(_emb(eye, eye), levels=("feature",), temperature=1.0)
    expected = math.log(1 + math.exp(-1.0))  # logits [[1, 0], [0, 1]]
    assert out["feature_v2t"].item() == pytest.approx(expected, abs=1e-6)
    assert out["loss"].item() == pytest.approx(expected, abs=1e-6)
    swapped = hierarchical_loss(_emb(eye, eye.flip(0)), levels=("feature",), temperature=1.0)
    assert swapped["loss"].item() == pytest.approx(math.log(1 + math.exp(1.0)), abs=1e-6)
    with pytest.raises(ValueError, match="both keys and queues"):
        hierarchical_loss(_emb(eye, eye), keys=_emb(eye, eye))


def _batch(n=4, vocab=30, length=6):
    g = torch.Generator().manual_seed(0)
    clips = torch.randn(n, 3, 4, 32, 32, generator=g)
    ids = torch.randint(5, vocab, (n, length), generator=g)
    ids[:, 0] = 2
    mask = torch.ones(n, length, dtype=torch.long)
    mask[0, -2:] = 0
    return clips, ids, mask, torch.tensor([0, 1, 0, 2])


@pytest.fixture
def model() -> HiT:
    torch.manual_seed(0)
    return hit_tiny(vocab_size=30, max_text_len=8, queue_size=8)


def test_gradients_reach_both_query_towers_and_never_the_key_copies(model):
    method = HiTMethod(model)
    out = method.training_step(_batch(), 0)
    out["loss"].backward()
    for tower in (model.video_q, model.text_q):
        grads = [p.grad for p in tower.parameters() if p.requires_grad]
        assert grads and any(g is not None and g.abs().sum() > 0 for g in grads)
        assert tower.encoder.depth == 4
    for tower in (model.video_k, model.text_k):
        assert all(not p.requires_grad and p.grad is None for p in tower.parameters())
    before = [p.clone() for p in model.video_k.parameters()]
    with torch.no_grad():
        for p in model.video_q.parameters():
            p.add_(1.0)
    method.on_after_optimizer_step(0)
    after = list(model.video_k.parameters())
    m = model.momentum
    for b, a in zip(before, after, strict=True):
        assert not torch.equal(a, b)
    p_q, p_k = next(model.video_q.parameters()), after[0]
    torch.testing.assert_close(p_k, m * before[0] + (1 - m) * p_q)


def test_each_of_the_four_queues_receives_its_own_level_and_modality(model):
    method = HiTMethod(model)
    batch = _batch()
    model.eval()  # no dropout in the tiny model; BN in eval so the keys recompute exactly
    keys = model.keys(*batch[:3])
    method.training_step(batch, 0)
    for mod in ("video", "text"):
        for lvl in ("feature", "semantic"):
            queue = model.queues[f"{lvl}_{mod}"]
            torch.testing.assert_close(queue.queue[:, :4], keys[mod][lvl].T)
            assert queue.labels[:4].tolist() == [0, 1, 0, 2] and int(queue.ptr) == 4
    # the levels are different embeddings, so a swap would have been caught
    assert not torch.allclose(keys["video"]["feature"], keys["video"]["semantic"])


def test_in_batch_arms_leave_queues_and_key_copies_alone(model):
    method = HiTMethod(model, levels=("semantic",), momentum_queues=False)
    out = method.training_step(_batch(), 0)
    assert set(out) == {"loss", "semantic_v2t", "semantic_t2v", "batch_false_negative"}
    assert out["batch_false_negative"].item() == pytest.approx(2 / 12)  # the two class-0 pairs
    assert all(int(q.ptr) == 0 for q in model.queues.values())


def test_embeddings_are_unit_norm_and_text_padding_is_ignored(model):
    model.eval()
    clips, ids, mask, _ = _batch()
    out = model(clips, ids, mask)
    for emb in (*out["video"].values(), *out["text"].values()):
        torch.testing.assert_close(emb.norm(dim=-1), torch.ones(4))
    ids2 = ids.clone()
    ids2[0, -2:] = 7  # under the padding mask
    again = model(clips, ids2, mask)
    torch.testing.assert_close(again["text"]["feature"][0], out["text"]["feature"][0])


def test_the_recipe_text_lr_scale_reaches_the_optimizer_groups(model):
    from paperzoo.hit.recipes import tiny_config
    from paperzoo.hit.reproduce import build_method

    cfg = tiny_config()
    cfg.text.lr_scale = 0.1
    groups = build_method(cfg, model).param_groups()
    text = {id(p) for p in model.text_q.encoder.parameters()}  # the BERT tower
    scaled = [g for g in groups if g.get("lr_scale") == 0.1]
    assert len(scaled) == 1 and {id(p) for p in scaled[0]["params"]} == text
    assert all(id(p) not in text for g in groups if g is not scaled[0] for p in g["params"])


def _count(module: torch.nn.Module, trainable: bool | None = None) -> int:
    return sum(p.numel() for p in module.parameters() if trainable in (None, p.requires_grad))


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_registered_parameter_counts(name):
    from paperzoo.core import get_model

    with torch.device("meta"):
        model = getattr(M, name)()
    assert _count(model) == PARAMS[name] == get_model(name).num_params
    assert _count(model, trainable=True) == PARAMS[name] // 2  # the key copies are frozen


def test_bert_base_text_tower_is_bert_base_without_its_pooler():
    from transformers import BertConfig, BertModel

    with torch.device("meta"):
        model = M.hit_bert_base()
        bert = BertModel(BertConfig(), add_pooling_layer=True)  # bert-base-uncased's config
    pooler = _count(bert.pooler)
    assert _count(bert) == 109_482_240  # the paper's "110M"
    assert _count(model.text_q.encoder) == _count(bert) - pooler == 108_891_648
    assert _count(model.text_q.heads) == 2 * (768 * 256 + 256)
    assert _count(model.video_q.heads) == 2 * (512 * 256 + 256)
