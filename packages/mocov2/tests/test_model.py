"""Architecture: parameter counts against torchvision, key-encoder init, feature shapes."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from paperzoo.core import create_model, get_model
from paperzoo.mocov2.model import MoCo, NarrowResNet


def _count(module: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _torchvision_without_fc(model: nn.Module) -> int:
    return sum(p.numel() for name, p in model.named_parameters() if not name.startswith("fc."))


def test_mocov2_resnet50_trainable_params_are_resnet50_without_fc_plus_mlp_head():
    model = create_model("mocov2_resnet50")
    reference = torchvision.models.resnet50()
    head = (2048 * 2048 + 2048) + (2048 * 128 + 128)  # fc.0 and fc.2 of the MLP head
    expected = _torchvision_without_fc(reference) + head
    assert _count(model, trainable_only=True) == expected == 27_966_656
    # The key encoder is the same size again, all of it frozen.
    assert _count(model) == 2 * expected
    assert not any(p.requires_grad for p in model.encoder_k.parameters())
    assert get_model("mocov2_resnet50").num_params == expected


def test_mocov1_has_a_linear_head_and_t007():
    model = create_model("mocov1_resnet50")
    assert isinstance(model.encoder_q.fc, nn.Linear)
    assert model.temperature == pytest.approx(0.07)
    expected = _torchvision_without_fc(torchvision.models.resnet50()) + 2048 * 128 + 128
    assert _count(model, trainable_only=True) == expected == get_model("mocov1_resnet50").num_params


@pytest.mark.parametrize("name", ["mocov2_resnet18_cifar", "mocov2_resnet10_narrow"])
def test_small_variants_registered_counts_match(name):
    model = create_model(name)
    assert _count(model, trainable_only=True) == get_model(name).num_params


def test_resnet18_cifar_is_torchvision_resnet18_with_small_stem():
    model = create_model("mocov2_resnet18_cifar")
    tv = torchvision.models.resnet18()
    stem_delta = 64 * 3 * 7 * 7 - 64 * 3 * 3 * 3  # 7x7 conv replaced by 3x3
    assert _torchvision_without_fc(model.encoder_q) + stem_delta == _torchvision_without_fc(tv)
    assert isinstance(model.encoder_q.maxpool, nn.Identity)
    assert model.forward_features(torch.randn(2, 3, 32, 32)).shape == (2, 512)


def test_key_encoder_starts_equal_to_query_encoder_and_queue_is_unit_norm():
    torch.manual_seed(0)
    model = create_model("mocov2_resnet10_narrow", queue_size=64)
    for (nq, pq), (nk, pk) in zip(
        model.encoder_q.named_parameters(), model.encoder_k.named_parameters()
    ):
        assert nq == nk
        assert torch.equal(pq, pk)
    assert model.queue.shape == (128, 64)
    torch.testing.assert_close(model.queue.norm(dim=0), torch.ones(64))
    assert int(model.queue_ptr) == 0


def test_forward_features_is_pooled_backbone_and_forward_is_normalised_head():
    torch.manual_seed(0)
    model = create_model("mocov2_resnet50", queue_size=256).eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        feats = model.forward_features(x)
        assert feats.shape == (2, 2048)
        # Same as torchvision's forward with fc removed.
        enc = model.encoder_q
        fc, enc.fc = enc.fc, nn.Identity()
        torch.testing.assert_close(enc(x), feats)
        enc.fc = fc
        z = model(x)
    assert z.shape == (2, 128)
    torch.testing.assert_close(z, nn.functional.normalize(model.forward_head(feats), dim=1))


def test_narrow_resnet_shapes_and_gray_input():
    net = NarrowResNet(widths=(8, 16, 32, 64), num_classes=5, in_chans=1)
    assert net(torch.randn(3, 1, 28, 28)).shape == (3, 5)
    with pytest.raises(ValueError, match="4 stages"):
        NarrowResNet(widths=(8, 16, 32))


def test_bad_momentum_is_an_error():
    with pytest.raises(ValueError, match="momentum"):
        MoCo(torchvision.models.resnet18, momentum=1.5)
