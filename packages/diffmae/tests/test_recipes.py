"""The recipes: the paper recipe's settings, and tiny arms that differ only in the objective."""

from __future__ import annotations

import dataclasses

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config
from paperzoo.diffmae.recipes import (
    TINY_ARMS,
    TINY_TIE_MARGIN,
    paper_config,
    paper_video_config,
    tiny_config,
    tiny_study,
)


def test_paper_recipe():
    cfg = paper_config()
    assert cfg.model == "vit_large_patch16" and cfg.data.dataset == "imagefolder"
    pt, ft = cfg.pretrain, cfg.finetune
    assert (pt.method, pt.decoder, pt.num_train_timesteps) == ("diffmae", "cross_self", 1000)
    assert pt.mask_ratio == 0.0  # the model's: 0.75 on images
    assert (pt.decoder_embed_dim, pt.decoder_depth, pt.decoder_num_heads) == (512, 8, 16)
    # MAE's pre-training (Appendix A.1): AdamW (0.9, 0.95), blr 1.5e-4 x batch / 256, wd 0.05,
    # batch 4096, 40 warm-up epochs, cosine.
    o = pt.optim
    assert (o.name, o.lr, o.base_batch, tuple(o.betas), o.weight_decay) == (
        "adamw",
        1.5e-4,
        256,
        (0.9, 0.95),
        0.05,
    )
    assert (pt.batch_size, o.warmup_epochs, o.schedule) == (4096, 40, "cosine")
    # MAE's ViT-L fine-tuning (A.2): 50 epochs, blr 1e-3, batch 1024, layer decay 0.75,
    # drop path 0.2, mixup 0.8, cutmix 1.0, label smoothing 0.1, RandAugment, erasing 0.25.
    assert (ft.epochs, ft.batch_size, ft.layer_decay, ft.drop_path_rate) == (50, 1024, 0.75, 0.2)
    assert (ft.mixup_alpha, ft.cutmix_alpha, ft.label_smoothing) == (0.8, 1.0, 0.1)
    assert ft.optim.lr == 1e-3 and ft.optim.base_batch == 256 and ft.optim.warmup_epochs == 5
    assert build_config(get_recipe("diffmae_paper"), ["data.root=/x"]).data.root == "/x"
    video = paper_video_config()
    assert video.model == "vit_large_patch16_16x224" and video.data.dataset == "kinetics"
    assert video.video.sampling_rate == 4


def test_tiny_arms_differ_only_in_the_objective():
    study = tiny_study()
    recipe = get_recipe("diffmae_tiny")
    assert [a.name for a in study.arms] == list(TINY_ARMS) and study.seeds == (0, 1, 2)
    configs = {a.name: build_config(recipe, list(a.overrides)) for a in study.arms}
    methods = {n: (c.stage, c.pretrain.method, c.pretrain.decoder) for n, c in configs.items()}
    assert methods == {
        "mae": ("both", "mae", "cross_self"),
        "diffmae_cross_self": ("both", "diffmae", "cross_self"),
        "diffmae_cross": ("both", "diffmae", "cross"),
        "diffusion": ("both", "diffusion", "cross_self"),
        "scratch": ("scratch", "diffmae", "cross_self"),
    }
    base = configs["mae"]
    for cfg in configs.values():
        same = dataclasses.replace(cfg.pretrain, method="mae", decoder="cross_self")
        assert same == base.pretrain  # steps, batch, optimizer, decoder size, schedule
        ft = dataclasses.replace(cfg.finetune, optim=dataclasses.replace(cfg.finetune.optim, lr=0))
        assert ft == dataclasses.replace(
            base.finetune, optim=dataclasses.replace(base.finetune.optim, lr=0)
        )
        assert cfg.trainer == base.trainer and cfg.data == base.data and cfg.inpaint == base.inpaint
    claims = {(c.arm, c.baseline): c for c in study.claims}
    tie = claims[("diffmae_cross_self", "mae")]
    assert (tie.rule, tie.margin, tie.metric) == ("within", TINY_TIE_MARGIN, "finetune_top1")
    assert claims[("diffmae_cross_self", "diffusion")].rule == "better_mean"
    cfg = tiny_config()
    assert cfg.model == "tiny_mnist" and cfg.split == "test" and cfg.finetune.label_fraction == 0.1
