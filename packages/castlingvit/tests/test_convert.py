"""Checkpoints: no Castling weights were released. The official block's state dict (its names:
qkv, proj, dconv) loads into ours unchanged, and whole-model files in the layouts DeiT's and
DDP's training code write load through create_model(checkpoint_path=...)."""

from __future__ import annotations

import pytest
import torch

from paperzoo.castlingvit.model import CastlingAttention
from paperzoo.core import create_model
from paperzoo.core.checkpoint import load_state_dict_strict
from paperzoo.kernels import LinearAngularAttention


def _official_layout(dim: int, heads: int, qkv_bias: bool) -> dict[str, torch.Tensor]:
    """A state dict written out by hand in the official ``LinAngularAttention`` layout."""
    g = torch.Generator().manual_seed(0)
    state = {
        "qkv.weight": torch.randn(3 * dim, dim, generator=g),
        "proj.weight": torch.randn(dim, dim, generator=g),
        "proj.bias": torch.randn(dim, generator=g),
        "dconv.weight": torch.randn(heads, 1, 9, 1, generator=g),
    }
    if qkv_bias:
        state["qkv.bias"] = torch.randn(3 * dim, generator=g)
    return state


@pytest.mark.parametrize("qkv_bias", [False, True])
def test_official_block_layout_loads_strictly(qkv_bias):
    state = _official_layout(64, 4, qkv_bias)
    for block in (
        LinearAngularAttention(64, num_heads=4, qkv_bias=qkv_bias),
        CastlingAttention(64, num_heads=4, qkv_bias=qkv_bias),
    ):
        load_state_dict_strict(block, state)
        assert torch.equal(block.dconv.weight, state["dconv.weight"])


@pytest.mark.parametrize("sparse_reg", [False, True])
def test_matches_the_official_module_with_its_weights(official_attention, sparse_reg):
    """Parity with GATECH-EIC/Castling-ViT attention.py (read from the local mirror)."""
    torch.manual_seed(0)
    official = official_attention.LinAngularAttention(
        in_channels=64, num_heads=8, qkv_bias=False, sparse_reg=sparse_reg
    ).eval()
    ours = LinearAngularAttention(64, num_heads=8, sparse_reg=sparse_reg).eval()
    load_state_dict_strict(ours, official.state_dict())
    # peaky attention (scaled inputs), so that the 0.02 mask keeps some weights
    x = 3 * torch.randn(2, 49, 64)
    with torch.no_grad():
        want, got = official(x), ours(x)
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-5)
    if sparse_reg:
        ours.castle()
        with torch.no_grad():
            assert not torch.allclose(ours(x), want, atol=1e-3)  # the branch was active


@pytest.mark.parametrize("layout", ["plain", "deit_main", "ddp"])
def test_whole_model_checkpoints_load(tmp_path, layout):
    torch.manual_seed(0)
    source = create_model("castling_vit_tiny_mnist")
    state = source.state_dict()
    if layout == "ddp":
        state = {f"module.{k}": v for k, v in state.items()}
    payload = {"model": state, "epoch": 3} if layout == "deit_main" else state
    path = tmp_path / "ckpt.pth"
    torch.save(payload, path)
    loaded = create_model("castling_vit_tiny_mnist", checkpoint_path=path)
    x = torch.randn(2, 1, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(loaded.eval()(x), source.eval()(x))


def test_safetensors_and_a_wrong_file_is_refused(tmp_path):
    from safetensors.torch import save_file

    model = create_model("vit_tiny_mnist")
    save_file(model.state_dict(), tmp_path / "m.safetensors")
    create_model("vit_tiny_mnist", checkpoint_path=tmp_path / "m.safetensors")
    with pytest.raises(Exception, match="dconv"):  # a softmax ViT has no dconv weights
        create_model("castling_vit_tiny_mnist", checkpoint_path=tmp_path / "m.safetensors")
