"""Official checkpoint layout -> create_model(checkpoint_path=...), parity with torchvision."""

from __future__ import annotations

import pickle

import pytest
import torch
import torchvision
from torch import nn

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.mocov2.convert import main as convert_main
from paperzoo.mocov2.convert import to_detectron2_state_dict, to_torchvision_state_dict


def _randomise_bn_stats(model: nn.Module, generator: torch.Generator) -> None:
    # Fresh BN running stats are 0/1, which would hide a mix-up of running_mean/var.
    for m in model.modules():
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)
            m.weight.data.copy_(torch.rand(m.weight.shape, generator=generator) + 0.5)
            m.bias.data.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)


def _official_layout(reference: nn.Module, generator: torch.Generator) -> dict:
    """The dict main_moco.py saves, built by hand from a torchvision ResNet-50.

    ``module.encoder_q.*`` = the torchvision weights (fc replaced by the MLP head fc.0/fc.2),
    ``module.encoder_k.*`` = other random weights, plus queue, queue_ptr, epoch, arch, optimizer.
    """
    state = {}
    backbone = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}
    head = {
        "fc.0.weight": torch.randn(2048, 2048, generator=generator) * 0.01,
        "fc.0.bias": torch.randn(2048, generator=generator) * 0.01,
        "fc.2.weight": torch.randn(128, 2048, generator=generator) * 0.01,
        "fc.2.bias": torch.randn(128, generator=generator) * 0.01,
    }
    for k, v in {**backbone, **head}.items():
        state[f"module.encoder_q.{k}"] = v.clone()
        noise = (
            torch.randn(v.shape, generator=generator)
            if v.is_floating_point()
            else torch.zeros_like(v)
        )
        state[f"module.encoder_k.{k}"] = (
            v.clone() + noise * 0.01 if v.is_floating_point() else v.clone()
        )
    queue = nn.functional.normalize(torch.randn(128, 65536, generator=generator), dim=0)
    state["module.queue"] = queue
    state["module.queue_ptr"] = torch.tensor([4096], dtype=torch.long)
    return {
        "epoch": 800,
        "arch": "resnet50",
        "state_dict": state,
        "optimizer": {
            "state": {},
            "param_groups": [{"lr": 0.0, "momentum": 0.9, "params": [0, 1]}],
        },
    }


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    reference = torchvision.models.resnet50()
    _randomise_bn_stats(reference, generator)
    ckpt = _official_layout(reference, generator)
    path = tmp_path_factory.mktemp("official") / "moco_v2_800ep_pretrain.pth.tar"
    torch.save(ckpt, path)
    return path, reference.eval(), ckpt


def test_official_checkpoint_features_equal_torchvision(official):
    path, reference, ckpt = official
    model = create_model("mocov2_resnet50", checkpoint_path=path).eval()
    x = torch.randn(2, 3, 96, 96, generator=torch.Generator().manual_seed(1))
    reference.fc = nn.Identity()
    with torch.no_grad():
        ours = model.forward_features(x)
        theirs = reference(x)
    assert ours.shape == (2, 2048)
    torch.testing.assert_close(ours, theirs, rtol=0, atol=0)
    # Everything else came along: key encoder, queue and pointer.
    sd = ckpt["state_dict"]
    assert torch.equal(
        model.encoder_k.layer3[2].conv2.weight, sd["module.encoder_k.layer3.2.conv2.weight"]
    )
    assert torch.equal(model.encoder_q.fc[2].weight, sd["module.encoder_q.fc.2.weight"])
    assert torch.equal(model.queue, sd["module.queue"])
    assert int(model.queue_ptr) == 4096


def test_torchvision_export_round_trips(official, tmp_path):
    path, reference, _ = official
    out = tmp_path / "r50.safetensors"
    assert convert_main([str(path), str(out)]) == 0
    from safetensors.torch import load_file

    tv = torchvision.models.resnet50()
    missing, unexpected = tv.load_state_dict(load_file(str(out)), strict=False)
    assert sorted(missing) == ["fc.bias", "fc.weight"] and unexpected == []
    tv.fc = nn.Identity()
    reference.fc = nn.Identity()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(tv.eval()(x), reference(x), rtol=0, atol=0)


def test_detectron2_names_follow_the_official_converter(official):
    _, _, ckpt = official
    d2 = to_detectron2_state_dict(ckpt)
    assert d2["__author__"] == "MOCO" and d2["matching_heuristics"] is True
    names = d2["model"]
    assert "stem.conv1.weight" in names and "stem.conv1.norm.running_var" in names
    assert "res2.0.conv1.norm.weight" in names and "res5.2.conv3.weight" in names
    assert "res3.0.shortcut.weight" in names and "res3.0.shortcut.norm.bias" in names
    assert not any(k.startswith(("fc", "layer", "bn1")) for k in names)
    assert len(names) == len(to_torchvision_state_dict(ckpt))
    pickle.dumps(d2)  # it is written as the .pkl detectron2 reads


def test_checkpoint_from_another_model_lists_mismatched_keys(tmp_path):
    # An official-style file, but with ResNet-18 encoders (a different model).
    small = create_model("mocov2_resnet18_cifar", queue_size=65536)
    path = tmp_path / "other.pth.tar"
    torch.save(
        {"epoch": 1, "state_dict": {f"module.{k}": v for k, v in small.state_dict().items()}}, path
    )
    with pytest.raises(CheckpointMismatchError) as info:
        create_model("mocov2_resnet50", checkpoint_path=path)
    msg = str(info.value)
    # The core lists the first keys of each kind in sorted order, then "(N more)".
    assert "missing keys: encoder_k.layer1.0.bn3.bias" in msg
    assert (
        "shape mismatch" in msg and "encoder_k.conv1.weight (64, 3, 3, 3) vs (64, 3, 7, 7)" in msg
    )
    assert "more)" in msg


def test_v1_checkpoint_into_v2_model_names_the_head(tmp_path):
    v1 = create_model("mocov2_resnet10_narrow", mlp=False, queue_size=256)
    path = tmp_path / "v1.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in v1.state_dict().items()}}, path)
    with pytest.raises(CheckpointMismatchError) as info:
        create_model("mocov2_resnet10_narrow", queue_size=256, checkpoint_path=path)
    msg = str(info.value)
    assert "encoder_q.fc.0.weight" in msg and "encoder_q.fc.weight" in msg
    assert "linear head" in msg and "mlp=False" in msg


def test_plain_resnet_state_dict_gets_a_hint(tmp_path):
    path = tmp_path / "lincls.pth.tar"
    torch.save({"state_dict": torchvision.models.resnet18().state_dict()}, path)
    with pytest.raises(CheckpointMismatchError, match="plain ResNet state dict"):
        create_model("mocov2_resnet10_narrow", checkpoint_path=path)


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "evil.pth.tar"
    torch.save({"state_dict": {}, "hook": nn.ReLU()}, path)  # a module object, not plain data
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        create_model("mocov2_resnet10_narrow", checkpoint_path=path)
