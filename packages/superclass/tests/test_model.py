"""The model: official parameter counts and keys, average pooling, the CLIP baseline's tower,
and the LiT stage."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core import create_model, get_model
from paperzoo.superclass import model as M
from paperzoo.superclass.method import ClipMethod

# Counted from the official code: open_clip.create_model("CLS-ViT-*") of x-cls/superclass
# (its own open_clip fork), parameters only (the two float64 buffers are not parameters).
OFFICIAL_PARAMS = {
    "superclass_vit_b16": 123_795_712,
    "superclass_vit_l16": 353_947_904,
    "superclass_vit_l14": 353_825_024,
}
OFFICIAL_TOWER_PARAMS = {  # model.visual alone
    "superclass_vit_b16": 85_799_424,
    "superclass_vit_l16": 303_302_656,
    "superclass_vit_l14": 303_179_776,
}


def _count(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


@pytest.mark.parametrize("name", sorted(OFFICIAL_PARAMS))
def test_parameter_counts_equal_the_official_code(name):
    with torch.device("meta"):  # counts without allocating 354M parameters
        model = create_model(name)
    assert _count(model) == OFFICIAL_PARAMS[name] == get_model(name).num_params
    assert _count(model.visual) == OFFICIAL_TOWER_PARAMS[name]
    width = model.num_features
    # The head is LayerNorm(width) -> Linear(width, 49,408) with bias, as MixClsHead(layers=0).
    assert _count(model.text_decoder) == 2 * width + width * 49_408 + 49_408


def test_other_sizes_match_their_specs():
    for name in ("superclass_vit_s16", "superclass_vit_tiny_mnist", "superclass_clip_vit_b16",
                 "superclass_clip_tiny_mnist"):  # fmt: skip
        with torch.device("meta"):
            model = create_model(name)
        assert _count(model) == get_model(name).num_params, name


def test_state_dict_is_the_official_layout():
    with torch.device("meta"):
        model = M.superclass_vit_b16()
    state = model.state_dict()
    assert state["cap_fq"].dtype == torch.float64 and tuple(state["cap_fq"].shape) == (1, 49408)
    assert state["num_samples"].dtype == torch.float64 and tuple(state["num_samples"].shape) == (
        1,
        1,
    )
    assert tuple(state["text_decoder.text_projection.weight"].shape) == (49408, 768)
    assert "text_decoder.text_projection.bias" in state and "text_decoder.ln_mlp.weight" in state
    assert "visual.proj" not in state  # embed_dim 0 in CLS-ViT-B-16.json: no projection
    block = "visual.transformer.resblocks.11."
    for key in ("ln_1.weight", "attn.in_proj_weight", "attn.in_proj_bias", "attn.out_proj.weight",
                "ln_2.bias", "mlp.c_fc.weight", "mlp.c_proj.weight"):  # fmt: skip
        assert block + key in state, key
    for key in ("visual.class_embedding", "visual.positional_embedding", "visual.conv1.weight",
                "visual.ln_pre.weight", "visual.ln_post.bias"):  # fmt: skip
        assert key in state
    assert len(state) == 157  # the official Classifier's state dict has 157 entries


def test_features_are_the_mean_of_the_normalised_patch_tokens():
    torch.manual_seed(0)
    model = M.superclass_vit_tiny_mnist().eval()
    x = torch.randn(3, 3, 28, 28)
    with torch.no_grad():
        pooled = model.forward_features(x)
        tokens = model.forward_intermediates(
            x, indices=1, normalize_intermediates=True, output_fmt="NLC", intermediates_only=True
        )["image_intermediates"][-1]  # the last block's patch tokens after ln_post, no class token
        logits = model(x)
    assert tuple(pooled.shape) == (3, 64) and tuple(tokens.shape) == (3, 16, 64)
    torch.testing.assert_close(pooled, tokens.mean(dim=1), rtol=1e-5, atol=1e-6)
    head = model.text_decoder
    expected = torch.nn.functional.linear(
        torch.nn.functional.layer_norm(pooled, (64,), head.ln_mlp.weight, head.ln_mlp.bias),
        head.text_projection.weight, head.text_projection.bias,
    )  # fmt: skip
    torch.testing.assert_close(logits, expected)


def test_the_clip_baseline_has_the_same_image_tower():
    torch.manual_seed(0)
    sc, clip = M.superclass_vit_tiny_mnist(), M.superclass_clip_tiny_mnist()
    ours = sc.visual.state_dict()
    theirs = clip.visual.state_dict()
    assert set(theirs) - set(ours) == {"proj"} and set(ours) <= set(theirs)
    assert all(ours[k].shape == theirs[k].shape for k in ours)
    # With the same weights, the pooled features before the projection are the same function.
    clip.visual.load_state_dict({**ours, "proj": theirs["proj"]})
    x = torch.randn(2, 3, 28, 28)
    with torch.no_grad():
        torch.testing.assert_close(M.pooled_image_features(clip.visual, x), sc.forward_features(x))
        assert clip.visual(x).shape == (2, 64)  # the projection is back after the probe
    assert isinstance(clip, __import__("open_clip").CLIP)


def test_lit_locks_the_superclass_tower_but_its_projection():
    torch.manual_seed(0)
    sc = M.superclass_vit_tiny_mnist()
    lit = M.lit_from_superclass(sc, "tiny_mnist", 64)
    trainable = {n for n, p in lit.named_parameters() if p.requires_grad}
    assert "visual.proj" in trainable
    assert not any(n.startswith("visual.") and n != "visual.proj" for n in trainable)
    assert {"token_embedding.weight", "text_projection", "logit_scale"} <= trainable
    before = {k: v.clone() for k, v in lit.visual.state_dict().items()}
    for k, v in sc.visual.state_dict().items():
        assert torch.equal(before[k], v), k  # the SuperClass weights were loaded
    method = ClipMethod(lit)
    opt = torch.optim.AdamW([p for p in lit.parameters() if p.requires_grad], lr=1e-2)
    batch = (torch.randn(8, 3, 28, 28), torch.randint(1, 49406, (8, 32)))
    for step in range(2):
        loss = method.training_step(batch, step)["loss"]
        opt.zero_grad()
        loss.backward()
        opt.step()
    after = lit.visual.state_dict()
    assert not torch.equal(after["proj"], before["proj"])
    assert all(torch.equal(after[k], before[k]) for k in before if k != "proj")


def test_lit_refuses_a_tower_that_does_not_fit():
    sc = M.superclass_vit_tiny_mnist()
    sc.vision_cfg = {**sc.vision_cfg, "layers": 3}  # a CLIP tower one block short
    with pytest.raises(RuntimeError, match="does not fit"):
        M.lit_from_superclass(sc, "tiny_mnist", 64)
