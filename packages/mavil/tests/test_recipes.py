"""The recipes: the tiny study's arms share one budget and the claim is declared; the paper
recipe keeps the paper's front-end, sizes and masks."""

from __future__ import annotations

from paperzoo.core.config import apply_overrides
from paperzoo.mavil.recipes import (
    TINY_ARMS,
    TINY_PRETRAIN_STEPS,
    paper_config,
    tiny_config,
    tiny_study,
)


def test_tiny_study_declares_the_claim_and_equal_budgets():
    study = tiny_study()
    assert [a.name for a in study.arms] == ["audio_mae", "contrast", "mavil"]
    assert study.seeds == (0, 1, 2)
    claim = study.claims[0]
    assert (claim.metric, claim.arm, claim.baseline) == ("audio_top1", "mavil", "audio_mae")
    steps = {}
    for arm in study.arms:
        cfg = apply_overrides(tiny_config(), arm.overrides)
        pt = cfg.pretrain
        steps[arm.name] = pt.max_steps + (pt.stage2_max_steps if pt.objective == "mavil" else 0)
        assert cfg.finetune.max_steps == 200 and cfg.finetune.modalities == "audio"
        assert (pt.audio_mask_ratio, pt.video_mask_ratio) == (0.8, 0.8)
    assert set(steps.values()) == {TINY_PRETRAIN_STEPS}, steps
    assert set(TINY_ARMS) == set(steps)


def test_paper_recipe():
    cfg = paper_config()
    assert cfg.model == "vit_base" and cfg.data.dataset == "audioset"
    assert cfg.pretrain.objective == "mavil" and cfg.finetune.modalities == "joint"
    assert (cfg.finetune.freq_mask, cfg.finetune.time_mask) == (48, 192)  # AudioMAE's SpecAug
    assert cfg.files.train_list == "unbalanced_train_segments.csv"
