"""Discovery through the entry point, and what the recipes hold."""

from __future__ import annotations

import subprocess
import sys

from paperzoo.core import get_paper, get_recipe, list_models, list_recipes
from paperzoo.taco.recipes import paper_config, paper_hmdb51_config, tiny_config


def test_models_recipes_and_paper_are_discovered_by_name():
    assert set(list_models("taco_*")) == {
        "taco_r3d_18", "taco_r2plus1d_18", "taco_slow_r50", "taco_r3d_narrow",
    }  # fmt: skip
    assert {"taco_tiny", "taco_paper", "taco_paper_hmdb51"} <= set(list_recipes())
    assert get_recipe("taco_tiny").study == "paperzoo.taco.recipes:tiny_study"
    paper = get_paper("taco")
    assert paper.arxiv == "2011.13046"
    assert set(paper.headline_results.values()) == {85.1, 51.6}


def test_listing_does_not_import_torch():
    code = (
        "import sys; from paperzoo.core import list_models; list_models('taco_*'); "
        "assert 'torch' not in sys.modules, 'listing imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


def test_paper_recipe_settings():
    cfg = paper_config()
    assert cfg.model == "taco_r3d_18" and cfg.global_batch_size == 256
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.weight_decay) == ("sgd", 0.03, 1e-4)
    assert (cfg.moco.queue_size, cfg.moco.momentum, cfg.moco.temperature) == (65536, 0.999, 0.2)
    assert (cfg.video.num_frames, cfg.video.crop_size) == (16, 112)
    assert cfg.taco.transformations == ("rotation", "shuffle", "reverse", "speed")
    assert cfg.taco.flip and cfg.finetune.dataset == "ucf101"
    assert (cfg.finetune.num_clips, cfg.finetune.num_crops) == (10, 3)
    assert paper_hmdb51_config().finetune.dataset == "hmdb51"


def test_tiny_recipe_never_flips_and_scores_the_test_split():
    cfg = tiny_config()
    assert not cfg.taco.flip  # a flip swaps left and right: the label of a moving digit
    assert cfg.eval.split == "test" and cfg.finetune.label_fraction == 0.1
    assert cfg.moving_digits.test_fraction > 0
