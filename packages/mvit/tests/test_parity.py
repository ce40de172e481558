"""Parity: the reference implementations' randomly initialised weights, loaded through our
converters, give the same outputs (to 1e-5).

The references are built for short, small clips where their builders allow it (same code path,
smaller position tables) to keep the CPU budget; one full 16x224^2 check runs in the slow session.
"""

from __future__ import annotations

import pytest
import torch

from paperzoo.core import create_model
from paperzoo.core.checkpoint import load_state_dict_strict
from paperzoo.mvit import model as M
from paperzoo.mvit.convert import convert_state_dict, detect_format

ATOL = 1e-5


def _compare(reference: torch.nn.Module, ours: torch.nn.Module, x: torch.Tensor, fmt: str) -> None:
    reference.eval()
    ours.eval()
    state = reference.state_dict()
    assert detect_format(state) == fmt
    load_state_dict_strict(ours, convert_state_dict(state))
    with torch.no_grad():
        expected, got = reference(x), ours(x)
    assert got.shape == expected.shape
    torch.testing.assert_close(got, expected, atol=ATOL, rtol=0)


def test_pytorchvideo_mvit_base_16x4_through_create_model(tmp_path):
    from pytorchvideo.models.hub import vision_transformers as ptv

    torch.manual_seed(0)
    reference = ptv.mvit_base_16x4(spatial_size=32, temporal_size=4).eval()
    path = tmp_path / "ptv_mvit_b_16x4.pyth"
    torch.save({"model_state": reference.state_dict()}, path)  # the hub checkpoints' layout
    ours = create_model(
        "mvit_base_16x4", checkpoint_path=path, spatial_size=32, temporal_size=4
    ).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=ATOL, rtol=0)
    # Same gradients too (training goes through the kernels' attention backward).
    y = torch.tensor([3, 7])
    for model in (reference, ours):
        torch.nn.functional.cross_entropy(model(x), y).backward()
    expected = convert_state_dict({k: p.grad for k, p in reference.named_parameters()})
    for name, param in ours.named_parameters():
        torch.testing.assert_close(param.grad, expected[name], atol=1e-4, rtol=1e-4, msg=name)


def test_pytorchvideo_image_mvit_b():
    from pytorchvideo.models.hub import vision_transformers as ptv

    torch.manual_seed(1)
    reference = ptv.mvit_base_16(spatial_size=32, head_num_classes=1000)
    _compare(reference, M.mvit_base_224(spatial_size=32), torch.randn(2, 3, 32, 32), "pytorchvideo")


def test_torchvision_mvit_v1_b(small_torchvision_mvit):
    tv = small_torchvision_mvit(32, 4)
    torch.manual_seed(2)
    reference = tv.mvit_v1_b()
    # torchvision's port builds the pooling norms with eps 1e-6 (the original v1 code: 1e-5).
    ours = M.mvit_base_16x4(spatial_size=32, temporal_size=4, pool_norm_eps=1e-6)
    _compare(reference, ours, torch.randn(2, 3, 4, 32, 32), "torchvision")


def test_torchvision_mvit_v2_s(small_torchvision_mvit):
    tv = small_torchvision_mvit(32, 4)
    torch.manual_seed(3)
    reference = tv.mvit_v2_s()
    ours = M.mvitv2_small_16x4(spatial_size=32, temporal_size=4)
    _compare(reference, ours, torch.randn(2, 3, 4, 32, 32), "torchvision")


def test_timm_mvitv2_tiny():
    import timm

    torch.manual_seed(4)
    reference = timm.create_model("mvitv2_tiny", img_size=32)
    _compare(reference, M.mvitv2_tiny(spatial_size=32), torch.randn(2, 3, 32, 32), "timm")


@pytest.mark.slow
def test_torchvision_mvit_v1_b_full_size():
    """The real 16x224^2 model, with torchvision's own constructor untouched (~70 GMACs/clip)."""
    import torchvision.models.video as tvv

    torch.manual_seed(5)
    reference = tvv.mvit_v1_b()
    ours = M.mvit_base_16x4(pool_norm_eps=1e-6)
    _compare(reference, ours, torch.randn(1, 3, 16, 224, 224), "torchvision")


@pytest.mark.slow
@pytest.mark.parametrize("name", ["mvitv2_small", "mvitv2_base"])
def test_timm_mvitv2_full_size(name):
    import timm

    torch.manual_seed(6)
    reference = timm.create_model(name)
    _compare(reference, getattr(M, name)(), torch.randn(1, 3, 224, 224), "timm")
