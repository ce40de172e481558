"""The fusion itself: exact equality with the two base models at initialisation (real
transformers Qwen2 / Llama LMs and a diffusers Wan DiT built offline from tiny configs), the
zero-initialised O projections, the frozen understanding tower, and the official layer pairing."""

from __future__ import annotations

import pytest
import torch

from paperzoo.lightfusion.model import (
    PAPER_FUSION_PARAMS,
    LightFusion,
    fusion_params,
    lightfusion_tiny,
    pair_layers,
    tiny_dit,
)
from paperzoo.lightfusion.plugin import PARAMS

torch.set_num_threads(1)


def _inputs(batch: int = 3, text: int = 7, vocab: int = 64):
    g = torch.Generator().manual_seed(0)
    ids = torch.randint(0, vocab, (batch, text), generator=g)
    mask = torch.ones(batch, text, dtype=torch.long)
    mask[1, 5:] = 0  # one right-padded prompt
    x = torch.randn(batch, 1, 1, 14, 14, generator=g)
    t = torch.rand(batch, generator=g)
    return ids, mask, x, t


def _base_outputs(model: LightFusion, ids, mask, x, t):
    lm = model.vision_language_model
    hidden = lm.model(input_ids=ids, attention_mask=mask).last_hidden_state
    logits = lm(input_ids=ids, attention_mask=mask).logits
    v = model.vgen_model(x, t * 1000, model.context(x.shape[0])).sample
    return hidden, logits, v


@pytest.mark.parametrize("mode", ["max", "min"])
def test_fused_model_equals_the_two_base_models_at_init(mode):
    torch.manual_seed(0)
    model = lightfusion_tiny(fusion_mode=mode).eval()
    ids, mask, x, t = _inputs()
    with torch.no_grad():
        out = model(x, t, ids, mask, return_logits=True)
        hidden, logits, v = _base_outputs(model, ids, mask, x, t)
    assert torch.equal(out.velocity, v)
    assert torch.equal(out.und_hidden, hidden)
    assert torch.equal(out.logits, logits)
    # The test can fail: non-zero O projections change both streams.
    for layer in model.mm_attn_layers:
        torch.nn.init.normal_(layer.mm_attn.o_gen_proj.weight, std=0.1)
        torch.nn.init.normal_(layer.mm_attn.o_und_proj.weight, std=0.1)
    with torch.no_grad():
        moved = model(x, t, ids, mask)
    assert (moved.velocity - v).abs().max() > 1e-4
    assert (moved.und_hidden - hidden).abs().max() > 1e-4


def test_fusion_with_a_llama_lm_equals_the_base_models():
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(1)
    cfg = LlamaConfig(
        vocab_size=64,
        hidden_size=48,
        intermediate_size=96,
        num_hidden_layers=4,
        num_attention_heads=4,
        num_key_value_heads=4,
        max_position_embeddings=64,
    )
    model = LightFusion(LlamaForCausalLM(cfg), tiny_dit(), context_len=4).eval()
    assert [s[2] for s in model.steps] == [0, 1, 2, None]  # max(4, 3) - 1 = 3 fusion layers
    ids, mask, x, t = _inputs()
    with torch.no_grad():
        out = model(x, t, ids, mask, return_logits=True)
        hidden, logits, v = _base_outputs(model, ids, mask, x, t)
    assert torch.equal(out.velocity, v) and torch.equal(out.und_hidden, hidden)
    assert torch.equal(out.logits, logits)


def test_output_projections_are_zero_and_the_rest_is_not():
    model = lightfusion_tiny()
    assert len(model.mm_attn_layers) == 2
    for layer in model.mm_attn_layers:
        a = layer.mm_attn
        assert a.o_und_proj.bias is None and a.o_gen_proj.bias is None
        assert not a.o_und_proj.weight.any() and not a.o_gen_proj.weight.any()
        assert a.q_gen_proj.weight.abs().sum() > 0 and a.k_und_proj.bias is not None
        assert a.q_norm.weight.shape == (a.head_dim,)  # QK-norm over the head dimension


def test_gradients_reach_the_fusion_and_the_dit_but_not_the_frozen_lm():
    torch.manual_seed(0)
    model = lightfusion_tiny()
    model.freeze_understanding()
    model.train()
    assert not model.vision_language_model.training
    ids, mask, x, t = _inputs()
    out = model(x, t, ids, mask)
    out.velocity.square().mean().backward()
    lm = model.vision_language_model
    assert all(p.grad is None for p in lm.parameters())
    for layer in model.mm_attn_layers:
        a = layer.mm_attn
        assert a.o_und_proj.weight.grad is None and not a.o_und_proj.weight.requires_grad
        assert a.o_gen_proj.weight.grad.abs().sum() > 0
    # The latents attend to the text: the text-side K/V of the first fusion layer get gradients
    # once the O projection into the latent stream is non-zero.
    first = model.mm_attn_layers[0].mm_attn
    assert model.vgen_model.blocks[0].attn1.to_q.weight.grad.abs().sum() > 0
    assert model.vgen_model_cross_att_context.grad is not None
    model.zero_grad(set_to_none=True)
    torch.nn.init.normal_(first.o_gen_proj.weight, std=0.1)
    model(x, t, ids, mask).velocity.square().mean().backward()
    assert first.k_und_proj.weight.grad.abs().sum() > 0
    assert first.v_und_proj.weight.grad.abs().sum() > 0
    assert all(p.grad is None for p in lm.parameters())


def test_the_official_pairing_of_28_vlm_layers_with_30_dit_blocks():
    steps = pair_layers(28, 30, mode="max")
    assert len(steps) == 30
    assert steps[0] == (0, 0, 0) and steps[27] == (27, 27, 27)
    assert steps[28] == (None, 28, 28)  # the VLM stream is carried through
    assert steps[29] == (None, 29, None)
    assert sum(s[2] is not None for s in steps) == 29
    low = pair_layers(28, 30, mode="min")
    assert sum(s[2] is not None for s in low) == 27 and low[26] == (26, 26, 26)
    assert low[27] == (27, 27, None)
    lead = pair_layers(4, 3, standalone=1)
    assert lead[0] == (0, None, None) and lead[1] == (1, 0, 0) and lead[-1] == (3, 2, 2)
    with pytest.raises(ValueError, match="mode"):
        pair_layers(2, 2, mode="avg")


def test_parameter_counts():
    model = lightfusion_tiny()
    assert sum(p.numel() for p in model.parameters()) == PARAMS["lightfusion_tiny"]
    fusion = sum(p.numel() for p in model.mm_attn_layers.parameters())
    assert fusion == fusion_params(64, 64, 2, heads=2)
    # The paper's pair: Qwen2.5-VL-7B (hidden 3584) + Wan2.2-5B (3072, 24 heads), 29 layers.
    assert PAPER_FUSION_PARAMS["max"] == fusion_params(3584, 3072, 29, heads=24)
    assert PAPER_FUSION_PARAMS["max"] == 29 * PAPER_FUSION_PARAMS["min"] // 27


def test_fsdp_units_are_the_blocks():
    model = lightfusion_tiny()
    units = model.fsdp_modules()
    assert len(units) == 2 + 3 + 2
    assert units[-1] is model.mm_attn_layers[-1]


def _tiny_qwen25_vl():
    from transformers import Qwen2_5_VLConfig, Qwen2_5_VLForConditionalGeneration

    cfg = Qwen2_5_VLConfig(
        text_config=dict(vocab_size=64, hidden_size=48, intermediate_size=96,
                         num_hidden_layers=2, num_attention_heads=4, num_key_value_heads=2,
                         rope_parameters={"rope_type": "default", "rope_theta": 1e6,
                                          "mrope_section": [2, 2, 2]}),
        vision_config=dict(depth=1, hidden_size=32, intermediate_size=64, num_heads=2,
                           out_hidden_size=48, fullatt_block_indexes=[0]),
    )  # fmt: skip
    return Qwen2_5_VLForConditionalGeneration(cfg)


def test_fusion_with_a_qwen25_vl_tower_equals_the_base_models():
    torch.manual_seed(2)
    model = LightFusion(_tiny_qwen25_vl(), tiny_dit(), context_len=4).eval()
    assert len(model.mm_attn_layers) == 2  # max(2, 3) - 1
    ids, _, x, t = _inputs()
    with torch.no_grad():
        out = model(x, t, ids, return_logits=True)
        ref = model.vision_language_model(input_ids=ids)
        hidden = model.vision_language_model.model(input_ids=ids).last_hidden_state
        v = model.vgen_model(x, t * 1000, model.context(x.shape[0])).sample
    assert torch.equal(out.velocity, v) and torch.equal(out.und_hidden, hidden)
    assert torch.equal(out.logits, ref.logits)
