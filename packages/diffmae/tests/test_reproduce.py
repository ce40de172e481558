"""End to end: the tiny study through the shared study runner (shortened), and the paper
recipe's whole pipeline on a small image folder under a real 2-process torchrun (gloo, CPU).

The full tiny study is in test_reproduction_slow.py.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from paperzoo.core import get_recipe
from paperzoo.core.run import run_recipe
from paperzoo.train.study import run_study

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]
QUIET = ["trainer.progress=false", "trainer.log_every=1", "trainer.checkpoint_every=0"]
SHORT = [*QUIET, "pretrain.max_steps=3", "finetune.max_steps=2", "inpaint.num_images=8",
         "inpaint.inference_steps=2", "inpaint.grid_images=2"]  # fmt: skip


def _env() -> dict[str, str]:
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def test_tiny_study_runs_every_arm_and_decides_the_claims(tmp_path):
    out = tmp_path / "study"
    summary = run_study(get_recipe("diffmae_tiny"), out_dir=out, overrides=SHORT, seeds=[0],
                        stream=io.StringIO())  # fmt: skip
    pretrained_arms = {"mae", "diffmae_cross_self", "diffmae_cross", "diffusion"}
    assert set(summary["arms"]) == {*pretrained_arms, "scratch"}
    assert len(summary["claims"]) == 3 and all(isinstance(c["holds"], bool)
                                               for c in summary["claims"])  # fmt: skip
    floor = json.loads((out / "scratch" / "seed0" / "summary.json").read_text())
    assert floor["steps"] == 2 and set(floor["metrics"]) == {"finetune_top1"}  # no pre-training
    assert not (out / "scratch" / "seed0" / "pretrain").exists()
    for arm in pretrained_arms:
        cell = json.loads((out / arm / "seed0" / "summary.json").read_text())
        m = cell["metrics"]
        assert 0 <= m["finetune_top1"] <= 100 and m["inpaint_mse"] > 0
        assert cell["steps"] == 5 and cell["extra"]["labelled_images"] == 320
        assert (out / arm / "seed0" / "inpainting.png").is_file()
        assert (out / arm / "seed0" / "pretrain" / "model.safetensors").is_file()
    assert (out / "study.png").is_file()


def test_pretraining_resumes_exactly(tmp_path):
    common = [*QUIET, "finetune.enabled=false", "inpaint.enabled=false",
              "pretrain.optim.schedule=constant", "pretrain.optim.warmup_steps=0",
              "trainer.checkpoint_every=2"]  # fmt: skip
    recipe, sink = get_recipe("diffmae_tiny"), io.StringIO()
    straight, resumed = tmp_path / "a", tmp_path / "b"
    run_recipe(recipe, out_dir=straight, overrides=[*common, "pretrain.max_steps=4"], stream=sink)
    run_recipe(recipe, out_dir=resumed, overrides=[*common, "pretrain.max_steps=2"], stream=sink)
    run_recipe(recipe, out_dir=resumed, overrides=[*common, "pretrain.max_steps=4"], resume=True,
               stream=sink)  # fmt: skip
    from safetensors.torch import load_file

    a = load_file(str(straight / "pretrain" / "model.safetensors"))
    b = load_file(str(resumed / "pretrain" / "model.safetensors"))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def _image_folder(root: Path) -> None:
    from PIL import Image

    g = np.random.default_rng(0)
    for split, n in (("train", 8), ("val", 4)):
        for c, name in enumerate(("dark", "bright")):
            (root / split / name).mkdir(parents=True)
            for i in range(n):
                pixels = (g.random((40, 40, 3)) * 60 + 40 + 140 * c).astype(np.uint8)
                Image.fromarray(pixels).save(root / split / name / f"{i}.png")


# The paper recipe at toy scale: a 32 px RGB ViT and a few steps, the paper pipeline otherwise
# (image folder, MAE augmentations, DDPM with T = 1000, LLRD fine-tuning with mixup/CutMix).
PAPER_SMALL = [
    *QUIET, "model=tiny_rgb32", "data.image_size=32", "data.num_workers=0", "trainer.amp=off",
    "pretrain.decoder_embed_dim=32", "pretrain.decoder_depth=2", "pretrain.decoder_num_heads=2",
    "pretrain.epochs=0", "pretrain.max_steps=2", "pretrain.batch_size=8",
    "pretrain.optim.warmup_epochs=0", "finetune.epochs=0", "finetune.max_steps=2",
    "finetune.batch_size=8", "finetune.optim.warmup_epochs=0", "inpaint.num_images=4",
    "inpaint.inference_steps=2", "inpaint.grid_images=2", "trainer.tensorboard=false",
]  # fmt: skip


def test_paper_pipeline_under_torchrun_two_processes(tmp_path):
    folder = tmp_path / "imagenet"
    _image_folder(folder)
    out = tmp_path / "ddp"
    cmd = [*PAPERZOO, "reproduce", "diffmae", "--recipe", "paper", "--nproc", "2", "--out",
           str(out), "--data", str(folder)]  # fmt: skip
    for o in PAPER_SMALL:
        cmd += ["--set", o]
    proc = subprocess.run(cmd, capture_output=True, text=True, env=_env(), timeout=600)
    assert proc.returncode == 0, f"{proc.stdout[-3000:]}\n{proc.stderr[-5000:]}"
    assert "torch.distributed.run" in proc.stderr  # relaunched under torchrun
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    m = summary["metrics"]
    assert 0 <= m["finetune_top1"] <= 100 and m["inpaint_mse"] > 0
    assert (out / "inpainting.png").is_file()
    assert (out / "finetune" / "model.safetensors").is_file()


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ([], FileNotFoundError, "--data PATH"),
        (["data.root=/nonexistent"], FileNotFoundError, "does not exist"),
        (["stage=finetune"], ValueError, "pretrained=PATH"),
        (["data.dataset=kinetics", "data.root=/x"], ValueError, "needs a video model"),
    ],
)
def test_bad_paper_config_fails_before_training(tmp_path, overrides, error, match):
    from paperzoo.core.config import apply_overrides
    from paperzoo.core.run import RunContext
    from paperzoo.diffmae.recipes import paper_config
    from paperzoo.diffmae.reproduce import run

    with pytest.raises(error, match=match):
        cfg = apply_overrides(paper_config(), overrides)
        run(cfg, RunContext(out_dir=tmp_path, recipe=get_recipe("diffmae_paper")))
    assert not (tmp_path / "pretrain").exists()
