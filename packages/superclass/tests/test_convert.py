"""The layout the official training code writes (epoch_N.pt, step_N.pt with module.) loads
through create_model(..., checkpoint_path=...), at ViT-B/16 and at the tiny size."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.superclass import model as M
from paperzoo.superclass.convert import main, official_to_paperzoo


def _trained_like(model: M.SuperClass) -> M.SuperClass:
    """Give the buffers non-trivial values, as a checkpoint taken mid-training has."""
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():
        model.cap_fq.copy_(torch.rand(model.cap_fq.shape, generator=g, dtype=torch.float64) * 7)
        model.num_samples.fill_(7.0)
    return model


def _official_files(model: M.SuperClass, tmp_path):
    """epoch_1.pt and step_6104.pt as opencls/training writes them (optimizer, scaler too)."""
    opt = torch.optim.AdamW(model.parameters(), lr=5e-4, betas=(0.9, 0.98), eps=1e-6)
    scaler = torch.amp.GradScaler("cpu", enabled=True)
    state = model.state_dict()
    epoch = {"epoch": 1, "name": "cls_vit_b16_s512m_bs16k", "state_dict": state,
             "optimizer": opt.state_dict(), "scaler": scaler.state_dict()}  # fmt: skip
    step = {"step": 6104, "epoch": 0, "name": "cls_vit_b16_s512m_bs16k",
            "state_dict": {f"module.{k}": v for k, v in state.items()},
            "optimizer": opt.state_dict(), "scaler": scaler.state_dict()}  # fmt: skip
    torch.save(epoch, tmp_path / "epoch_1.pt")
    torch.save(step, tmp_path / "step_6104.pt")
    return tmp_path / "epoch_1.pt", tmp_path / "step_6104.pt"


@pytest.mark.parametrize("name", ["superclass_vit_tiny_mnist", "superclass_vit_b16"])
def test_official_epoch_and_step_checkpoints_load(tmp_path, name):
    torch.manual_seed(0)
    source = _trained_like(create_model(name)).eval()
    epoch_file, step_file = _official_files(source, tmp_path)
    size = source.vision_cfg["image_size"]
    x = torch.randn(2, 3, size, size)
    with torch.no_grad():
        expected = source(x)
    for path in (epoch_file, step_file):
        torch.manual_seed(123)  # a different initialisation, overwritten by the file
        loaded = create_model(name, checkpoint_path=path).eval()
        assert torch.equal(loaded.cap_fq, source.cap_fq) and float(loaded.num_samples) == 7.0
        assert loaded.cap_fq.dtype == torch.float64
        with torch.no_grad():
            torch.testing.assert_close(loaded(x), expected, rtol=0, atol=0)


def test_converter_writes_safetensors_and_rejects_other_checkpoints(tmp_path, capsys):
    torch.manual_seed(0)
    source = _trained_like(M.superclass_vit_tiny_mnist())
    _, step_file = _official_files(source, tmp_path)
    out = tmp_path / "converted.safetensors"
    assert main([str(step_file), str(out)]) == 0 and "wrote" in capsys.readouterr().out
    loaded = create_model("superclass_vit_tiny_mnist", checkpoint_path=out)
    assert all(torch.equal(a, b) for a, b in zip(loaded.state_dict().values(),
                                                   source.state_dict().values()))  # fmt: skip
    # A compiled-and-wrapped key prefix is dropped too.
    wrapped = {f"_orig_mod.module.{k}": v for k, v in source.state_dict().items()}
    assert set(official_to_paperzoo({"state_dict": wrapped})) == set(source.state_dict())
    # A CLIP (baseline / LiT) checkpoint is named as such.
    clip = M.superclass_clip_tiny_mnist()
    torch.save({"epoch": 1, "state_dict": clip.state_dict()}, tmp_path / "clip.pt")
    with pytest.raises(CheckpointMismatchError, match="open_clip CLIP checkpoint"):
        create_model("superclass_vit_tiny_mnist", checkpoint_path=tmp_path / "clip.pt")
    # Another size: the error lists the shapes and says which model fits.
    with pytest.raises(CheckpointMismatchError, match=r"shape mismatch.*pick the model"):
        create_model("superclass_vit_s16", checkpoint_path=out)
    # Nothing is unpickled: a file holding an arbitrary object is refused.
    torch.save({"state_dict": source.state_dict(), "args": object()}, tmp_path / "pickled.pt")
    with pytest.raises(CheckpointMismatchError, match="weights_only"):
        create_model("superclass_vit_tiny_mnist", checkpoint_path=tmp_path / "pickled.pt")
