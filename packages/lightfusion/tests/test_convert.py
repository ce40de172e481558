"""The official checkpoint layout (``<step:07d>/ema.safetensors`` with the
``vision_language_model.*``, ``vgen_model.*`` and ``vgen_model_cross_att_context`` keys), written
at the tiny size and read back through ``paperzoo.core.create_model``."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import load_file

from paperzoo.core import create_model
from paperzoo.lightfusion.convert import find_official_file, save_official, to_official
from paperzoo.lightfusion.model import lightfusion_tiny

torch.set_num_threads(1)


def _trained_like() -> torch.nn.Module:
    torch.manual_seed(3)
    model = lightfusion_tiny()
    with torch.no_grad():
        for p in model.parameters():
            p.add_(0.01 * torch.randn_like(p))  # non-zero O projections, moved norms
    return model.eval()


def test_official_names_and_shapes():
    model = _trained_like()
    state = to_official(model)
    lm = "vision_language_model.model.language_model."
    assert f"{lm}mm_attn_layers.1.mm_attn.o_gen_proj.weight" in state
    assert f"{lm}mm_attn_layers.0.llm_norm.weight" in state
    assert f"{lm}mm_attn_layers.0.vgen_norm.weight" in state
    assert f"{lm}layers.1.self_attn.q_proj.weight" in state and f"{lm}norm.weight" in state
    assert "vision_language_model.lm_head.weight" in state
    for key in ("blocks.0.self_attn.q.weight", "blocks.0.cross_attn.o.weight",
                "blocks.2.norm3.weight", "blocks.0.ffn.0.weight", "blocks.0.modulation",
                "head.head.weight", "head.modulation", "time_embedding.0.weight",
                "text_embedding.2.bias", "time_projection.1.weight"):  # fmt: skip
        assert f"vgen_model.{key}" in state, key
    assert state["vgen_model.patch_embedding.weight"].shape == (64, 4)  # Linear (D, 2*2*1)
    assert state["vgen_model_cross_att_context"].shape == (4, 32)
    assert not any(".attn1." in k or "condition_embedder" in k for k in state)


def test_the_official_linear_patch_embedding_equals_the_conv():
    model = _trained_like()
    conv = model.vgen_model.patch_embedding
    linear_w = to_official(model)["vgen_model.patch_embedding.weight"]
    x = torch.randn(2, 1, 1, 14, 14)
    c, f, p, h, q, w, r = 1, 1, 1, 7, 2, 7, 2
    # The official patchify: (C, F*p, H*q, W*r) -> tokens (F*H*W, p*q*r*C).
    tokens = torch.einsum("bcfphqwr->bfhwpqrc", x.reshape(2, c, f, p, h, q, w, r))
    tokens = tokens.reshape(2, f * h * w, p * q * r * c)
    expected = conv(x).flatten(2).transpose(1, 2)
    torch.testing.assert_close(tokens @ linear_w.T + conv.bias, expected)


def test_round_trip_through_create_model(tmp_path):
    model = _trained_like()
    file = save_official(model, tmp_path / "checkpoints", 50_000)
    assert file == tmp_path / "checkpoints" / "0050000" / "ema.safetensors"
    save_official(model, tmp_path / "checkpoints", 2_000)
    assert find_official_file(tmp_path / "checkpoints") == file  # the newest step
    assert set(load_file(str(file))) == set(to_official(model))
    loaded = create_model("lightfusion_tiny", checkpoint_path=tmp_path / "checkpoints").eval()
    ref, got = model.state_dict(), loaded.state_dict()
    assert set(ref) == set(got) and all(torch.equal(ref[k], got[k]) for k in ref)
    ids = torch.randint(0, 64, (2, 5))
    x, t = torch.randn(2, 1, 1, 14, 14), torch.rand(2)
    with torch.no_grad():
        assert torch.equal(model(x, t, ids).velocity, loaded(x, t, ids).velocity)


def test_a_checkpoint_with_another_fusion_count_names_the_fix(tmp_path):
    file = save_official(lightfusion_tiny(fusion_mode="min"), tmp_path, 1)  # 1 fusion layer
    with pytest.raises(ValueError, match="fusion_mode='min'"):
        create_model("lightfusion_tiny", checkpoint_path=file)
    state = load_file(str(file))
    state.pop("vgen_model_cross_att_context")
    from safetensors.torch import save_file

    save_file(state, str(tmp_path / "broken.safetensors"))
    with pytest.raises(KeyError, match="vgen_model_cross_att_context"):
        create_model(
            "lightfusion_tiny", fusion_mode="min", checkpoint_path=tmp_path / "broken.safetensors"
        )
