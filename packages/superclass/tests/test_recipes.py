"""The recipes: the paper recipe is the official ViT-B/16 schedule; the tiny arms differ only
in the objective."""

from __future__ import annotations

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config
from paperzoo.superclass.recipes import TINY_ARMS, paper_config, tiny_config, tiny_study


def test_paper_recipe_is_the_official_b16_schedule():
    cfg = paper_config()
    assert cfg.model == "superclass_vit_b16" and cfg.method == "superclass"
    assert cfg.global_batch_size == 16384 and cfg.context_length == 77
    assert cfg.trainer.max_steps == 512_000_000 // 16384 == 31250
    assert cfg.trainer.amp == "bf16" and cfg.grad_checkpointing
    assert cfg.trainer.checkpoint_every == 6104  # save_every_n_steps
    o = cfg.optim
    assert (o.name, o.lr, tuple(o.betas), o.eps, o.weight_decay) == (
        "adamw",
        5e-4,
        (0.9, 0.98),
        1e-6,
        0.2,
    )
    assert (o.warmup_steps, o.schedule, o.base_batch) == (500, "cosine", 0)
    assert o.exclude_bias_norm  # main.py: no decay for ndim < 2, biases, norms, logit_scale
    assert cfg.lit.enabled and cfg.lit.max_steps == 31250 and cfg.lit.pool_type == "avg"
    assert cfg.lit.unlocked_groups == 1 and cfg.lit.text == "vit_b16" and cfg.lit.embed_dim == 512
    assert build_config(get_recipe("superclass_paper"), ["data.root=/x"]).data.root == "/x"


def test_tiny_arms_share_everything_but_the_objective():
    study = tiny_study()
    assert [a.name for a in study.arms] == ["superclass", "clip"] and study.seeds == (0, 1, 2)
    recipe = get_recipe("superclass_tiny")
    configs = {a.name: build_config(recipe, list(a.overrides)) for a in study.arms}
    assert configs["superclass"].method == "superclass" and configs["clip"].method == "clip"
    a, b = configs["superclass"], configs["clip"]
    # Each arm has its own tuned lr; everything else is the same.
    assert (a.optim.lr, b.optim.lr) == (0.004, 0.002)
    import dataclasses

    assert dataclasses.replace(a.optim, lr=0) == dataclasses.replace(b.optim, lr=0)
    assert a.trainer == b.trainer and a.data == b.data and a.lit == b.lit
    assert a.global_batch_size == b.global_batch_size == 64
    assert set(TINY_ARMS) == {"superclass", "clip"}
    (claim,) = study.claims
    assert (claim.metric, claim.arm, claim.baseline) == ("linear_top1", "superclass", "clip")
    assert tiny_config().eval.linear_protocol == "tiny"
