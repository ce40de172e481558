"""Parity with PyTorchVideo 0.1.5: its randomly initialised models, converted, give our outputs."""

import pytest
import torch
from torch import nn

from paperzoo.core import create_model
from paperzoo.slowfast import convert
from paperzoo.slowfast import model as models


def _clips(batch=2, size=64, slow=8, fast=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(batch, 3, slow, size, size, generator=g),
        torch.randn(batch, 3, fast, size, size, generator=g),
    ]


def test_slowfast_r50_checkpoint_matches_pytorchvideo(tmp_path, randomize_norms):
    """create_model("slowfast_r50", checkpoint_path=P) with P in PyTorchVideo's layout."""
    import pytorchvideo.models.hub as ptv_hub

    # 64² input: res5 is 2x2, so both heads pool (t, 2, 2) windows (hub default: 7x7 at 224²).
    pool = ((8, 2, 2), (32, 2, 2))
    torch.manual_seed(0)
    ref = randomize_norms(ptv_hub.slowfast_r50(head_pool_kernel_sizes=pool)).eval()
    path = tmp_path / "SLOWFAST_8x8_R50.pyth"
    torch.save({"model_state": ref.state_dict(), "epoch": 196}, path)
    ours = create_model("slowfast_r50", checkpoint_path=path, head_pool_kernel_sizes=pool).eval()
    x = _clips()
    with torch.no_grad():
        expected = ref([t.clone() for t in x])  # PyTorchVideo's stem writes into its input list
        got = ours(x)
    assert expected.abs().max() > 0.1  # a real signal, not zeros
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_slow_r50_matches_pytorchvideo(randomize_norms):
    from pytorchvideo.models.resnet import create_resnet

    # hub slow_r50 == create_resnet(stem 1x7x7, head pool (8, 7, 7)); 64² input here.
    ref = create_resnet(
        stem_conv_kernel_size=(1, 7, 7), head_pool_kernel_size=(8, 2, 2), model_depth=50
    )
    ref = randomize_norms(ref, seed=1).eval()
    ours = models.slow_r50(head_pool_kernel_size=(8, 2, 2)).eval()
    ours.load_state_dict(convert.from_pytorchvideo(ref.state_dict()))
    x = _clips(seed=2)[0]
    with torch.no_grad():
        torch.testing.assert_close(ours(x), ref(x), rtol=0, atol=1e-5)


BOXES = torch.tensor(
    [[0, 3.0, 5.0, 40.0, 60.0], [1, 10.0, 0.0, 63.0, 30.0], [0, 0.0, 0.0, 64.0, 64.0]]
)


def test_slowfast_detector_matches_pytorchvideo(randomize_norms):
    """PyTorchVideo's slowfast_r50_detection: torchvision RoIAlign(aligned=False), sigmoid."""
    import pytorchvideo.models.hub as ptv_hub

    ref = randomize_norms(ptv_hub.slowfast_r50_detection(), seed=2).eval()
    ours = models.slowfast_r50_detection(roi_aligned=False, head_activation=nn.Sigmoid).eval()
    ours.load_state_dict(convert.from_pytorchvideo(ref.state_dict()))
    x = _clips(seed=3)
    with torch.no_grad():
        expected = ref([t.clone() for t in x], BOXES)
        got = ours(x, BOXES)
    assert got.shape == (3, 80)
    torch.testing.assert_close(got, expected, rtol=0, atol=1e-5)


def test_slow_detector_matches_pytorchvideo(randomize_norms):
    import pytorchvideo.models.hub as ptv_hub

    ref = randomize_norms(ptv_hub.slow_r50_detection(), seed=4).eval()
    ours = models.slow_r50_detection(roi_aligned=False, head_activation=nn.Sigmoid).eval()
    ours.load_state_dict(convert.from_pytorchvideo(ref.state_dict()))
    x = _clips(slow=4, seed=4)[0]  # the 4x16 detector's clip
    with torch.no_grad():
        torch.testing.assert_close(ours(x, BOXES), ref(x, BOXES), rtol=0, atol=1e-5)


@pytest.mark.parametrize(
    ("ours", "hub", "detection"),
    [
        ("slowfast_r101", "slowfast_r101", False),
        ("slowfast_16x8_r101_50_50", "slowfast_16x8_r101_50_50", False),
        ("slowfast_r50_detection", "slowfast_r50_detection", True),
    ],
)
def test_pytorchvideo_layouts_convert_both_ways(ours, hub, detection):
    """Every key and shape of the larger hub models maps onto ours and back (meta device)."""
    import pytorchvideo.models.hub as ptv_hub

    with torch.device("meta"):
        ref = getattr(ptv_hub, hub)().state_dict()
        mine = getattr(models, ours)().state_dict()
    converted = convert.from_pytorchvideo(ref)
    assert {k: tuple(v.shape) for k, v in converted.items()} == {
        k: tuple(v.shape) for k, v in mine.items()
    }
    assert set(convert.to_pytorchvideo(mine, detection=detection)) == set(ref)
