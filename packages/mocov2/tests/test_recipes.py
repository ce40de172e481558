"""Recipe configs hold the paper's numbers; bad data stops a run before any training."""

from __future__ import annotations

import pytest

from paperzoo.core import RunContext, get_recipe
from paperzoo.core.config import apply_overrides
from paperzoo.mocov2.recipes import paper_800ep_config, paper_config, tiny_config


def test_paper_recipe_is_the_official_hyper_parameters():
    cfg = paper_config()
    assert cfg.model == "mocov2_resnet50"
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (
        "sgd",
        0.03,
        0.9,
        1e-4,
    )
    assert cfg.optim.schedule == "cosine" and cfg.optim.warmup_steps == 0
    assert cfg.global_batch_size == 256
    assert (cfg.moco.queue_size, cfg.moco.momentum, cfg.moco.temperature, cfg.moco.dim) == (
        65536,
        0.999,
        0.2,
        128,
    )
    assert cfg.moco.mlp and cfg.moco.aug_plus and cfg.moco.blur and cfg.moco.shuffle_bn
    assert cfg.trainer.max_steps == 200 * 1281167 // 256
    assert paper_800ep_config().trainer.max_steps == 800 * 1281167 // 256
    assert cfg.eval.linear_protocol == "main_lincls"
    assert (cfg.eval.linear_lr, cfg.eval.linear_epochs, cfg.eval.linear_weight_decay) == (
        30.0,
        100,
        0.0,
    )


def test_tiny_is_the_default_variant_and_runs_on_bundled_data():
    cfg = tiny_config()
    assert cfg.data.dataset == "mnist_sample"
    assert cfg.eval.random_init_baseline and cfg.eval.linear_protocol == "tiny"
    assert cfg.moco.bn_splits > 1  # the single-process shuffle-BN equivalent is on
    assert cfg.global_batch_size % cfg.moco.bn_splits == 0


def _ctx(tmp_path, recipe="mocov2_paper"):
    return RunContext(out_dir=tmp_path / "out", recipe=get_recipe(recipe))


@pytest.mark.parametrize(
    ("root", "match"),
    [
        ("", "pass its folder with"),
        ("{tmp}/nope", "does not exist"),
        ("{tmp}/empty_root", "no train/ or val/ sub-folder"),
        ("{tmp}/empty_train", "no images found"),
    ],
)
def test_bad_data_path_is_a_clear_error_before_training(tmp_path, root, match):
    from paperzoo.mocov2.reproduce import run

    (tmp_path / "empty_root").mkdir()
    (tmp_path / "empty_train" / "train" / "n01440764").mkdir(parents=True)
    (tmp_path / "empty_train" / "val" / "n01440764").mkdir(parents=True)
    cfg = apply_overrides(paper_config(), [f"data.root={root.format(tmp=tmp_path)}"])
    with pytest.raises((FileNotFoundError, ValueError), match=match):
        run(cfg, _ctx(tmp_path))
    assert not (tmp_path / "out" / "checkpoints").exists()  # nothing was trained
