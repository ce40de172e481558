"""End to end: the paper recipe's whole pipeline (an ImageFolder encoded once to VAE latents,
XL/2's recipe at a test size, two optimizers, EMA, checkpoints and resume, decoding, FID with a
random FID Inception file against a reference ``.npz``), alone and under a 2-process torchrun;
every arm of the tiny study for a few steps; and the digit splits."""

from __future__ import annotations

import dataclasses
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from safetensors.torch import load_file

from paperzoo.advflow.recipes import AdvFlowRecipeConfig, pipeline_test_config
from paperzoo.core import get_recipe
from paperzoo.core.run import build_config, run_recipe

PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]


def _cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1", "HF_HUB_OFFLINE": "1"}
    out = subprocess.run([*PAPERZOO, *args], capture_output=True, text=True, env=env, timeout=900)
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _fid_inception_file(path: Path) -> Path:
    """Random weights in the layout of pt_inception-2015-12-05 (torchvision's Inception3 with
    1008 classes and no aux logits, as pytorch-fid and torch-fidelity load the file)."""
    from torchvision.models import inception_v3

    net = inception_v3(weights=None, aux_logits=False, num_classes=1008, init_weights=False)
    g = torch.Generator().manual_seed(0)
    state = {}
    for key, value in net.state_dict().items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.tensor(0)
        elif key.endswith("running_var"):
            state[key] = 0.5 + torch.rand(value.shape, generator=g)
        elif key.endswith("bn.weight"):
            state[key] = 1 + 0.1 * torch.randn(value.shape, generator=g)
        elif value.ndim > 1:
            state[key] = torch.randn(value.shape, generator=g) * (2.0 / value[0].numel()) ** 0.5
        else:
            state[key] = 0.1 * torch.randn(value.shape, generator=g)
    torch.save(state, path)
    return path


@pytest.fixture(scope="module")
def imagenet(tmp_path_factory) -> tuple[Path, Path, Path]:
    """A 2-class ImageFolder of 16 px images, a FID Inception file and reference statistics."""
    tmp = tmp_path_factory.mktemp("imagenet")
    rng = np.random.default_rng(0)
    for c, name in enumerate(("n01440764", "n01443537")):
        folder = tmp / "data" / "train" / name
        folder.mkdir(parents=True)
        for i in range(6):
            pixels = rng.integers(0, 256, (20, 24, 3), dtype=np.uint8)
            pixels[..., c] = 255  # the classes differ in colour
            Image.fromarray(pixels).save(folder / f"{name}_{i}.JPEG")
    inception = _fid_inception_file(tmp / "pt_inception-2015-12-05-6726825d.pth")
    reference = tmp / "VIRTUAL_imagenet256_labeled.npz"
    np.savez(reference, mu=np.zeros(2048), sigma=np.eye(2048))
    return tmp / "data", inception, reference


def _pipeline_config(root: Path, inception: Path, reference: Path) -> AdvFlowRecipeConfig:
    cfg = pipeline_test_config(str(root))
    return dataclasses.replace(
        cfg, eval=dataclasses.replace(cfg.eval, inception_weights=str(inception),
                                      reference_npz=str(reference)),
    )  # fmt: skip


def test_paper_pipeline_end_to_end_through_latent_extraction(imagenet, tmp_path):
    root, inception, reference = imagenet
    cfg = _pipeline_config(root, inception, reference)
    out = tmp_path / "run"
    summary = run_recipe(get_recipe("advflow_paper"), out_dir=out, config=cfg)
    assert summary["steps"] == 4 and np.isfinite(summary["metrics"]["fid"])
    assert summary["metrics"]["nfe"] == 1.0 and summary["metrics"]["train_seconds"] > 0
    # 12 images and their flips encoded once, to 4 x 8 x 8 latents
    manifest = json.loads((out / "_latents" / "manifest.json").read_text())
    assert manifest["complete"]
    assert "24 items" in summary["extra"]["data"]
    from paperzoo.gen.latents import LatentDataset

    z, label = LatentDataset(out / "_latents")[0]
    assert z.shape == (4, 8, 8) and label in (0, 1)
    # both optimizers stepped (2 D + 2 G), the generator's EMA is saved, the grid decoded
    records = [json.loads(r) for r in (out / "train" / "metrics.jsonl").read_text().splitlines()]
    assert sum(r.get("generator/steps", 0) for r in records) == 2
    assert sum(r.get("discriminator/steps", 0) for r in records) == 2
    assert {"discriminator/r1", "discriminator/cp", "generator/ot"} <= {
        k for r in records for k in r
    }
    assert (out / "train" / "model_ema.safetensors").is_file()
    grid = np.asarray(Image.open(out / "samples.png"))
    assert grid.shape == (2 + 18, 2 + 4 * 18, 3)  # 4 decoded 16 px images in a row
    # the EMA generator file loads into the model the recipe trains
    from paperzoo.advflow.convert import load_checkpoint
    from paperzoo.advflow.reproduce import _generator

    load_checkpoint(_generator(cfg), out / "train" / "model_ema.safetensors")
    # resume continues from the step-4 checkpoint to step 6, reusing the latents (train only:
    # eval.num_samples=0 skips sampling and FID)
    shards = sorted((out / "_latents").glob("*.safetensors"))
    mtimes = [p.stat().st_mtime_ns for p in shards]
    longer = dataclasses.replace(cfg, advflow=dataclasses.replace(cfg.advflow, max_steps=6),
                                 eval=dataclasses.replace(cfg.eval, num_samples=0))  # fmt: skip
    summary = run_recipe(get_recipe("advflow_paper"), out_dir=out, config=longer, resume=True)
    assert summary["steps"] == 6 and set(summary["metrics"]) == {"train_seconds", "nfe"}
    assert shards and [p.stat().st_mtime_ns for p in shards] == mtimes
    assert sorted(p.name for p in (out / "train" / "checkpoints").iterdir()) == ["step_0000006.pt"]


@pytest.mark.slow
def test_paper_pipeline_under_torchrun_two_processes(imagenet, tmp_path):
    root, inception, reference = imagenet
    sets = [
        "model=latent_test", "vae.tiny_config=true", "data.image_size=16", "data.num_workers=0",
        "advflow.max_steps=4", "advflow.batch_size=4", "advflow.ot_steps=4",
        "trainer.checkpoint_every=2", "trainer.log_every=1", "trainer.amp=off",
        "trainer.tensorboard=false", "trainer.progress=false", "trainer.device=cpu",
        "eval.num_samples=8", "eval.batch_size=4", "eval.grid=4", "torch_threads=1",
        f"eval.inception_weights={inception}", f"eval.reference_npz={reference}",
    ]  # fmt: skip
    out = tmp_path / "ddp"
    _cli("reproduce", "advflow", "--recipe", "paper", "--data", str(root), "--out", str(out),
         "--nproc", "2", *_sets(sets))  # fmt: skip
    summary = json.loads((out / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    assert np.isfinite(summary["metrics"]["fid"])


QUICK = [
    "advflow.max_steps=4", "flow.max_steps=4", "eval.num_samples=20", "eval.batch_size=10",
    "eval.grid=10", "trainer.log_every=1", "trainer.progress=false", "trainer.checkpoint_every=4",
]  # fmt: skip


def test_every_tiny_arm_runs_and_the_study_decides(tmp_path):
    _cli("reproduce", "advflow", "--out", str(tmp_path), "--seeds", "0", *_sets(QUICK))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == {"fm_euler1", "fm_heun_many", "advflow_1nfe"}
    assert len(study["claims"]) == 2 and all("holds" in c for c in study["claims"])
    metrics = {arm: {k: v["mean"] for k, v in info["metrics"].items()}
               for arm, info in study["arms"].items()}  # fmt: skip
    assert [metrics[a]["nfe"] for a in ("fm_euler1", "fm_heun_many", "advflow_1nfe")] == [1, 32, 1]
    assert all(np.isfinite(m["digit_fd"]) for m in metrics.values())
    # the two flow-matching arms sample one shared training
    assert metrics["fm_euler1"]["train_seconds"] == metrics["fm_heun_many"]["train_seconds"]
    assert len(list((tmp_path / "_shared").glob("flow_matching_*/seed0/done.json"))) == 1
    cell = json.loads((tmp_path / "advflow_1nfe" / "seed0" / "summary.json").read_text())
    assert cell["steps"] == 4 and cell["extra"]["scored_split"] == "test"
    assert (tmp_path / "advflow_1nfe" / "seed0" / "samples.png").is_file()


@pytest.mark.slow
def test_the_tiny_study_as_committed(tmp_path):
    """The whole study (3 arms x 3 seeds, about 10 minutes on one CPU thread per cell)."""
    _cli("reproduce", "advflow", "--out", str(tmp_path))
    study = json.loads((tmp_path / "summary.json").read_text())
    assert len(study["claims"]) == 2 and (tmp_path / "study.png").is_file()
    for info in study["arms"].values():
        assert set(info["metrics"]["digit_fd"]["per_seed"]) == {"0", "1", "2"}


def test_the_digit_splits_are_disjoint_and_test_is_the_classifiers_held_out_500():
    from paperzoo.advflow.recipes import tiny_config
    from paperzoo.advflow.reproduce import build_data
    from paperzoo.train.digit_features import digit_validation_split

    cfg = tiny_config()
    test = build_data(cfg, None)
    val = build_data(dataclasses.replace(cfg, split="val"), None)
    assert len(test.train) == 4000 and test.scored.shape == (500, 1, 28, 28)
    assert val.scored.shape == (500, 1, 28, 28) and not torch.equal(val.scored, test.scored)
    _, held_out = digit_validation_split()
    assert len(held_out) == 500
    x, _ = test.train.tensors
    assert x.min() >= -1 and x.max() <= 1
    # no scored digit is a training digit (compared pixel for pixel)
    train_set = {bytes(v.numpy().tobytes()) for v in x.flatten(1).half()}
    for scored in (test.scored, val.scored):
        assert not any(bytes(v.numpy().tobytes()) in train_set for v in scored.flatten(1).half())


def test_the_headline_chain_unguided_then_classifier_then_guided(imagenet, tmp_path):
    """advflow_paper -> advflow_paper_classifier -> advflow_paper_guided, 2 steps each, at the
    pipeline-test size: the guided run starts from the unguided EMA generator and its
    discriminator, loads the classifier and logs the cg term."""
    from paperzoo.advflow.recipes import paper_classifier_config, paper_guided_config

    root, inception, reference = imagenet
    base = _pipeline_config(root, inception, reference)
    latents = str(tmp_path / "_latents")  # encoded once, shared by the three runs
    short = dataclasses.replace(base.advflow, max_steps=2, ot_steps=2)
    unguided = dataclasses.replace(base, advflow=short, latents_dir=latents,
                                   eval=dataclasses.replace(base.eval, num_samples=0))  # fmt: skip
    run_recipe(get_recipe("advflow_paper"), out_dir=tmp_path / "unguided", config=unguided)
    # the classifier recipe: the paper's classifier stage at the test size
    paper_cls = paper_classifier_config()
    assert paper_cls.method == "classifier" and paper_cls.classifier.ema_decay == 0.9995
    cls_cfg = dataclasses.replace(
        unguided, method="classifier",
        classifier=dataclasses.replace(paper_cls.classifier, max_steps=2, batch_size=4,
                                       optim=dataclasses.replace(paper_cls.classifier.optim,
                                                                 lr=1e-3)),
    )  # fmt: skip
    summary = run_recipe(get_recipe("advflow_paper_classifier"), out_dir=tmp_path / "cls",
                         config=cls_cfg)  # fmt: skip
    assert summary["steps"] == 2 and summary["metrics"]["train_seconds"] > 0
    assert paper_cls.classifier.augment and "augmented and encoded" in summary["extra"]["data"]
    cls_file = tmp_path / "cls" / "train" / "model_ema.safetensors"
    assert summary["extra"]["classifier"] == str(cls_file) and cls_file.is_file()
    # the guided recipe's values, with the three files
    guided_paper = paper_guided_config()
    assert (guided_paper.advflow.cg_scale, guided_paper.advflow.augment_p) == (0.003, 0.4)
    assert guided_paper.advflow.ema_reload_every == 10_000
    ckpt = sorted((tmp_path / "unguided" / "train" / "checkpoints").glob("step_*.pt"))[-1]
    g_file = tmp_path / "unguided" / "train" / "model_ema.safetensors"
    guided_stage = dataclasses.replace(
        guided_paper.advflow, max_steps=4, batch_size=4, ot_steps=4,
        generator_optim=short.generator_optim, discriminator_optim=short.discriminator_optim,
        generator_checkpoint=str(g_file), discriminator_checkpoint=str(ckpt),
        # D G D G: the first EMA update copies G, so the reload after step 4 is the one that
        # changes G (the EMA then trails G's second step); G leaves the run as its EMA
        ema_reload_every=4,
    )  # fmt: skip
    guided = dataclasses.replace(
        base, advflow=guided_stage, latents_dir=latents,
        classifier=dataclasses.replace(guided_paper.classifier, checkpoint=str(cls_file)),
    )  # fmt: skip
    summary = run_recipe(get_recipe("advflow_paper_guided"), out_dir=tmp_path / "guided",
                         config=guided)  # fmt: skip
    assert summary["steps"] == 4 and np.isfinite(summary["metrics"]["fid"])
    records = [json.loads(r) for r in
               (tmp_path / "guided" / "train" / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    cg = [r["generator/cg"] for r in records if "generator/cg" in r]
    assert cg and all(np.isfinite(v) and v > 0 for v in cg)
    trained = load_file(str(tmp_path / "guided" / "train" / "model.safetensors"))
    ema = load_file(str(tmp_path / "guided" / "train" / "model_ema.safetensors"))
    assert set(trained) == set(ema) and all(torch.equal(trained[k], ema[k]) for k in ema)
    start = load_file(str(g_file))
    assert any(not torch.equal(start[k], ema[k]) for k in ema)  # the guided steps moved G
    # without the classifier file the guided recipe says what to pass
    missing = dataclasses.replace(guided, classifier=guided_paper.classifier)
    with pytest.raises(FileNotFoundError, match=r"classifier\.checkpoint"):
        run_recipe(get_recipe("advflow_paper_guided"), out_dir=tmp_path / "g2", config=missing)


def test_the_classifier_transform_is_the_official_affine_then_the_adm_crop_and_a_flip():
    """p 0.8 affine, p 0.5 flip: about 20% of draws are the plain ADM crop or its mirror, in
    equal shares; the rest differ from both; a seed fixes the draw."""
    from paperzoo.advflow.reproduce import classifier_image_transform
    from paperzoo.gen.latents import imagenet_transform

    rng = np.random.default_rng(0)
    image = Image.fromarray((rng.random((40, 30, 3)) * 255).astype(np.uint8))
    transform = classifier_image_transform(16)
    plain = imagenet_transform(16)(image)
    outcomes = {"plain": 0, "mirror": 0, "affine": 0}
    n = 400
    for seed in range(n):
        torch.manual_seed(seed)
        out = transform(image)
        assert out.shape == (3, 16, 16) and out.min() >= -1 and out.max() <= 1
        key = (
            "plain"
            if torch.equal(out, plain)
            else "mirror"
            if torch.equal(out, plain.flip(-1))
            else "affine"
        )
        outcomes[key] += 1
    untouched = outcomes["plain"] + outcomes["mirror"]
    assert 0.14 < untouched / n < 0.26, outcomes  # 1 - p = 0.2, sd 0.02
    assert min(outcomes["plain"], outcomes["mirror"]) > 0.3 * untouched, outcomes
    torch.manual_seed(7)
    first = transform(image)
    torch.manual_seed(7)
    assert torch.equal(first, transform(image))


@pytest.mark.parametrize(
    ("name", "nfe"), [("advflow_paper_4nfe_guided", 4), ("advflow_paper_deep_guided", 1)]
)
def test_the_4nfe_and_deep_guided_recipes_run_at_the_pipeline_size(imagenet, tmp_path, name, nfe):
    """The official multi-step cg (t_cg = the target time, cg_flow False) and the deep model's
    guided stage, 2 steps each from a classifier file: they train, log the cg term and score."""
    from safetensors.torch import save_file

    from paperzoo.advflow.model import build_classifier
    from paperzoo.advflow.reproduce import _LATENT_TEST

    root, inception, reference = imagenet
    base = _pipeline_config(root, inception, reference)
    paper = build_config(get_recipe(name))
    cls_file = tmp_path / "classifier.safetensors"
    save_file(build_classifier("tiny", **_LATENT_TEST).state_dict(), str(cls_file))
    stage = dataclasses.replace(
        paper.advflow, max_steps=2, batch_size=4, ot_steps=2,
        generator_optim=base.advflow.generator_optim,
        discriminator_optim=base.advflow.discriminator_optim,
    )  # fmt: skip
    cfg = dataclasses.replace(
        base, advflow=stage, sample_steps=paper.sample_steps,
        classifier=dataclasses.replace(paper.classifier, checkpoint=str(cls_file)),
    )  # fmt: skip
    summary = run_recipe(get_recipe(name), out_dir=tmp_path / "run", config=cfg)
    assert summary["steps"] == 2 and np.isfinite(summary["metrics"]["fid"])
    assert summary["metrics"]["nfe"] == nfe
    records = [json.loads(r) for r in
               (tmp_path / "run" / "train" / "metrics.jsonl").read_text().splitlines()]  # fmt: skip
    cg = [r["generator/cg"] for r in records if "generator/cg" in r]
    assert cg and all(np.isfinite(v) and v > 0 for v in cg)
