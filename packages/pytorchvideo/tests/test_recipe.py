"""Recipes: configs, the missing-data error, training on real moving-digit mp4 files."""

from __future__ import annotations

import json

import pytest
import torch

from paperzoo.core import get_recipe
from paperzoo.core.run import build_config, run_recipe
from paperzoo.pytorchvideo.recipes import paper_config, paper_l_config, tiny_config


def test_paper_config_is_the_official_recipe():
    cfg = paper_config()  # PySlowFast configs/Kinetics/X3D_XS.yaml
    assert (cfg.global_batch_size, cfg.optim.lr, cfg.optim.base_batch) == (128, 0.1, 128)
    assert (cfg.optim.weight_decay, cfg.optim.schedule, cfg.optim.warmup_epochs) == (
        5e-5,
        "cosine",
        35.0,
    )
    assert (cfg.trainer.epochs, cfg.x3d.dropout, cfg.x3d.norm_weight_decay) == (300, 0.5, 0.0)
    assert (cfg.video.num_frames, cfg.video.sampling_rate, cfg.video.train_crop_size) == (
        4,
        12,
        160,
    )
    assert (
        cfg.video.num_ensemble_views,
        cfg.video.num_spatial_crops,
        cfg.video.test_crop_size,
    ) == (10, 3, 182)
    large = paper_l_config()
    assert (large.x3d.model, large.trainer.epochs, large.optim.lr, large.global_batch_size) == (
        "x3d_l",
        256,
        0.05,
        64,
    )


def test_paper_recipe_without_data_says_how_to_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="--data DIR"):
        run_recipe(get_recipe("pytorchvideo_paper"), out_dir=tmp_path)
    with pytest.raises(FileNotFoundError, match=r"train\.csv"):
        run_recipe(
            get_recipe("pytorchvideo_paper"), out_dir=tmp_path, overrides=[f"data.root={tmp_path}"]
        )


def test_overrides_are_typed():
    cfg = build_config(
        get_recipe("pytorchvideo_tiny"), ["trainer.max_steps=7", "moving_digits.digits=0,1"]
    )
    assert cfg.trainer.max_steps == 7 and cfg.moving_digits.digits == (0, 1)
    assert tiny_config().x3d.model == "x3d_xs"


def _moving_digits(tmp_path, **kw):
    from paperzoo.data.datasets import LabeledVideoDataset
    from paperzoo.data.synthetic import write_moving_digits

    csv = write_moving_digits(tmp_path / "md", size=32, num_frames=8, seed=0, **kw)
    return LabeledVideoDataset.from_csv(csv, num_frames=4)


def test_x3d_xs_fits_real_moving_digit_videos(tmp_path):
    """A training smoke test on decoded h264 files: the loss of X3D-XS falls on a fixed batch."""
    from paperzoo.pytorchvideo import x3d_xs
    from paperzoo.pytorchvideo.method import VideoClassification

    data = _moving_digits(
        tmp_path, num_videos_per_class=2, num_directions=4, digits=(0, 1), val_fraction=0.0
    )
    clips = (
        torch.stack([data[i][0] for i in range(len(data))]) - 0.45
    ) / 0.225  # (16, 3, 4, 32, 32)
    labels = torch.tensor([data[i][1] for i in range(len(data))])
    torch.manual_seed(0)
    method = VideoClassification(
        x3d_xs(num_classes=8, input_crop_size=32, dropout_rate=0.0), channels_last=True
    )
    opt = torch.optim.SGD(method.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for step in range(25):
        out = method.training_step((clips, labels), step)
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
        losses.append(out["loss"].item())
    assert losses[0] == pytest.approx(torch.log(torch.tensor(8.0)).item(), abs=0.5)
    assert sum(losses[-5:]) / 5 < 0.5 * losses[0], losses


def test_tiny_recipe_end_to_end(tmp_path):
    """The tiny runner, shrunk: writes the videos, trains X3D and the 2D baseline, tests."""
    overrides = [
        "trainer.max_steps=3", "trainer.checkpoint_every=3", "global_batch_size=4",
        "moving_digits.num_videos_per_class=3", "moving_digits.digits=0,1",
        "moving_digits.val_fraction=0.34", "x3d.num_classes=8", "data.num_workers=0",
    ]  # fmt: skip
    summary = run_recipe(get_recipe("pytorchvideo_tiny"), out_dir=tmp_path, overrides=overrides)
    m = summary["metrics"]
    assert summary["steps"] == 3
    assert m["chance_top1"] == pytest.approx(1 / 8) and m["frame_only_ceiling_top1"] == 0.25
    assert 0.0 <= m["top1"] <= 1.0 and 0.0 <= m["baseline_2d_top1"] <= 1.0
    assert summary["extra"]["num_test_videos"] == 8  # 1 val video per class
    assert (tmp_path / "model.safetensors").is_file()
    assert (tmp_path / "baseline_2d" / "model.safetensors").is_file()
    assert len((tmp_path / "moving_digits" / "val.csv").read_text().splitlines()) == 8
    logged = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert any("loss" in row and row["step"] == 3 for row in logged), logged


@pytest.mark.slow
def test_tiny_recipe_three_seeds(tmp_path):
    """The README's tiny result: X3D-XS beats chance and the frame-averaged 2D baseline."""
    results = []
    for seed in range(3):
        summary = run_recipe(
            get_recipe("pytorchvideo_tiny"),
            out_dir=tmp_path / f"seed{seed}",
            overrides=[f"seed={seed}"],
        )
        results.append(summary["metrics"])
    x3d = torch.tensor([r["top1"] for r in results])
    base = torch.tensor([r["baseline_2d_top1"] for r in results])
    print(
        f"X3D-XS top-1 {x3d.mean():.3f} ± {x3d.std():.3f}; 2D baseline {base.mean():.3f} ± {base.std():.3f}"
    )
    # README: X3D-XS 53.2 ± 2.9 %, 2D baseline 27.8 ± 5.0 %, chance 8.3 %, frame-only ceiling 25 %.
    assert x3d.mean() > 2 * results[0]["chance_top1"]
    assert x3d.mean() > results[0]["frame_only_ceiling_top1"] + 0.1  # it must use motion
    assert x3d.mean() > base.mean() + 0.1
