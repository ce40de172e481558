"""The paper recipes hold the official hyper-parameters; the paper pipeline runs at toy scale."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from paperzoo.asymsiam.recipes import PAPER_LINEAR_TOP1, paper_config
from paperzoo.core import get_recipe
from paperzoo.core.run import run_recipe


def test_paper_recipe_is_the_official_setting():
    cfg = paper_config()
    assert cfg.model == "asymsiam_resnet50" and cfg.global_batch_size == 256
    assert (cfg.optim.name, cfg.optim.lr, cfg.optim.momentum, cfg.optim.weight_decay) == (
        "sgd",
        0.03,
        0.9,
        1e-4,
    )
    assert cfg.optim.schedule == "cosine" and cfg.optim.warmup_steps == 0
    assert cfg.trainer.max_steps == 100 * 1_281_167 // 256
    m = cfg.moco
    assert (m.queue_size, m.momentum, m.temperature, m.crop_min_scale) == (65536, 0.999, 0.2, 0.2)
    e = cfg.eval  # SimSiam's main_lincls.py --lars
    assert (e.linear_optimizer, e.linear_lr, e.linear_base_batch, e.linear_batch_size) == (
        "lars",
        0.1,
        256,
        4096,
    )
    assert (e.linear_epochs, e.linear_schedule, e.linear_weight_decay) == (90, "cosine", 0.0)
    a = cfg.asym
    assert (a.num_small_crops, a.small_size, a.small_crop_scale, a.multicrop_crop_min_scale) == (
        6,
        96,
        (0.05, 0.14),
        0.14,
    )
    assert not any((a.multicrop, a.scalemix, a.asym_aug, a.asym_bn, a.mean_enc))


@pytest.mark.parametrize("design", ["multicrop", "scalemix", "asym_aug", "asym_bn", "mean_enc"])
def test_each_paper_design_switches_one_flag_and_targets_the_paper(design):
    recipe = get_recipe(f"asymsiam_paper_{design}")
    assert recipe.reference == {"linear_top1": PAPER_LINEAR_TOP1[design]}
    from paperzoo.core._imports import resolve

    cfg = resolve(recipe.config)()
    on = [
        f
        for f in ("multicrop", "scalemix", "asym_aug", "asym_bn", "mean_enc")
        if getattr(cfg.asym, f)
    ]
    assert on == [design]


def _image_folder(root: Path, per_class: int = 4) -> None:
    """root/{train,val}/<class>/*.png, real encoded PNGs of two classes (dark and bright)."""
    from torchvision.io import write_png

    g = torch.Generator().manual_seed(0)
    for split in ("train", "val"):
        for c, name in enumerate(("n0001", "n0002")):
            folder = root / split / name
            folder.mkdir(parents=True)
            for i in range(per_class):
                img = (torch.rand(3, 40, 40, generator=g) * 60 + 60 + 120 * c).to(torch.uint8)
                write_png(img, str(folder / f"{i}.png"))


def test_paper_pipeline_on_an_image_folder_with_lars_linear_eval(tmp_path):
    """ImageFolder, MultiCrop + MeanEnc views, then SimSiam's LARS linear eval via the Trainer."""
    data = tmp_path / "imagenet"
    _image_folder(data)
    overrides = [
        "model=asymsiam_resnet10_narrow", "global_batch_size=4", "moco.queue_size=16",
        "data.image_size=32", "asym.small_size=16", "data.num_workers=0", "trainer.max_steps=2",
        "trainer.checkpoint_every=0", "trainer.progress=false", "trainer.tensorboard=false",
        "trainer.log_every=1",
        "eval.linear_epochs=2", "eval.linear_batch_size=4", "eval.batch_size=4",
        "asym.mean_enc=true", f"data.root={data}",
    ]  # fmt: skip
    summary = run_recipe(
        get_recipe("asymsiam_paper_multicrop"), out_dir=tmp_path / "out", overrides=overrides
    )
    assert summary["steps"] == 2
    assert 0.0 <= summary["metrics"]["linear_top1"] <= 100.0
    lin = tmp_path / "out" / "linear_eval"
    assert (lin / "model.safetensors").is_file()
    rows = [json.loads(r) for r in (lin / "metrics.jsonl").read_text().splitlines() if r.strip()]
    lrs = [r["lr"] for r in rows if "lr" in r]
    # LARS at lr 0.1 x 4/256 with a cosine schedule: the peak is the scaled lr, then it decays.
    assert lrs and max(lrs) == pytest.approx(0.1 * 4 / 256, rel=1e-6) and lrs[-1] < lrs[0]
    cfg = json.loads((tmp_path / "out" / "config.json").read_text())["config"]
    assert cfg["asym"]["multicrop"] and cfg["asym"]["mean_enc"]
