"""paperzoo.gen.convert: official layouts load; parity with diffusers' DiTTransformer2DModel."""

from __future__ import annotations

import pytest
import torch
from safetensors.torch import save_file

from paperzoo.gen.convert import (
    diffusers_config,
    dit_to_diffusers,
    load_official_state_dict,
    read_official_state_dict,
)
from paperzoo.gen.dit import DiT, DiTDiscriminator

torch.set_num_threads(1)

TINY = dict(input_size=8, patch_size=2, hidden_size=64, depth=2, num_heads=4, num_classes=10)


def _random_state_dict(model: torch.nn.Module, seed: int) -> dict[str, torch.Tensor]:
    """Random values for every weight (pos_embed kept: it is the fixed table in checkpoints)."""
    g = torch.Generator().manual_seed(seed)
    return {
        k: v.clone() if k == "pos_embed" else torch.randn(v.shape, generator=g) * 0.1
        for k, v in model.state_dict().items()
    }


def _inputs(batch: int = 3):
    g = torch.Generator().manual_seed(1)
    x = torch.randn(batch, 4, 8, 8, generator=g)
    return x, torch.rand(batch, generator=g) * 999, torch.randint(0, 10, (batch,), generator=g)


def _diffusers_oracle(model: DiT, time_shift: int = 0):
    from diffusers import DiTTransformer2DModel

    oracle = DiTTransformer2DModel(**diffusers_config(model))
    oracle.load_state_dict(dit_to_diffusers(model.state_dict()), strict=True)
    # diffusers' CombinedTimestepLabelEmbeddings uses Timesteps(downscale_freq_shift=1):
    # frequencies exp(-ln(1e4) k / (half - 1)), where DiT's timestep_embedding divides by half
    # (shift 0). Setting the oracle to 0 compares everything else exactly.
    for block in oracle.transformer_blocks:
        block.norm1.emb.time_proj.downscale_freq_shift = time_shift
    return oracle.eval()


def test_parity_with_diffusers_dit():
    model = DiT(**TINY).eval()
    model.load_state_dict(_random_state_dict(model, seed=0))
    oracle = _diffusers_oracle(model)
    x, t, y = _inputs()
    with torch.no_grad():
        ours = model(x, t, y)
        theirs = oracle(x, timestep=t, class_labels=y).sample
    assert ours.shape == theirs.shape == (3, 8, 8, 8)
    assert (ours - theirs).abs().max().item() < 1e-5
    assert ours.abs().mean().item() > 1e-2  # not trivially zero


def test_diffusers_time_embedding_differs_only_off_zero():
    model = DiT(**TINY).eval()
    model.load_state_dict(_random_state_dict(model, seed=0))
    oracle = _diffusers_oracle(model, time_shift=1)
    x, _, y = _inputs()
    with torch.no_grad():
        at_zero = (model(x, torch.zeros(3), y) - oracle(x, torch.zeros(3), y).sample).abs().max()
        t = torch.full((3,), 500.0)
        off_zero = (model(x, t, y) - oracle(x, timestep=t, class_labels=y).sample).abs().max()
    assert at_zero.item() < 1e-5 and off_zero.item() > 1e-3


def test_official_training_checkpoint_loads_through_create_model(tmp_path):
    from paperzoo.core import create_model

    reference = DiT(**TINY).eval()
    official = _random_state_dict(reference, seed=2)
    reference.load_state_dict(official)
    # DiT/SiT train.py layout: {"model", "ema", "opt", "args"}, saved from a DDP module.
    ema = {f"module.{k}": v for k, v in official.items()}
    raw = {f"module.{k}": torch.zeros_like(v) for k, v in official.items()}
    path = tmp_path / "0400000.pt"
    torch.save({"model": raw, "ema": ema, "opt": {}, "args": {}}, path)
    model = create_model("dit_tiny", checkpoint_path=path).eval()
    x, t, y = _inputs()
    with torch.no_grad():
        torch.testing.assert_close(model(x, t, y), reference(x, t, y))


def test_plain_and_jit_style_layouts(tmp_path):
    reference = DiT(**TINY, learn_sigma=False, class_dropout_prob=0.0, time_embedder=False)
    official = _random_state_dict(reference, seed=3)
    save_file(official, tmp_path / "plain.safetensors")
    a = load_official_state_dict(
        DiT(**TINY, learn_sigma=False, class_dropout_prob=0.0, time_embedder=False),
        tmp_path / "plain.safetensors",
    )
    torch.testing.assert_close(a.state_dict(), official)
    jit = {"model_ema1": {f"net._orig_mod.{k}": v for k, v in official.items()}}
    assert read_official_state_dict(jit).keys() == official.keys()


def test_discriminator_layout_loads(tmp_path):
    kwargs = dict(**TINY, class_dropout_prob=0.0, time_embedder=False)
    official = _random_state_dict(DiTDiscriminator(**kwargs), seed=4)
    assert {"dis_embed", "final_layer.1.weight"} <= set(official)
    torch.save(official, tmp_path / "d.pth")
    disc = load_official_state_dict(DiTDiscriminator(**kwargs), tmp_path / "d.pth")
    torch.testing.assert_close(disc.dis_embed, official["dis_embed"])


def _official(**kwargs):
    return _random_state_dict(DiT(**TINY | kwargs), seed=5)


@pytest.mark.parametrize(
    ("ckpt_kwargs", "model_kwargs", "message"),
    [
        (dict(input_size=16), {}, r"pos_embed: checkpoint \[1, 64, 64\] vs model \[1, 16, 64\].*"
         r"input_size=16"),
        (dict(class_dropout_prob=0.0), {}, r"embedding_table.weight: checkpoint \[10, 64\] vs "
         r"model \[11, 64\].*class_dropout_prob=0"),
        ({}, dict(class_dropout_prob=0.0), r"checkpoint \[11, 64\] vs model \[10, 64\].*"
         r"class_dropout_prob > 0"),
        (dict(learn_sigma=False), {}, r"final_layer.linear.weight: checkpoint \[16, 64\] vs "
         r"model \[32, 64\].*learn_sigma=False"),
        ({}, dict(learn_sigma=False), r"\[32, 64\] vs model \[16, 64\].*learn_sigma=True"),
        (dict(time_embedder=False), {}, r"no t_embedder.*time_embedder=False"),
        ({}, dict(time_embedder=False), r"time_embedder=True"),
        (dict(depth=3), {}, r"unexpected \['blocks.2"),
    ],
)  # fmt: skip
def test_mismatches_name_the_key_shapes_and_fix(ckpt_kwargs, model_kwargs, message):
    with pytest.raises(ValueError, match=message):
        load_official_state_dict(DiT(**TINY | model_kwargs), _official(**ckpt_kwargs))


def test_unknown_wrapper_is_an_error():
    with pytest.raises(ValueError, match="not a state dict"):
        read_official_state_dict({"weights": {"a": torch.zeros(1)}, "step": 3})
