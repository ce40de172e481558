"""Recipes: the tiny claim's plumbing and budget, and the paper recipe's data checks."""

from __future__ import annotations

import json

import pytest

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config, run_recipe


def _last_step(path) -> int:
    return max(json.loads(line)["step"] for line in path.read_text().splitlines())


def test_tiny_recipe_runs_both_arms_with_the_same_step_budget(tmp_path, capsys):
    """A miniature of ``paperzoo reproduce hiera`` (3 videos per class, a few steps)."""
    overrides = [
        "seeds=[0]", "mae_steps=3", "finetune_steps=2", "data.batch_size=8",
        "digits.num_videos_per_class=3", "trainer.log_every=1",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("hiera_tiny"), out_dir=tmp_path, overrides=overrides)
    m = summary["metrics"]
    assert 0.0 <= m["mae_ft_top1"] <= 100.0 and 0.0 <= m["scratch_top1"] <= 100.0
    assert m["gain_top1"] == pytest.approx(m["mae_ft_top1"] - m["scratch_top1"])
    assert summary["extra"]["val_clips"] == 40 and summary["extra"]["train_clips"] == 80
    # The budget: scratch takes as many optimizer steps as MAE + fine-tuning together.
    seed_dir = tmp_path / "seed0"
    assert _last_step(seed_dir / "mae" / "metrics.jsonl") == 3
    assert _last_step(seed_dir / "finetune" / "metrics.jsonl") == 2
    assert _last_step(seed_dir / "scratch" / "metrics.jsonl") == 5
    # Real mp4 files were written and decoded.
    assert len(list((tmp_path / "moving_digits" / "videos").glob("*.mp4"))) == 120
    assert "seed 0: MAE+FT" in capsys.readouterr().out


def test_tiny_defaults_are_the_documented_claim_setup():
    cfg = build_config(get_recipe("hiera_tiny"))
    assert cfg.seeds == (0, 1, 2) and cfg.mask_ratio == 0.9 and cfg.label == "direction"
    assert cfg.model == "hiera_toy_8x64"


def test_paper_recipe_needs_data(tmp_path):
    recipe = get_recipe("hiera_paper")
    with pytest.raises(FileNotFoundError, match="--data"):
        run_recipe(recipe, out_dir=tmp_path / "a")
    with pytest.raises(FileNotFoundError, match="train"):
        run_recipe(recipe, out_dir=tmp_path / "b", overrides=[f"data.root={tmp_path}"])
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run_recipe(
            recipe, out_dir=tmp_path / "c",
            overrides=[f"data.root={tmp_path}", "model=hiera_base_16x224"],
        )  # fmt: skip


def test_paper_recipe_settings():
    cfg = build_config(get_recipe("hiera_paper"))
    assert cfg.pretrain.decoder_embed_dim == 512 and cfg.pretrain.decoder_depth == 8
    assert cfg.finetune.mixup_alpha == 0.8 and cfg.finetune.cutmix_alpha == 1.0
    assert cfg.finetune.label_smoothing == 0.1
    assert cfg.pretrain.optim.name == "adamw" and cfg.pretrain.optim.betas == (0.9, 0.95)


@pytest.mark.slow
def test_paper_recipe_runs_end_to_end_on_a_small_image_folder(tmp_path):
    """MAE pretraining then fine-tuning with the paper runner, on 8 real PNGs (2 steps each)."""
    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(0)
    for split in ("train", "val"):
        for cls in ("a", "b"):
            folder = tmp_path / "data" / split / cls
            folder.mkdir(parents=True)
            for i in range(4):
                pixels = rng.integers(0, 256, size=(40, 48, 3), dtype=np.uint8)
                Image.fromarray(pixels).save(folder / f"{i}.png")
    overrides = [
        f"data.root={tmp_path / 'data'}", "data.num_workers=0", "data.batch_size=4",
        "model=hiera_tiny_224", "pretrain.epochs=1", "pretrain.batch_size=4",
        "pretrain.decoder_depth=1", "finetune.epochs=1", "finetune.batch_size=4",
        "trainer.device=cpu", "trainer.progress=false", "trainer.tensorboard=false",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("hiera_paper"), out_dir=tmp_path / "out", overrides=overrides)
    assert summary["steps"] == 4  # 8 images / batch 4 = 2 steps per stage
    assert 0.0 <= summary["metrics"]["top1"] <= 100.0
    assert (tmp_path / "out" / "pretrain" / "model.safetensors").is_file()
    assert (tmp_path / "out" / "finetune" / "model.safetensors").is_file()


@pytest.mark.slow
def test_tiny_claim_full_run(tmp_path):
    """``paperzoo reproduce hiera`` as shipped: 3 seeds (about 10 min on 2 loaded cores).

    Measured outcome (see the README): the claim does *not* hold at this scale; the 240 MAE
    steps do not get past predicting empty patches, and scratch training wins every seed. This
    test checks that the comparison is informative (the scratch arm learns far above the 25%
    chance level) and that the reported verdict matches the per-seed numbers; it does not
    assert the claim.
    """
    summary = run_recipe(get_recipe("hiera_tiny"), out_dir=tmp_path)
    m, rows = summary["metrics"], summary["extra"]["per_seed"]
    assert len(rows) == 3
    assert m["scratch_top1"] > 50.0
    wins = [r["mae_ft_top1"] > r["scratch_top1"] for r in rows]
    assert m["seeds_won"] == sum(wins) and m["claim_holds"] == float(all(wins))
