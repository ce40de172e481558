"""The shared multiview backbones: parameter counts against the references, per-view stems."""

from __future__ import annotations

import pytest
import torch

from paperzoo.mvpl.model import MultiviewNet, mvpl_r3d_18, mvpl_r3d_tiny, mvpl_slow_r50, narrow_r3d


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def _stem_params(in_channels: int, width: int, kernel: tuple[int, int, int]) -> int:
    """A stem conv (no bias) and its BatchNorm (weight, bias)."""
    t, h, w = kernel
    return in_channels * width * t * h * w + 2 * width


def test_r3d_18_is_torchvision_plus_two_view_stems():
    from torchvision.models.video import r3d_18

    ours, ref = mvpl_r3d_18(num_classes=400), r3d_18(num_classes=400)
    assert _count(ref) == 33_371_472  # torchvision's R3D-18 (Kinetics-400 head)
    extra = _stem_params(3, 64, (3, 7, 7)) + _stem_params(2, 64, (3, 7, 7))  # tg, flow
    assert _count(ours) == _count(ref) + extra == 33_418_768
    # At inference (the RGB stem and the shared trunk) it is exactly R3D-18.
    rgb = _count(ours.view_stems.stems["rgb"]) + sum(p.numel() for p in ours.shared_parameters())
    assert rgb == _count(ref)
    # Same module names as torchvision's under backbone.*, so its weights load.
    names = {
        k.replace("stem.stems.rgb.", "stem.")
        for k in ours.backbone.state_dict()
        if not k.startswith(("stem.stems.tg.", "stem.stems.flow."))
    }
    assert names == set(ref.state_dict())


def test_r3d_18_rgb_view_matches_torchvision_with_the_same_weights():
    from torchvision.models.video import r3d_18

    torch.manual_seed(0)
    ref = r3d_18(num_classes=10).eval()
    ours = mvpl_r3d_18(num_classes=10).eval()
    state = {k.replace("stem.", "stem.stems.rgb.", 1) if k.startswith("stem.") else k: v
             for k, v in ref.state_dict().items()}  # fmt: skip
    missing = ours.backbone.load_state_dict(state, strict=False)
    assert not missing.unexpected_keys
    assert all(".stems.tg." in k or ".stems.flow." in k for k in missing.missing_keys)
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(ours(x), ref(x), atol=1e-5)


@pytest.mark.slow
def test_slow_r50_is_paperzoo_slowfasts_plus_two_view_stems():
    from paperzoo.slowfast.model import slow_r50

    ref, ours = slow_r50(), mvpl_slow_r50(num_classes=400)
    assert _count(ref) == 32_454_096  # PySlowFast SLOW_8x8_R50
    extra = _stem_params(3, 64, (1, 7, 7)) + _stem_params(2, 64, (1, 7, 7))
    assert _count(ours) == _count(ref) + extra == 32_470_032


def test_slow_r50_forwards_every_view_on_a_small_clip():
    torch.manual_seed(0)
    net = mvpl_slow_r50(num_classes=7, head_pool_kernel_size=None, dropout_rate=0.0).eval()
    with torch.no_grad():
        for view, c in (("rgb", 3), ("tg", 3), ("flow", 2)):
            assert net(torch.randn(1, c, 2, 64, 64), view).shape == (1, 7)


def test_views_and_channels_are_checked():
    net = mvpl_r3d_tiny(num_classes=4, width=8)
    assert isinstance(net, MultiviewNet) and net.views == ("rgb", "tg", "flow")
    with pytest.raises(ValueError, match="2 channels"):
        net(torch.randn(1, 3, 2, 16, 16), "flow")
    with pytest.raises(ValueError, match="no 'flow' view"):
        mvpl_r3d_tiny(num_classes=4, views=("rgb",))(torch.randn(1, 2, 2, 16, 16), "flow")
    with pytest.raises(ValueError, match="starting with 'rgb'"):
        mvpl_r3d_tiny(num_classes=4, views=("flow", "rgb"))
    assert net.view_stems.active == "rgb"  # reset after every call


def test_narrow_r3d_is_torchvisions_topology():
    from torchvision.models.video.resnet import BasicBlock

    net = narrow_r3d(num_classes=12, width=16)
    assert [type(getattr(net, f"layer{i}")[0]) for i in range(1, 5)] == [BasicBlock] * 4
    assert net.fc.in_features == 128
    assert net(torch.randn(2, 3, 4, 32, 32)).shape == (2, 12)
