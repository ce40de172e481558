"""End to end through `paperzoo reproduce cafm`: every arm of the tiny study for a few steps, and
the paper recipes' whole pipeline (an ImageNet-layout folder of generated images, a checkpoint in
the official SiT / JiT layout, VAE latent extraction for SiT, CAFM post-training, sampling, FID
with random Inception weights against a reference .npz) at a test size."""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

from paperzoo.cafm.recipes import paper_config, paper_jit_config, pipeline_test_config
from paperzoo.core.config import to_dict

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]
TINY_QUICK = [
    "base.max_steps=4", "post.max_steps=6", "post.d_warmup_steps=2", "post.d_steps_per_g=1",
    "post.flow_matching_steps=3", "post.batch_size=8", "base.batch_size=8",
    "sample.num_samples=20", "sample.steps=2", "sample.batch_size=10", "sample.grid_per_class=1",
    "trainer.progress=false", "trainer.log_every=1",
]  # fmt: skip


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([*PAPERZOO, *args], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def test_every_tiny_arm_runs_and_the_study_decides(tmp_path):
    _cli("reproduce", "cafm", "--out", str(tmp_path), "--seeds", "0", *_sets(TINY_QUICK))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == {"base", "flow_matching", "cafm"}
    assert len(study["claims"]) == 2 and all(isinstance(c["holds"], bool) for c in study["claims"])
    steps = {}
    for arm in ("base", "flow_matching", "cafm"):
        cell = json.loads((tmp_path / arm / "seed0" / "summary.json").read_text())
        assert cell["metrics"]["digit_fd"] > 0
        assert (tmp_path / arm / "seed0" / "samples.png").is_file()
        steps[arm] = cell["steps"]
        assert cell["extra"]["scored_split"] == "test"
    assert steps == {"base": 0, "flow_matching": 3, "cafm": 6}
    bases = list((tmp_path / "_shared").glob("base_seed0_*"))
    assert len(bases) == 1  # one base model, trained once, read by every arm
    records = [json.loads(line) for line in
               (tmp_path / "cafm" / "seed0" / "post" / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    # D D | D G | D G: 2 warm-up D steps, then one D step per G step
    assert sum(r.get("generator/steps", 0) for r in records) == 2
    assert sum(r.get("discriminator/steps", 0) for r in records) == 4


def _overrides(cfg: Any, base: Any) -> list[str]:
    """The ``--set`` arguments that turn ``base`` into ``cfg``."""

    def flat(d: dict, prefix: str = "") -> dict[str, Any]:
        out: dict[str, Any] = {}
        for k, v in d.items():
            if isinstance(v, dict) and k != "model_args":
                out.update(flat(v, f"{prefix}{k}."))
            else:
                out[f"{prefix}{k}"] = v
        return out

    want, have = flat(to_dict(cfg)), flat(to_dict(base))
    return [f"{k}={json.dumps(v)}" for k, v in want.items() if have.get(k) != v]


def _image_folder(root: Path, size: int, classes: int = 3, per_class: int = 3) -> Path:
    from PIL import Image

    rng = np.random.default_rng(0)
    for c in range(classes):
        folder = root / "train" / f"n{c:08d}"
        folder.mkdir(parents=True)
        for i in range(per_class):
            pixels = rng.integers(0, 256, (size + 4, size + 6, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(folder / f"img{i}.png")
    return root


def _fid_files(tmp: Path) -> tuple[Path, Path]:
    """Random weights in the FID Inception layout (torchvision's Inception3 with 1008 classes, the
    layout of pt_inception-2015-12-05) and reference statistics in ADM's npz layout."""
    from torchvision.models import inception_v3

    from paperzoo.train.generative import save_reference_statistics

    net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif value.ndim > 1:
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
    weights = tmp / "pt_inception-2015-12-05-6726825d.pth"
    torch.save(state, weights)
    reference = tmp / "VIRTUAL_imagenet256_labeled.npz"
    save_reference_statistics(reference, np.zeros(2048), np.eye(2048))
    return weights, reference


@pytest.fixture(scope="module")
def fid_files(tmp_path_factory) -> tuple[Path, Path]:
    pytest.importorskip("torch_fidelity", reason="the fid extra (torch-fidelity) is not installed")
    return _fid_files(tmp_path_factory.mktemp("fid"))


def _run_paper(model: str, tmp_path: Path, fid_files: tuple[Path, Path], checkpoint: Path,
               image_size: int, cli: tuple[str, ...] = ()) -> dict:  # fmt: skip
    root = _image_folder(tmp_path / "imagenet", image_size)
    cfg = pipeline_test_config(str(root), model=model)
    base = paper_config() if model == "sit_xl_2" else paper_jit_config()
    weights, reference = fid_files
    sets = [*_overrides(cfg, base), f"checkpoint={checkpoint}",
            f"sample.inception_weights={weights}", f"sample.reference_npz={reference}"]  # fmt: skip
    recipe = "paper" if model == "sit_xl_2" else "paper_jit"
    out = tmp_path / "run"
    _cli("reproduce", "cafm", "--recipe", recipe, "--out", str(out), *cli, *_sets(sets))
    summary = json.loads((out / "summary.json").read_text())
    assert (out / "samples.png").is_file() and (out / "post" / "model_ema.safetensors").is_file()
    assert np.isfinite(summary["metrics"]["fid"]) and summary["metrics"]["fid"] > 0
    assert summary["steps"] == cfg.post.max_steps
    return summary


def _sit_checkpoint(tmp_path: Path) -> Path:
    from paperzoo.cafm.model import cafm_sit_xl_2

    args = pipeline_test_config("", model="sit_xl_2").model_args
    torch.manual_seed(0)
    sit = cafm_sit_xl_2(**args)
    ckpt = tmp_path / "0400000.pt"  # SiT's train.py layout
    state = {k: v + 0.01 * torch.randn_like(v) for k, v in sit.state_dict().items()}
    torch.save({"model": state, "ema": state, "opt": {}, "args": argparse.Namespace(model="SiT")},
               ckpt)  # fmt: skip
    return ckpt


def test_sit_paper_pipeline_on_an_imagenet_folder(tmp_path, fid_files):
    summary = _run_paper("sit_xl_2", tmp_path, fid_files, _sit_checkpoint(tmp_path), 16)
    assert "ImageNet latents: 18 items" in summary["extra"]["data"]  # 9 images + their flips
    manifest = json.loads((tmp_path / "run" / "_latents" / "manifest.json").read_text())
    assert manifest["complete"] and manifest["flip"]


@pytest.mark.slow
def test_sit_paper_pipeline_under_torchrun_two_processes(tmp_path, fid_files):
    summary = _run_paper("sit_xl_2", tmp_path, fid_files, _sit_checkpoint(tmp_path), 16,
                         cli=("--nproc", "2"))  # fmt: skip
    assert summary["world_size"] == 2


def test_jit_paper_pipeline_on_an_imagenet_folder(tmp_path, fid_files):
    from paperzoo.cafm.jit import cafm_jit_h_16

    args = pipeline_test_config("", model="jit_h_16").model_args
    torch.manual_seed(0)
    jit = cafm_jit_h_16(**args)
    net = {"net." + k: v for k, v in jit.state_dict().items()}
    ckpt = tmp_path / "checkpoint-last.pth"  # JiT's training checkpoint
    torch.save({"model": net, "model_ema1": net, "model_ema2": net, "epoch": 1}, ckpt)
    summary = _run_paper("jit_h_16", tmp_path, fid_files, ckpt, 32)
    assert "ImageNet pixels: 9 images" in summary["extra"]["data"]


def test_paper_recipe_fails_fast_without_its_files(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [*PAPERZOO, "reproduce", "cafm", "--recipe", "paper", "--out", str(tmp_path / "r"),
         "--data", str(tmp_path)],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert proc.returncode != 0 and "sample.inception_weights" in proc.stderr


@pytest.mark.slow
def test_the_tiny_study_as_shipped(tmp_path):
    """The real recipe, every cell (about 12 minutes on one thread)."""
    _cli("reproduce", "cafm", "--out", str(tmp_path))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == {"base", "flow_matching", "cafm"}
    for arm in study["arms"].values():
        assert len(arm["metrics"]["digit_fd"]["per_seed"]) == 3
    assert all(isinstance(c["holds"], bool) for c in study["claims"])
