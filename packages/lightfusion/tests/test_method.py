"""Training objective and sampling: the official time sampling and shift, the frozen tower in
a real optimizer step, text dropout to the empty prompt, and the two guidance formulas."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.lightfusion.data import WordTokenizer, build_prompt_bank
from paperzoo.lightfusion.method import (
    LightFusionFlow,
    guided_velocity,
    sample_lightfusion,
    sample_times,
    shift_time,
    shifted_grid,
)
from paperzoo.lightfusion.model import lightfusion_tiny

torch.set_num_threads(1)


def test_shift_moves_time_towards_noise_as_the_official_formula():
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(shift_time(t, 4.0), torch.tensor([0.0, 1 / 1.75, 0.8, 1.0]))
    assert torch.equal(shift_time(t, 1.0), t)
    torch.manual_seed(0)
    ts = sample_times(20_000, 4.0)
    assert ts.min() > 0 and ts.max() < 1
    # median of sigma(N(0,1)) is 0.5, shifted: 4 * 0.5 / (1 + 1.5) = 0.8
    assert abs(ts.median().item() - 0.8) < 0.01
    grid = shifted_grid(50, 4.0)
    assert len(grid) == 51 and grid[0] == 1 and grid[-1] == 0 and (grid.diff() < 0).all()


def _batch(n: int = 4):
    tok = WordTokenizer()
    ids, mask = tok.batch(["the number after six", "a 3", "two plus two", "the digit one"][:n], 8)
    return torch.randn(n, 1, 14, 14), ids, mask, tok


def test_one_optimizer_step_moves_the_fusion_and_the_dit_but_not_the_lm():
    torch.manual_seed(0)
    model = lightfusion_tiny()
    x, ids, mask, tok = _batch()
    method = LightFusionFlow(model, null_ids=torch.tensor(tok.encode("")))
    lm_before = {k: v.clone() for k, v in model.vision_language_model.state_dict().items()}
    fusion_before = model.mm_attn_layers[0].mm_attn.o_gen_proj.weight.clone()
    opt = torch.optim.AdamW([p for g in method.param_groups() for p in g["params"]], lr=1e-2)
    out = method.training_step((x, ids, mask), 0)
    assert out["loss"].requires_grad and math.isfinite(out["loss"].item())
    out["loss"].backward()
    opt.step()
    after = model.vision_language_model.state_dict()
    assert all(torch.equal(lm_before[k], after[k]) for k in lm_before)
    assert not torch.equal(fusion_before, model.mm_attn_layers[0].mm_attn.o_gen_proj.weight)
    assert not model.mm_attn_layers[0].mm_attn.o_und_proj.weight.any()
    assert len(method.fsdp_modules()) == 7


def test_text_dropout_gives_the_empty_prompt():
    model = lightfusion_tiny()
    _, ids, mask, tok = _batch()
    method = LightFusionFlow(model, null_ids=torch.tensor(tok.encode("")))
    drop = torch.tensor([True, False, True, False])
    new_ids, new_mask = method.drop_text(ids, mask, drop)
    assert new_ids[0, :2].tolist() == [tok.bos_id, tok.eos_id] and new_mask[0].sum() == 2
    assert torch.equal(new_ids[1], ids[1]) and torch.equal(new_mask[3], mask[3])


def test_guidance_formulas():
    c, nt, ni = torch.tensor([3.0]), torch.tensor([1.0]), torch.tensor([2.0])
    assert guided_velocity(c, nt, text_scale=4.0).item() == 1 + 4 * 2
    # text first (-> 9), then image: 2 + 2 * (9 - 2) = 16
    assert guided_velocity(c, nt, ni, text_scale=4.0, image_scale=2.0).item() == 16.0
    v = torch.tensor([[3.0, 4.0]]).T[None]  # (1, 2, 1): channel norm 5
    g = guided_velocity(v, torch.zeros_like(v), text_scale=2.0, renorm="text_channel")
    assert torch.allclose(g.norm(dim=1), torch.tensor([[5.0]]))  # scaled back to the cond norm
    with pytest.raises(ValueError, match="renorm"):
        guided_velocity(v, v, text_scale=2.0, renorm="odd")


def test_sampling_follows_the_interval_and_counts_passes():
    torch.manual_seed(0)
    model = lightfusion_tiny()
    calls = []
    real = model.forward

    def counting(x, t, **kw):
        calls.append((float(t[0]), kw["input_ids"][0, 1].item()))
        return real(x, t, **kw)

    model.forward = counting
    _, ids, mask, tok = _batch(2)
    null_ids, null_mask = LightFusionFlow(model, null_ids=torch.tensor(tok.encode(""))).drop_text(
        ids, mask, torch.ones(2, dtype=torch.bool)
    )
    out = sample_lightfusion(
        model,
        {"input_ids": ids, "attention_mask": mask},
        {"input_ids": null_ids, "attention_mask": null_mask},
        shape=(2, 1, 1, 14, 14),
        steps=4,
        timestep_shift=1.0,
        text_scale=3.0,
        cfg_interval=(0.7, 1.0),
        generator=torch.Generator().manual_seed(0),
    )
    assert out.shape == (2, 1, 1, 14, 14) and torch.isfinite(out).all()
    times = [t for t, _ in calls]
    # grid 1, .75, .5, .25: guidance (2 passes) at 1 and .75, one pass at .5 and .25
    assert times == [1.0, 1.0, 0.75, 0.75, 0.5, 0.25]


def test_prompt_bank_holds_out_arithmetic_and_names_every_digit():
    bank = build_prompt_bank()
    for d in range(10):
        assert bank.direct[d] and bank.test_lm[d]
        held = {p for p in bank.test_lm[d] if "plus" in p or "minus" in p}
        assert not held & set(bank.train[d])
    assert "the number after six" in bank.train[7] and "the number after six" in bank.test_lm[7]
    with pytest.raises(KeyError, match="eleven"):
        WordTokenizer().encode("the number eleven")
