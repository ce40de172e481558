"""paperzoo.gen.dit: official key names, parameter counts, conditioning, repeat, discriminator."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from paperzoo.gen.dit import (
    DIT_SIZES,
    DiT,
    DiTDiscriminator,
    TimestepEmbedder,
    dit_kwargs,
    dit_tiny,
    sincos_pos_embed_2d,
)

torch.set_num_threads(1)

TINY = dict(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10)


def _count(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def _meta(**kwargs) -> DiT:
    with torch.device("meta"):
        return DiT(**kwargs)


def _randomize(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random weights everywhere (DiT's init zeroes the adaLN and output layers)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if name != "pos_embed":
                p.copy_(torch.randn(p.shape, generator=g) * 0.1)
    return model


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        # DiT paper Table 1 / the official models: S/2 33M, B/2 130M, L/2 458M, XL/2 675M.
        ("S", 32_963_360),
        ("B", 130_512_416),
        ("L", 458_102_816),
        ("XL", 675_129_632),
    ],
)
def test_official_parameter_counts(size, expected):
    assert _count(_meta(**dit_kwargs(size))) == expected


def test_advflow_sizes_round_to_the_paper():
    # advflow README: B/2 130M, M/2 306M, L/2 457M, XL/2 673M (1-NFE: no t_embedder, 4 out
    # channels, 1000 rows); 675M with the time embedder.
    def millions(size, **kw):
        kw = dict(learn_sigma=False, class_dropout_prob=0.0, time_embedder=False) | kw
        return round(_count(_meta(**dit_kwargs(size, **kw))) / 1e6)

    assert [millions(s) for s in ("B", "M", "L", "XL")] == [130, 306, 457, 673]
    assert millions("XL", time_embedder=True) == 675


def test_official_key_names():
    keys = set(dit_tiny().state_dict())
    expected = {
        "pos_embed",
        "x_embedder.proj.weight",
        "x_embedder.proj.bias",
        "t_embedder.mlp.0.weight",
        "t_embedder.mlp.0.bias",
        "t_embedder.mlp.2.weight",
        "t_embedder.mlp.2.bias",
        "y_embedder.embedding_table.weight",
        "final_layer.linear.weight",
        "final_layer.linear.bias",
        "final_layer.adaLN_modulation.1.weight",
        "final_layer.adaLN_modulation.1.bias",
    }
    for i in range(2):
        for sub in ("attn.qkv", "attn.proj", "mlp.fc1", "mlp.fc2", "adaLN_modulation.1"):
            expected |= {f"blocks.{i}.{sub}.weight", f"blocks.{i}.{sub}.bias"}
    assert keys == expected


def test_shapes_rows_and_frozen_pos_embed():
    model = dit_tiny()
    assert model.out_channels == 8 and model.num_patches == 16
    assert model.y_embedder.embedding_table.weight.shape == (11, 64)
    assert not model.pos_embed.requires_grad and model.pos_embed.shape == (1, 16, 64)
    plain = DiT(**TINY, learn_sigma=False, class_dropout_prob=0.0, time_embedder=False)
    assert plain.out_channels == 4 and plain.t_embedder is None
    assert plain.y_embedder.embedding_table.weight.shape == (10, 64)
    assert DIT_SIZES["M"] == (16, 1024, 16)


def test_init_zeroes_the_output_and_forward_shape():
    model = dit_tiny().eval()
    x, t, y = torch.randn(3, 4, 8, 8), torch.rand(3) * 1000, torch.tensor([0, 4, 9])
    out = model(x, t, y)
    assert out.shape == (3, 8, 8, 8)
    assert torch.count_nonzero(out) == 0  # adaLN-Zero: zeroed final layer


def test_pos_embed_matches_diffusers_table():
    from diffusers.models.embeddings import get_2d_sincos_pos_embed

    ref = get_2d_sincos_pos_embed(64, 4, base_size=4, output_type="pt")
    torch.testing.assert_close(sincos_pos_embed_2d(64, 4), ref.float())


def test_timestep_embedding_matches_diffusers():
    from diffusers.models.embeddings import get_timestep_embedding

    t = torch.tensor([0.0, 0.25, 1.0, 999.0])
    ref = get_timestep_embedding(t, 256, flip_sin_to_cos=True, downscale_freq_shift=0)
    torch.testing.assert_close(TimestepEmbedder.timestep_embedding(t, 256), ref)


def test_condition_checks_t_and_drops_labels():
    model = _randomize(dit_tiny()).eval()
    y = torch.tensor([1, 2])
    with pytest.raises(ValueError, match="has a t_embedder"):
        model.condition(None, y)
    scalar = model.condition(torch.tensor(0.5), y)
    torch.testing.assert_close(scalar, model.condition(torch.full((2,), 0.5), y))
    dropped = model.condition(torch.zeros(2), y, force_drop_ids=torch.tensor([1, 0]))
    null = model.condition(torch.zeros(2), torch.tensor([10, 2]))
    torch.testing.assert_close(dropped, null)
    no_t = DiT(**TINY, time_embedder=False)
    with pytest.raises(ValueError, match="no t_embedder"):
        no_t.condition(torch.zeros(2), y)
    assert no_t.condition(None, y).shape == (2, 64)


def test_training_mode_drops_labels_at_the_rate():
    model = DiT(**TINY, class_dropout_prob=0.5).train()
    torch.manual_seed(0)
    y = torch.zeros(4000, dtype=torch.long)
    c = model.y_embedder(y, train=True)
    null_row = model.y_embedder.embedding_table.weight[10]
    frac = (c == null_row).all(dim=1).float().mean().item()
    assert abs(frac - 0.5) < 0.05


def test_run_blocks_repeat_shares_weights_and_takes_one_condition_per_pass():
    model = _randomize(DiT(**TINY, repeat=2)).eval()
    tokens = torch.randn(2, 16, 64)
    c1, c2 = torch.randn(2, 64), torch.randn(2, 64)
    by_hand = tokens
    for c in (c1, c2):
        for block in model.blocks:
            by_hand = block(by_hand, c)
    torch.testing.assert_close(model.run_blocks(tokens, [c1, c2]), by_hand)
    once = model.blocks[1](model.blocks[0](tokens, c1), c1)
    twice = model.blocks[1](model.blocks[0](once, c1), c1)
    torch.testing.assert_close(model.run_blocks(tokens, c1), twice)
    with pytest.raises(ValueError, match="repeat=2"):
        model.run_blocks(tokens, [c1])
    assert _count(model) == _count(DiT(**TINY))


def test_forward_is_embed_blocks_head():
    model = _randomize(dit_tiny()).eval()
    x, t, y = torch.randn(2, 4, 8, 8), torch.rand(2), torch.tensor([3, 7])
    c = model.condition(t, y)
    torch.testing.assert_close(model(x, t, y), model.head(model.run_blocks(model.embed(x), c), c))


def test_forward_with_cfg_matches_hand_guidance():
    model = _randomize(dit_tiny()).eval()
    x, t, y = torch.randn(2, 4, 8, 8), torch.rand(2), torch.tensor([3, 7])
    cond = model(x, t, y)
    uncond = model(x, t, torch.full_like(y, 10))
    out = model.forward_with_cfg(x, t, y, 4.0)
    torch.testing.assert_close(out[:, :4], uncond[:, :4] + 4.0 * (cond[:, :4] - uncond[:, :4]))
    torch.testing.assert_close(out[:, 4:], cond[:, 4:])
    three = model.forward_with_cfg(x, t, y, 4.0, channels=3)
    torch.testing.assert_close(three[:, 3:], cond[:, 3:])
    with pytest.raises(ValueError, match="null class"):
        DiT(**TINY, class_dropout_prob=0.0).forward_with_cfg(x, t, y, 4.0)


def test_head_needs_final_layer():
    model = DiT(**TINY, final_layer=False)
    assert not any(k.startswith("final_layer") for k in model.state_dict())
    with pytest.raises(ValueError, match="final_layer=False"):
        model(torch.randn(1, 4, 8, 8), torch.rand(1), torch.tensor([0]))


@pytest.mark.parametrize("norm", ["layer", "rms"])
def test_discriminator_layout_and_readout(norm):
    disc = DiTDiscriminator(**TINY, class_dropout_prob=0.0, time_embedder=False, norm=norm)
    backbone = DiT(**TINY, class_dropout_prob=0.0, time_embedder=False, final_layer=False)
    keys = set(disc.state_dict())
    assert keys - set(backbone.state_dict()) == {"dis_embed", "final_layer.1.weight"}
    assert disc.final_layer[1].weight.shape == (1, 64) and disc.dis_embed.shape == (64,)
    norm_type = nn.RMSNorm if norm == "rms" else nn.LayerNorm
    assert isinstance(disc.blocks[0].norm1, norm_type) and isinstance(
        disc.final_layer[0], norm_type
    )
    _randomize(disc).eval()
    x, y = torch.randn(3, 4, 8, 8), torch.tensor([0, 1, 2])
    logits = disc(x, None, y)
    assert logits.shape == (3,)
    # The read-out is the dis_embed token: by hand through the blocks.
    tokens = torch.cat([disc.dis_embed.expand(3, 1, -1), disc.x_embedder(x) + disc.pos_embed], 1)
    c = disc.y_embedder(y, False)
    for block in disc.blocks:
        tokens = block(tokens, c)
    torch.testing.assert_close(logits, disc.final_layer(tokens[:, 0])[:, 0])
    logits.sum().backward()
    assert disc.dis_embed.grad is not None and disc.dis_embed.grad.abs().sum() > 0


def test_discriminator_with_time():
    disc = _randomize(DiTDiscriminator(**TINY)).eval()
    x, y = torch.randn(2, 4, 8, 8), torch.tensor([0, 1])
    a, b = disc(x, torch.zeros(2), y), disc(x, torch.full((2,), 500.0), y)
    assert a.shape == (2,) and not torch.allclose(a, b)
