"""The six official checkpoints' layout loads through create_model(checkpoint_path=...)."""

from __future__ import annotations

import pytest
import torch
import torchvision
from torch import nn

from paperzoo.core import create_model, get_model
from paperzoo.core.checkpoint import CheckpointMismatchError


def _official_checkpoint(reference: nn.Module, generator: torch.Generator) -> dict:
    """What main_moco.py saves: {"epoch", "arch", "state_dict", "optimizer"} with DDP keys.

    ``module.encoder_q.*`` = the torchvision ResNet-50 weights plus the projector fc.0 (Linear),
    fc.1 (BatchNorm1d), fc.3 (Linear), fc.5 (Linear); ``module.encoder_k.*`` = other values;
    ``module.queue`` (128, 65536) and ``module.queue_ptr``.
    """
    backbone = {k: v for k, v in reference.state_dict().items() if not k.startswith("fc.")}

    def rand(*shape: int) -> torch.Tensor:
        return torch.randn(*shape, generator=generator) * 0.01

    head = {
        "fc.0.weight": rand(2048, 2048), "fc.0.bias": rand(2048),
        "fc.1.weight": rand(2048) + 1, "fc.1.bias": rand(2048),
        "fc.1.running_mean": rand(2048), "fc.1.running_var": rand(2048).abs() + 1,
        "fc.1.num_batches_tracked": torch.tensor(1000),
        "fc.3.weight": rand(2048, 2048), "fc.3.bias": rand(2048),
        "fc.5.weight": rand(128, 2048), "fc.5.bias": rand(128),
    }  # fmt: skip
    state = {}
    for k, v in {**backbone, **head}.items():
        state[f"module.encoder_q.{k}"] = v.clone()
        state[f"module.encoder_k.{k}"] = v + rand(*v.shape) if v.is_floating_point() else v.clone()
    state["module.queue"] = nn.functional.normalize(
        torch.randn(128, 65536, generator=generator), dim=0
    )
    state["module.queue_ptr"] = torch.tensor([256], dtype=torch.long)
    return {
        "epoch": 100,
        "arch": "resnet50",
        "state_dict": state,
        "optimizer": {"state": {}, "param_groups": []},
    }


@pytest.fixture(scope="module")
def official(tmp_path_factory):
    gen = torch.Generator().manual_seed(0)
    reference = torchvision.models.resnet50().eval()
    for m in reference.modules():  # non-trivial BN statistics, so a mix-up would show
        if isinstance(m, nn.BatchNorm2d):
            m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=gen) * 0.1)
            m.running_var.copy_(torch.rand(m.running_var.shape, generator=gen) + 0.5)
    path = tmp_path_factory.mktemp("ckpt") / "checkpoint_asym_bn_100ep.pth"
    ckpt = _official_checkpoint(reference, gen)
    torch.save(ckpt, path)
    return reference, path, ckpt


def test_official_layout_loads_and_features_equal_torchvision(official):
    reference, path, ckpt = official
    model = create_model("asymsiam_resnet50", checkpoint_path=path).eval()
    x = torch.randn(2, 3, 64, 64)
    reference.fc = nn.Identity()
    with torch.no_grad():
        torch.testing.assert_close(model.forward_features(x), reference(x), rtol=1e-4, atol=1e-4)
        # The projector, the key encoder and the queue came from the file too.
        torch.testing.assert_close(
            model.encoder_q.fc[5].weight, ckpt["state_dict"]["module.encoder_q.fc.5.weight"]
        )
        torch.testing.assert_close(
            model.encoder_k.fc[1].running_var,
            ckpt["state_dict"]["module.encoder_k.fc.1.running_var"],
        )
    assert int(model.queue_ptr) == 256


def test_a_moco_v2_checkpoint_is_refused_with_the_keys_that_differ(tmp_path):
    moco = create_model("mocov2_resnet50")
    path = tmp_path / "moco_v2.pth.tar"
    torch.save({"state_dict": {f"module.{k}": v for k, v in moco.state_dict().items()}}, path)
    with pytest.raises(CheckpointMismatchError, match=r"fc\.1\.running_mean|fc\.5\.weight"):
        create_model("asymsiam_resnet50", checkpoint_path=path)


def test_the_six_official_releases_are_listed():
    urls = get_model("asymsiam_resnet50").pretrained
    assert sorted(urls) == sorted(
        ["baseline", "multicrop", "scalemix", "asym_aug", "asym_bn", "mean_enc"]
    )
    assert urls["asym_aug"].endswith("/checkpoint_aug_100ep.pth")
