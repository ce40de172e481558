"""Parity with PyTorchVideo 0.1.5: its randomly initialised weights, saved in the model-zoo
layout, load through our converter and give the same outputs (max abs diff <= 1e-5)."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.pytorchvideo import load_pytorchvideo_checkpoint
from paperzoo.pytorchvideo.efficient_x3d import create_efficient_x3d
from paperzoo.pytorchvideo.x3d import create_x3d

hub = pytest.importorskip("pytorchvideo.models.hub")
ref_x3d = pytest.importorskip("pytorchvideo.models.x3d")
ref_efficient = pytest.importorskip("pytorchvideo.models.accelerator.mobile_cpu.efficient_x3d")

TOL = 1e-5


def _check(ref: nn.Module, ours: nn.Module, x: torch.Tensor) -> float:
    ref.eval()
    ours.eval()
    with torch.no_grad():
        expected, got = ref(x), ours(x)
    assert got.shape == expected.shape
    assert expected.std() > 0.05, "outputs too small for the comparison to mean anything"
    diff = (got - expected).abs().max().item()
    assert diff <= TOL, f"max abs diff {diff:.3g} > {TOL}"
    return diff


@pytest.mark.parametrize(
    "name, clip, crop",
    [("x3d_xs", 4, 160), ("x3d_s", 13, 160)],  # the hub builders at their own input sizes
)
def test_hub_x3d_parity_via_create_model(name, clip, crop, randomize, tmp_path):
    torch.manual_seed(0)
    ref = randomize(getattr(hub, name)(pretrained=False, head_activation=None))
    path = tmp_path / f"{name}.pyth"
    torch.save({"model_state": ref.state_dict(), "epoch": 300}, path)  # model-zoo layout
    ours = create_model(name, checkpoint_path=path)
    _check(ref, ours, torch.randn(1 if clip > 4 else 2, 3, clip, crop, crop))


@pytest.mark.parametrize(
    "name, depth_factor",
    [("x3d_m", 2.2), ("x3d_l", 5.0)],  # full-size hub inputs are slow on CPU: small clips
)
def test_x3d_m_l_parity_small_input(name, depth_factor, randomize, tmp_path):
    torch.manual_seed(1)
    kw = dict(input_clip_length=4, input_crop_size=64, depth_factor=depth_factor)
    ref = randomize(ref_x3d.create_x3d(**kw, head_activation=None))
    path = tmp_path / f"{name}.pt"
    torch.save(ref.state_dict(), path)  # plain state dict layout
    ours = create_model(name, checkpoint_path=path, input_clip_length=4, input_crop_size=64)
    _check(ref, ours, torch.randn(2, 3, 4, 64, 64))
    # Same network as the hub builder (the input size only sets the head's pooling window).
    assert ours.state_dict().keys() == create_model(name).state_dict().keys()


def test_softmax_head_matches_pytorchvideo_default(randomize):
    torch.manual_seed(2)
    ref = randomize(ref_x3d.create_x3d(input_clip_length=4, input_crop_size=64))  # softmax head
    ours = create_x3d(input_clip_length=4, input_crop_size=64, head_activation=nn.Softmax)
    from paperzoo.pytorchvideo import convert_x3d_state_dict

    ours.load_state_dict(convert_x3d_state_dict(ref.state_dict()))
    x = torch.randn(2, 3, 4, 64, 64)
    with torch.no_grad():
        probs = ours.eval()(x)
        assert torch.allclose(probs.sum(1), torch.ones(2), atol=1e-5)
        assert (probs - ref.eval()(x)).abs().max() <= 1e-6


@pytest.mark.parametrize(
    "name, expansion, clip", [("efficient_x3d_xs", "XS", 4), ("efficient_x3d_s", "S", 13)]
)
def test_efficient_x3d_parity(name, expansion, clip, randomize, tmp_path):
    torch.manual_seed(3)
    ref = randomize(ref_efficient.create_x3d(expansion=expansion))
    path = tmp_path / f"{name}_original_form.pyth"
    torch.save(ref.state_dict(), path)  # the Accelerator's zoo files are plain state dicts
    ours = create_model(name, checkpoint_path=path)
    _check(ref, ours, torch.randn(2, 3, clip, 64, 64))


def test_efficient_x3d_l_parity(randomize):
    from paperzoo.pytorchvideo import convert_efficient_x3d_state_dict

    ref = randomize(ref_efficient.create_x3d(expansion="L"))
    ours = create_efficient_x3d(expansion="L")
    ours.load_state_dict(convert_efficient_x3d_state_dict(ref.state_dict()))
    _check(ref, ours, torch.randn(1, 3, 4, 64, 64))


def test_our_own_state_dict_loads_back(tmp_path):
    from safetensors.torch import save_file

    model = create_model("x3d_xs", num_classes=10)
    path = tmp_path / "mine.safetensors"
    save_file(model.state_dict(), str(path))
    again = create_model("x3d_xs", num_classes=10, checkpoint_path=path)
    for k, v in model.state_dict().items():
        assert torch.equal(v, again.state_dict()[k]), k


def test_wrong_size_checkpoint_lists_the_keys(tmp_path):
    path = tmp_path / "x3d_l.pyth"
    torch.save({"model_state": hub.x3d_l(pretrained=False).state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match=r"unexpected keys: .*stages\.0\.3\."):
        create_model("x3d_xs", checkpoint_path=path)


def test_wrong_class_count_names_the_shapes(tmp_path):
    path = tmp_path / "x3d_xs.pyth"
    torch.save({"model_state": hub.x3d_xs(pretrained=False).state_dict()}, path)
    with pytest.raises(
        CheckpointMismatchError, match=r"head\.proj\.weight \(400, 2048\) vs \(10, 2048\)"
    ):
        create_model("x3d_xs", num_classes=10, checkpoint_path=path)


def test_wrong_family_is_named(tmp_path):
    path = tmp_path / "eff.pyth"
    torch.save(ref_efficient.create_x3d(expansion="XS").state_dict(), path)
    with pytest.raises(CheckpointMismatchError, match=r"efficient .*efficient_x3d_xs"):
        create_model("x3d_xs", checkpoint_path=path)
    path2 = tmp_path / "x3d.pyth"
    torch.save(hub.x3d_xs(pretrained=False).state_dict(), path2)
    with pytest.raises(CheckpointMismatchError, match="x3d_xs/s/m/l"):
        load_pytorchvideo_checkpoint(create_efficient_x3d(), path2)


def test_unknown_keys_are_reported(tmp_path):
    state = hub.x3d_xs(pretrained=False).state_dict()
    state["blocks.9.extra.weight"] = torch.zeros(1)
    path = tmp_path / "odd.pyth"
    torch.save({"model_state": state}, path)
    with pytest.raises(CheckpointMismatchError, match=r"blocks\.9\.extra\.weight"):
        create_model("x3d_xs", checkpoint_path=path)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pyth"
    torch.save({"model_state": hub.x3d_xs(pretrained=False).state_dict(), "obj": nn.ReLU()}, path)
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        create_model("x3d_xs", checkpoint_path=path)
