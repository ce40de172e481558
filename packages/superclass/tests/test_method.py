"""The SuperClass loss against a hand computation of the official formulas, and the CLIP method."""

from __future__ import annotations

import math

import numpy as np
import torch

from paperzoo.superclass import model as M
from paperzoo.superclass.data import tokenizer
from paperzoo.superclass.method import (
    ClipMethod,
    SuperClassMethod,
    idf_weighted_targets,
    multi_hot,
    soft_target_cross_entropy,
)

CAPTIONS = [
    ["a thin seven leaning right", "a thick seven", "an upright one", "a small one, high"],
    ["a bold two", "a thin two, low", "a seven in the middle", "a big nine"],
]


def _reference_loss(logits: np.ndarray, ids: np.ndarray, fq: np.ndarray, n: float) -> tuple:
    """ClsLoss of the official code, in numpy float64 (one process): returns loss, fq, n."""
    b, v = logits.shape
    y = np.zeros((b, v))
    for row, tokens in enumerate(ids):
        y[row, tokens] = 1.0  # duplicates count once (scatter_)
    fq = fq + y.sum(0) / b
    n = n + 1
    w = np.log((n + 1.0 / b) / (fq + 1.0 / b))
    y = y * w
    y = y / np.maximum(np.abs(y).sum(1, keepdims=True), 1e-12)
    z = logits - logits.max(1, keepdims=True)
    log_p = z - np.log(np.exp(z).sum(1, keepdims=True))
    return -(y * log_p).sum(1).mean(), fq, n


def test_multi_hot_counts_each_token_once_and_keeps_special_ids():
    ids = tokenizer(16)(["a seven seven", "a one"])
    y = multi_hot(ids, 49408)
    tok = tokenizer(16)
    seven = tok.encode("seven")[0]
    assert y.dtype == torch.float32 and y[0, seven] == 1.0 and y[1, seven] == 0.0
    # start, end and the padding id 0 are targets too (the official code masks nothing).
    assert (y[:, 49406] == 1).all() and (y[:, 49407] == 1).all() and (y[:, 0] == 1).all()
    assert y[0].sum() == len(set(ids[0].tolist()))


def test_loss_and_running_statistics_match_the_official_formulas():
    torch.manual_seed(0)
    model = M.superclass_vit_tiny_mnist()
    method = SuperClassMethod(model)
    fq, n = np.zeros(49408), 0.0
    for step, captions in enumerate(CAPTIONS):
        ids = tokenizer(16)(captions)
        images = torch.randn(len(captions), 3, 28, 28)
        with torch.no_grad():
            logits = model(images).double().numpy()
        loss = method.training_step((images, ids), step)["loss"]
        expected, fq, n = _reference_loss(logits, ids.numpy(), fq, n)
        assert math.isclose(float(loss.detach()), expected, rel_tol=1e-5), (loss, expected)
        np.testing.assert_allclose(model.cap_fq[0].numpy(), fq, rtol=0, atol=1e-15)
        assert float(model.num_samples) == n == step + 1
    # A token in every caption so far has weight log(1) = 0; a rare one a large weight.
    w = model.idf_weights(4)[0]
    seven = tokenizer(16).encode("seven")[0]
    assert float(w[49406]) == 0.0 and float(w[0]) == 0.0
    assert float(w[seven]) > 0.5
    assert math.isclose(float(w[seven]), math.log((2 + 0.25) / (0.75 + 0.25)), rel_tol=1e-12)


def test_the_loss_has_gradients_and_without_idf_is_the_plain_multi_hot():
    torch.manual_seed(0)
    model = M.superclass_vit_tiny_mnist()
    ids = tokenizer(16)(CAPTIONS[0])
    images = torch.randn(4, 3, 28, 28)
    plain = SuperClassMethod(model, idf=False).training_step((images, ids), 0)["loss"]
    plain.backward()
    assert model.visual.conv1.weight.grad.abs().sum() > 0
    assert float(model.num_samples) == 0  # the ablation does not touch the statistics
    with torch.no_grad():
        expected = soft_target_cross_entropy(model(images), multi_hot(ids, 49408))
    torch.testing.assert_close(plain.detach(), expected)
    weighted = idf_weighted_targets(ids, model.cap_fq.clone(), model.num_samples.clone())
    # The common tokens lose all their weight: targets differ from the plain multi-hot.
    assert weighted[:, 49406].abs().max() == 0 and weighted.sum() < multi_hot(ids, 49408).sum()


def test_soft_target_cross_entropy_is_l1_normalised():
    logits = torch.randn(3, 10)
    t = torch.zeros(3, 10)
    t[0, 2] = 5.0  # one target, any weight: plain cross-entropy
    t[1, [1, 4]] = 1.0
    t[2, [0, 1, 2]] = torch.tensor([1.0, 2.0, 1.0])
    got = soft_target_cross_entropy(logits, t)
    log_p = logits.log_softmax(1)
    expected = -(log_p[0, 2] + 0.5 * (log_p[1, 1] + log_p[1, 4])
                 + (0.25 * log_p[2, 0] + 0.5 * log_p[2, 1] + 0.25 * log_p[2, 2])) / 3  # fmt: skip
    torch.testing.assert_close(got, expected)


def test_clip_method_uses_open_clip_loss_and_clamps_the_scale():
    from open_clip.loss import ClipLoss

    torch.manual_seed(0)
    clip = M.superclass_clip_tiny_mnist()
    method = ClipMethod(clip)
    images, ids = torch.randn(4, 3, 28, 28), tokenizer(32)(CAPTIONS[0])
    loss = method.training_step((images, ids), 0)["loss"]
    with torch.no_grad():
        img = clip.encode_image(images, normalize=True)
        txt = clip.encode_text(ids, normalize=True)
        ref = ClipLoss()(img, txt, clip.logit_scale.exp())
        logits = clip.logit_scale.exp() * img @ txt.T
        labels = torch.arange(4)
        by_hand = (torch.nn.functional.cross_entropy(logits, labels)
                   + torch.nn.functional.cross_entropy(logits.T, labels)) / 2  # fmt: skip
    torch.testing.assert_close(loss.detach(), ref)
    torch.testing.assert_close(loss.detach(), by_hand)
    with torch.no_grad():
        clip.logit_scale.fill_(10.0)
    method.on_after_optimizer_step(0)
    assert math.isclose(float(clip.logit_scale.detach()), math.log(100), rel_tol=1e-6)
    feats = method.forward_features(images)
    assert feats.shape == (4, 64)  # pooled, before the 64 -> 64 projection
