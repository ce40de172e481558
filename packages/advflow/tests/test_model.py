"""The generators (1NFE, fixed N-step, any-step, deep weight-shared) and the discriminator, at
small widths: time embedders present or absent as the official ``Generator(use_t_src,
use_t_tgt)`` / ``GeneratorDeep(repeat)`` / ``Discriminator(use_t)``, shapes, how t enters
(t·1000), the v-prediction step, weight sharing of the deep models and the readout of the
discriminator."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from paperzoo.advflow import model as M
from paperzoo.advflow.model import AdvFlowDiscriminator, build_discriminator, build_generator

SMALL = dict(input_size=8, patch_size=2, in_channels=4, hidden_size=32, depth=2, num_heads=4,
             num_classes=10)  # fmt: skip


def _randomize(model: torch.nn.Module, seed: int = 0) -> torch.nn.Module:
    """Non-zero weights everywhere (DiT zero-inits adaLN and the output layer)."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in model.parameters():
            if p.requires_grad:
                p.copy_(0.2 * torch.randn(p.shape, generator=g))
    return model.eval()


def _inputs(b: int = 3, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 4, 8, 8, generator=g), torch.randint(0, 10, (b,), generator=g)


def _keys(model: torch.nn.Module, prefix: str) -> list[str]:
    return [k for k in model.state_dict() if k.startswith(prefix)]


def test_1nfe_generator_has_no_time_embedder_and_maps_noise_to_x():
    g = _randomize(build_generator("B", **SMALL))
    assert g.t_embedder is None and g.t_tgt_embedder is None and not _keys(g, "t_embedder")
    assert (g.kind, g.steps, g.prediction, g.output_space) == ("1nfe", 1, "x", "latent")
    z, y = _inputs()
    out = g(z, y)
    assert out.shape == z.shape  # learn_sigma=False: 4 output channels
    # no time input: t is ignored, as the official Generator(use_t_src=False) does
    torch.testing.assert_close(g(z, y, torch.full((3,), 0.3), torch.zeros(3)), out)
    # x-prediction: predict_target is the output itself, and sample() is one call on N(0, I)
    torch.testing.assert_close(g.predict_target(z, y, torch.ones(3), torch.zeros(3)), out)
    gen = torch.Generator().manual_seed(5)
    noise = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(5))
    torch.testing.assert_close(g.sample(y, generator=gen), g(noise, y))
    with pytest.raises(ValueError, match="one step"):
        g.sample(y, steps=2)
    with pytest.raises(ValueError, match="cfg_scale"):
        g.sample(y, cfg_scale=2.0)


def test_the_label_changes_the_output():
    g = _randomize(build_generator("B", **SMALL))
    z, _ = _inputs()
    assert not torch.allclose(g(z, torch.tensor([0, 0, 0])), g(z, torch.tensor([1, 1, 1])))


def test_fixed_step_generator_is_time_conditioned_and_v_predicts():
    g = _randomize(build_generator("B", kind="fixed", steps=2, **SMALL))
    assert g.t_embedder is not None and g.t_tgt_embedder is None and g.prediction == "v"
    z, y = _inputs()
    one, half = torch.ones(3), torch.full((3,), 0.5)
    v = g(z, y, one)
    assert v.shape == z.shape and not torch.allclose(v, g(z, y, half))
    # t enters as t * 1000 (official: t_embedder(t_src * 1000))
    c = g.y_embedder(y, False) + g.t_embedder(one * 1000)
    manual = g.head(g.run_blocks(g.embed(z), c), c)
    torch.testing.assert_close(v, manual)
    # the target is x_src + (t_tgt - t_src) * v
    torch.testing.assert_close(g.predict_target(z, y, one, half), z - 0.5 * v)
    # sample(): t = linspace(1, 0, 3), two v-steps from the seeded noise
    x = torch.randn(3, 4, 8, 8, generator=torch.Generator().manual_seed(2))
    for t_src, t_tgt in ((1.0, 0.5), (0.5, 0.0)):
        x = x + (t_tgt - t_src) * g(x, y, torch.full((3,), t_src))
    torch.testing.assert_close(g.sample(y, generator=torch.Generator().manual_seed(2)), x)
    with pytest.raises(ValueError, match="trained for 2 steps"):
        g.sample(y, steps=4)
    with pytest.raises(ValueError, match="time-conditioned"):
        g(z, y)


def test_any_step_generator_adds_the_t_tgt_embedder():
    g = _randomize(build_generator("B", kind="any", steps=None, **SMALL))
    assert g.t_embedder is not None and g.t_tgt_embedder is not None
    assert _keys(g, "t_tgt_embedder.") == [
        f"t_tgt_embedder.mlp.{i}.{n}" for i in (0, 2) for n in ("weight", "bias")
    ]
    z, y = _inputs()
    src = torch.full((3,), 0.8)
    a, b = g(z, y, src, torch.full((3,), 0.4)), g(z, y, src, torch.full((3,), 0.1))
    assert a.shape == z.shape and not torch.allclose(a, b)
    c = (
        g.y_embedder(y, False)
        + g.t_embedder(src * 1000)
        + g.t_tgt_embedder(torch.full((3,), 400.0))
    )
    torch.testing.assert_close(a, g.head(g.run_blocks(g.embed(z), c), c))
    # any number of steps at sampling time; the official default is 8
    assert g.sample(y, steps=3).shape == z.shape and g.sample(y).shape == z.shape


@pytest.mark.parametrize("repeat", [2, 4])
def test_deep_generator_reuses_the_blocks_with_one_time_per_pass(repeat):
    deep = _randomize(build_generator("B", kind="deep", repeat=repeat, **SMALL))
    once = build_generator("B", kind="fixed", steps=1, **SMALL)
    # the same parameters as the depth-2 time-conditioned model: the blocks are shared
    assert len(deep.blocks) == 2 and deep.repeat == repeat
    assert sum(p.numel() for p in deep.parameters()) == sum(p.numel() for p in once.parameters())
    assert list(deep.state_dict()) == list(once.state_dict())
    z, y = _inputs()
    # GeneratorDeep: pass i conditioned on y + t_embedder(t_i * 1000), t_i in
    # arange(1, 0, -1/repeat); the output head sees the label embedding alone
    c = deep.y_embedder(y, False)
    h = deep.embed(z)
    for t in [1 - i / repeat for i in range(repeat)]:
        c_i = c + deep.t_embedder(torch.full((3,), t * 1000))
        for block in deep.blocks:
            h = block(h, c_i)
    expected = deep.unpatchify(deep.final_layer(h, c))
    torch.testing.assert_close(deep(z, y), expected)
    assert deep.prediction == "x" and deep.sample(y).shape == z.shape


def test_deep_xl_models_are_28_blocks_applied_2_and_4_times():
    with torch.device("meta"):
        d56, d112, xl = (
            M.advflow_xl2_56layer_1nfe(),
            M.advflow_xl2_112layer_1nfe(),
            M.advflow_xl2_1nfe(),
        )
    assert len(d56.blocks) == len(d112.blocks) == len(xl.blocks) == 28
    assert (d56.repeat * len(d56.blocks), d112.repeat * len(d112.blocks)) == (56, 112)
    assert d56.t_embedder is not None and xl.t_embedder is None
    assert set(d56.state_dict()) == set(d112.state_dict())


def test_generator_kinds_are_checked():
    with pytest.raises(ValueError, match="unknown generator kind"):
        build_generator("B", kind="two", **SMALL)
    with pytest.raises(ValueError, match="one step"):
        build_generator("B", kind="1nfe", steps=2, **SMALL)
    with pytest.raises(ValueError, match="repeat"):
        build_generator("B", kind="1nfe", repeat=2, **SMALL)
    with pytest.raises(ValueError, match="steps=None"):
        build_generator("B", kind="any", steps=4, **SMALL)


def test_discriminator_reads_the_prepended_token_through_layernorm_and_a_linear():
    d = _randomize(build_discriminator("B", **SMALL))
    assert isinstance(d, AdvFlowDiscriminator) and not d.uses_time
    assert d.dis_embed.shape == (32,) and d.final_layer[1].weight.shape == (1, 32)
    assert d.final_layer[1].bias is None and not _keys(d, "final_layer.0")  # no affine
    assert not _keys(d, "t_embedder") and not _keys(d, "final_layer.linear")
    x, y = _inputs()
    logits = d(x, y)
    assert logits.shape == (3,)
    c = d.y_embedder(y, False)
    tokens = torch.cat([d.dis_embed.expand(3, 1, -1), d.x_embedder(x) + d.pos_embed], dim=1)
    for block in d.blocks:
        tokens = block(tokens, c)
    expected = F.layer_norm(tokens[:, 0], (32,), eps=1e-6) @ d.final_layer[1].weight[0]
    torch.testing.assert_close(logits, expected)
    # class-conditioned; with use_time also conditioned on t_tgt * 1000
    assert not torch.allclose(logits, d(x, (y + 1) % 10))
    dt = _randomize(build_discriminator("B", use_time=True, **SMALL))
    assert dt.uses_time and _keys(dt, "t_embedder.mlp.0")
    assert not torch.allclose(dt(x, y, torch.full((3,), 0.5)), dt(x, y, torch.zeros(3)))
    c = dt.y_embedder(y, False) + dt.t_embedder(torch.full((3,), 500.0))
    tokens = dt.embed(x)
    for block in dt.blocks:
        tokens = block(tokens, c)
    torch.testing.assert_close(dt(x, y, torch.full((3,), 0.5)), dt.head(tokens, c))


def test_tiny_models_are_pixel_space_digits():
    g, d = M.advflow_tiny_1nfe(), M.advflow_tiny_discriminator()
    assert g.output_space == "pixel" and g.num_classes == 10 and g.in_channels == 1
    y = torch.arange(4)
    assert g.sample(y, generator=torch.Generator().manual_seed(0)).shape == (4, 1, 28, 28)
    assert d(torch.zeros(4, 1, 28, 28), y).shape == (4,)
