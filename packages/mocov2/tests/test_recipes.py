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
    assert cfg.data.dataset == "mnist_sample" and cfg.eval.split == "test"
    assert cfg.eval.linear_protocol == "tiny"
    assert cfg.moco.bn_splits > 1  # the single-process shuffle-BN equivalent is on
    assert cfg.global_batch_size % cfg.moco.bn_splits == 0


def test_tiny_study_is_the_table_1_ablation():
    from paperzoo.train.study import cell_config, load_study

    recipe = get_recipe("mocov2_tiny")
    study = load_study(recipe)
    assert [a.name for a in study.arms] == ["v1", "v1_mlp", "v1_augplus", "v2"]
    assert study.seeds == (0, 1, 2)
    cfgs = {a.name: cell_config(recipe, study, a, 0, ()) for a in study.arms}
    # Table 1's switches; only v2 is cosine. T is each arm's best on val (0.07 for all four).
    assert [c.moco.mlp for c in cfgs.values()] == [False, True, False, True]
    assert {c.moco.temperature for c in cfgs.values()} == {0.07}
    assert [c.moco.aug_plus for c in cfgs.values()] == [False, False, True, True]
    assert [c.optim.schedule for c in cfgs.values()] == ["step", "step", "step", "cosine"]
    assert cfgs["v2"].moco.blur
    # Everything else (data, budget, probes) is the same in every arm.
    steps = {(c.trainer.max_steps, c.global_batch_size, c.eval.split) for c in cfgs.values()}
    assert len(steps) == 1
    floors = [c.eval.random_init_baseline for c in cfgs.values()]
    assert floors == [True, False, False, False]
    rules = {(c.arm, c.baseline, c.metric): c.rule for c in study.claims}
    for arm in ("v1_mlp", "v1_augplus", "v2"):
        assert rules[(arm, "v1", "linear_top1")] == "better_all_seeds"


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
