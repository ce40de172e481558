"""Checkpoints: no DiffMAE weights were released, so the layout MAE-style training code writes
(``checkpoint-N.pth``: {"model", "optimizer", "epoch", "scaler", "args"}) is read, written here
by the test itself, plus safetensors and the Trainer's own checkpoints."""

from __future__ import annotations

import argparse
import collections

import pytest
import torch

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.diffmae.convert import read_checkpoint


class _Arbitrary:
    """A class torch.load(weights_only=True) must not unpickle."""


def _mae_style_checkpoint(path, model, *, ddp: bool = False) -> None:
    """What facebookresearch/mae util/misc.py:save_model writes (args: an argparse.Namespace)."""
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3)
    state = model.state_dict()
    if ddp:
        state = collections.OrderedDict((f"module.{k}", v) for k, v in state.items())
    torch.save(
        {
            "model": state,
            "optimizer": opt.state_dict(),
            "epoch": 799,
            "scaler": {"scale": 65536.0, "growth_factor": 2.0},
            "args": argparse.Namespace(model="mae_vit_large_patch16", mask_ratio=0.75, blr=1.5e-4),
        },
        path,
    )


def test_mae_style_checkpoint_loads_into_the_pretraining_model(tmp_path):
    torch.manual_seed(0)
    source = create_model("diffmae_tiny_mnist")
    path = tmp_path / "checkpoint-799.pth"
    _mae_style_checkpoint(path, source, ddp=True)
    loaded = create_model("diffmae_tiny_mnist", checkpoint_path=path)
    for (k, a), (_, b) in zip(source.state_dict().items(), loaded.state_dict().items()):
        assert torch.equal(a, b), k
    # A freshly built model differs: the load did something.
    torch.manual_seed(1)
    assert not torch.equal(create_model("diffmae_tiny_mnist").blocks[0].attn.qkv.weight,
                           loaded.blocks[0].attn.qkv.weight)  # fmt: skip


def test_the_classifier_takes_the_encoder_of_a_pretraining_checkpoint(tmp_path):
    torch.manual_seed(0)
    source = create_model("diffmae_tiny_mnist_cross")
    path = tmp_path / "checkpoint-0.pth"
    _mae_style_checkpoint(path, source)
    clf = create_model("diffmae_finetune_tiny_mnist", checkpoint_path=path)
    assert torch.equal(clf.pos_embed, source.pos_embed)
    assert torch.equal(clf.blocks[3].mlp.fc1.weight, source.blocks[3].mlp.fc1.weight)
    assert clf(torch.randn(2, 1, 28, 28)).shape == (2, 10)
    # An MAE baseline checkpoint has the same encoder keys.
    mae = create_model("diffmae_mae_tiny_mnist")
    _mae_style_checkpoint(tmp_path / "mae.pth", mae)
    clf2 = create_model("diffmae_finetune_tiny_mnist", checkpoint_path=tmp_path / "mae.pth")
    assert torch.equal(clf2.patch_embed.proj.weight, mae.patch_embed.proj.weight)


def test_safetensors_and_trainer_checkpoints(tmp_path):
    from safetensors.torch import save_file

    torch.manual_seed(0)
    source = create_model("diffmae_mae_tiny_mnist")
    save_file(source.state_dict(), str(tmp_path / "model.safetensors"))
    loaded = create_model("diffmae_mae_tiny_mnist", checkpoint_path=tmp_path / "model.safetensors")
    assert torch.equal(loaded.mask_token, source.mask_token)
    # The Trainer stores the method's state: the model under "model.".
    torch.save({"model": {f"model.{k}": v for k, v in source.state_dict().items()}, "step": 3},
               tmp_path / "step_0000003.pt")  # fmt: skip
    assert set(read_checkpoint(tmp_path / "step_0000003.pt")) == set(source.state_dict())


def test_mismatched_and_unsafe_files_are_refused(tmp_path):
    torch.manual_seed(0)
    path = tmp_path / "checkpoint-1.pth"
    _mae_style_checkpoint(path, create_model("diffmae_tiny_mnist"))
    with pytest.raises(CheckpointMismatchError, match="unexpected keys"):
        create_model("diffmae_mae_tiny_mnist", checkpoint_path=path)  # other decoder
    with pytest.raises(CheckpointMismatchError, match="missing keys"):
        create_model("diffmae_tiny_mnist", checkpoint_path=_without(path, tmp_path, "blocks.1."))
    with pytest.raises(RuntimeError, match="size mismatch"):
        create_model("diffmae_finetune_tiny_video", checkpoint_path=path)
    bad = tmp_path / "pickle.pth"
    torch.save({"model": {}, "extra": _Arbitrary()}, bad)
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        read_checkpoint(bad)


def _without(path, tmp_path, prefix):
    state = torch.load(path, weights_only=False)
    state["model"] = {k: v for k, v in state["model"].items() if not k.startswith(prefix)}
    out = tmp_path / "partial.pth"
    torch.save(state, out)
    return out
