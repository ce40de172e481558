"""TaCo's encoders: torchvision parity (R3D-18, R(2+1)D-18), Slow-only R50 from paperzoo-slowfast,
the parameter counts the plugin declares, and the heads on the query side only."""

from __future__ import annotations

import pytest
import torch
from torchvision.models.video import r2plus1d_18, r3d_18
from torchvision.models.video.resnet import (
    BasicBlock,
    BasicStem,
    Conv2Plus1D,
    Conv3DSimple,
    R2Plus1dStem,
)

from paperzoo.core import create_model, get_model
from paperzoo.taco.model import (
    DEFAULT_TASKS,
    SlowEncoder,
    VideoResNetEncoder,
    slow_r50_state_dict,
    taco_r3d_narrow,
)


@pytest.mark.parametrize(
    ("reference", "conv", "stem"),
    [(r3d_18, Conv3DSimple, BasicStem), (r2plus1d_18, Conv2Plus1D, R2Plus1dStem)],
)
def test_video_resnet_encoder_is_torchvisions_network(reference, conv, stem):
    torch.manual_seed(0)
    ref = reference(num_classes=7).eval()
    ours = VideoResNetEncoder(BasicBlock, [conv] * 4, [2, 2, 2, 2], stem(), num_classes=7)
    ours.load_state_dict(ref.state_dict(), strict=True)  # the same keys and shapes
    ours.eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x))
        assert ours.forward_features(x).shape == (2, 512)


def test_slow_encoder_loads_a_slow_r50_classifier_and_pools_its_res5():
    from paperzoo.slowfast.model import slow_r50

    torch.manual_seed(0)
    ref = slow_r50().eval()
    ours = SlowEncoder(num_classes=128).eval()
    missing, unexpected = ours.load_state_dict(slow_r50_state_dict(ref.state_dict()), strict=False)
    assert missing == ["fc.weight", "fc.bias"] and unexpected == []
    x = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        (res5,) = ref.forward_features(x)
        torch.testing.assert_close(ours.forward_features(x), res5.mean(dim=(2, 3, 4)))


@pytest.mark.parametrize(
    ("name", "backbone"),
    [
        ("taco_r3d_18", 33_371_472 - (512 * 400 + 400)),  # torchvision r3d_18 without its fc
        ("taco_r2plus1d_18", 31_505_325 - (512 * 400 + 400)),
        ("taco_slow_r50", 32_454_096 - (2048 * 400 + 400)),  # paperzoo-slowfast slow_r50
        ("taco_r3d_narrow", None),
    ],
)
def test_parameter_counts_match_the_references_and_the_plugin(name, backbone):
    with torch.device("meta"):
        model = create_model(name)
    encoder = model.encoder_q
    if backbone is not None:
        assert sum(p.numel() for n, p in encoder.named_parameters() if not n.startswith("fc.")) == (
            backbone
        )
    f = model.num_features
    moco_head = f * f + f + f * 128 + 128
    heads = sum(f * f + f + f * k + k for k in DEFAULT_TASKS.values())
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    if name != "taco_r3d_narrow":  # the narrow one has a 64-d projection
        assert trainable - sum(p.numel() for p in encoder.parameters()) == heads
        assert sum(p.numel() for p in encoder.fc.parameters()) == moco_head
    assert trainable == get_model(name).num_params


def test_heads_predict_each_transformation_from_query_features_only():
    torch.manual_seed(0)
    model = taco_r3d_narrow(tasks={"rotation": 4, "speed": 3})
    assert not any(name.startswith("encoder_k") for name, _ in model.heads.named_parameters())
    features = model.forward_features(torch.randn(3, 3, 4, 32, 32))
    out = model.predict_transformations(features)
    assert {k: tuple(v.shape) for k, v in out.items()} == {"rotation": (3, 4), "speed": (3, 3)}
    assert all(not p.requires_grad for p in model.encoder_k.parameters())
