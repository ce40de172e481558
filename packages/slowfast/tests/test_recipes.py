import json

import pytest
import torch
from torch.utils.data import TensorDataset

from paperzoo.core import get_recipe
from paperzoo.core.run import run_recipe
from paperzoo.slowfast.reproduce import evaluate_multiview, precise_bn

QUIET = ["trainer.progress=false", "trainer.tensorboard=false", "trainer.device=cpu"]


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    """A small Kinetics-style video folder (train.csv / val.csv of real mp4 files)."""
    from paperzoo.data.synthetic import write_moving_digits

    root = tmp_path_factory.mktemp("moving_digits")
    write_moving_digits(
        root, num_videos_per_class=3, num_directions=2, digits=(0, 1), val_fraction=0.34, seed=0
    )
    return root


def test_paper_recipe_needs_data(tmp_path):
    recipe = get_recipe("slowfast_paper")
    with pytest.raises(FileNotFoundError, match="--data"):
        run_recipe(recipe, out_dir=tmp_path / "a", overrides=QUIET)
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run_recipe(recipe, out_dir=tmp_path / "b", overrides=[*QUIET, f"data.root={tmp_path}"])


def test_paper_config_is_the_official_one():
    from paperzoo.slowfast.recipes import paper_config

    cfg = paper_config()
    assert (cfg.global_batch_size, cfg.optim.lr, cfg.optim.base_batch) == (64, 0.1, 64)
    assert (cfg.trainer.epochs, cfg.optim.warmup_epochs, cfg.optim.schedule) == (
        196,
        34.0,
        "cosine",
    )
    assert (cfg.optim.weight_decay, cfg.slowfast.norm_weight_decay, cfg.slowfast.dropout) == (
        1e-4,
        0.0,
        0.5,
    )
    assert (cfg.video.num_frames, cfg.video.sampling_rate, cfg.video.train_crop_size) == (
        32,
        2,
        224,
    )
    assert (
        cfg.video.num_ensemble_views,
        cfg.video.num_spatial_crops,
        cfg.video.test_crop_size,
    ) == (10, 3, 256)


def test_paper_runner_on_kinetics_style_lists(tmp_path, digits_dir):
    """The paper pipeline (random clips, jitter/crop/flip, precise BN, 2 clips x 3 crops test)
    at toy scale on real mp4 files."""
    overrides = [
        *QUIET, f"data.root={digits_dir}", "slowfast.model=slowfast_tiny", "slowfast.num_classes=0",
        "video.num_frames=8", "video.sampling_rate=1", "video.fps=8", "video.train_crop_size=32",
        "video.train_jitter_scales=36,44", "video.test_crop_size=32", "video.num_ensemble_views=2",
        "video.precise_bn_batches=2", "video.eval_batch_size=4", "trainer.epochs=0",
        "trainer.max_steps=2", "trainer.checkpoint_every=0", "optim.warmup_epochs=0",
        "data.batch_size=2", "data.num_workers=0",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("slowfast_paper"), out_dir=tmp_path, overrides=overrides)
    assert summary["steps"] == 2
    assert summary["extra"]["views_per_video"] == 6
    num_val = len((digits_dir / "val.csv").read_text().split())
    assert summary["metrics"]["num_videos"] == num_val // 2
    assert 0.0 <= summary["metrics"]["top1"] <= summary["metrics"]["top5"] <= 100.0
    assert (tmp_path / "model.safetensors").is_file()


def test_multiview_averages_softmax_over_views():
    # Video 0 (label 1): one view prefers class 0, two confidently prefer 1. Video 1 (label 0):
    # two views mildly prefer class 1, one confidently prefers 0; the mean softmax picks 0,
    # where a vote over views would pick 1.
    logits = torch.tensor([[2.0, 0.0], [0.0, 5.0], [0.0, 5.0], [4.0, 0.0], [0.0, 1.0], [0.0, 1.0]])
    videos = torch.tensor([0, 0, 0, 1, 1, 1])
    labels = torch.tensor([1, 1, 1, 0, 0, 0])
    dataset = TensorDataset(torch.arange(6), labels, videos)

    def model(index):
        return logits[index]

    model.eval = lambda: None
    result = evaluate_multiview(
        model, dataset, num_videos=2, num_classes=2, batch_size=4, device="cpu"
    )
    # video 1: mean softmax of class 0 = (0.982 + 0.269 + 0.269) / 3 = 0.507 > 0.5 -> right
    assert result == {"top1": 100.0, "top5": 100.0, "num_videos": 2.0}
    labels_wrong = TensorDataset(torch.arange(6), torch.tensor([0, 0, 0, 1, 1, 1]), videos)
    assert (
        evaluate_multiview(
            model, labels_wrong, num_videos=2, num_classes=2, batch_size=3, device="cpu"
        )["top1"]
        == 0.0
    )


def test_precise_bn_gives_exact_dataset_statistics():
    torch.manual_seed(0)
    clips = torch.randn(12, 3, 2, 4, 4) * torch.tensor([1.0, 2.0, 3.0]).view(1, 3, 1, 1, 1) + 5
    norm = torch.nn.BatchNorm3d(3, momentum=0.1)
    precise_bn(
        norm, TensorDataset(clips, torch.zeros(12)), num_batches=3, batch_size=4, device="cpu"
    )
    torch.testing.assert_close(norm.running_mean, clips.mean(dim=(0, 2, 3, 4)), rtol=0, atol=1e-5)
    assert norm.momentum == 0.1  # restored after the exact averaging


def test_tiny_recipe_trains_both_models_with_one_budget(tmp_path):
    overrides = [
        *QUIET, "trainer.max_steps=3", "moving_digits.num_videos_per_class=4", "moving_digits.digits=0,1",
        "moving_digits.seeds=0,1", "data.batch_size=4",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("slowfast_tiny"), out_dir=tmp_path, overrides=overrides)
    per_seed = summary["extra"]["per_seed"]
    assert set(per_seed) == {"slowfast_tiny", "slow_tiny"}
    for name, results in per_seed.items():
        assert len(results["direction_acc"]) == 2
        assert summary["metrics"][f"{name}/direction_acc"] == pytest.approx(
            sum(results["direction_acc"]) / 2
        )
        for seed in (0, 1):
            log = (tmp_path / name / f"seed{seed}" / "metrics.jsonl").read_text().splitlines()
            assert json.loads(log[-1])["step"] == 3
    gap = [
        a - b
        for a, b in zip(
            per_seed["slowfast_tiny"]["direction_acc"], per_seed["slow_tiny"]["direction_acc"]
        )
    ]
    assert summary["metrics"]["direction_acc_gap"] == pytest.approx(sum(gap) / 2)
