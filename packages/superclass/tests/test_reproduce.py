"""End to end: the tiny study through the shared study runner, an exact resume, and the paper
recipe's whole pipeline on small webdataset shards and JSONL under a real 2-process torchrun
(gloo, CPU), with the IDF statistics all-reduced.

Runs are shortened with overrides (a few steps); the full tiny study is in
test_reproduction_slow.py.
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
QUIET = ["trainer.progress=false", "trainer.tensorboard=false", "trainer.log_every=1"]
WORDS = ("red", "blue", "square", "circle", "small", "large", "bright", "dark")


def _env() -> dict[str, str]:
    # One intra-op thread per process: two ranks on two cores must not oversubscribe them.
    return {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONUNBUFFERED": "1"}


def _cli(*args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    out = subprocess.run(
        [*PAPERZOO, *args], capture_output=True, text=True, env=_env(), timeout=timeout
    )
    assert out.returncode == 0, f"stdout:\n{out.stdout[-3000:]}\nstderr:\n{out.stderr[-5000:]}"
    return out


def _sets(overrides: list[str]) -> list[str]:
    return [arg for o in overrides for arg in ("--set", o)]


def _weights(path: Path) -> dict[str, torch.Tensor]:
    from safetensors.torch import load_file

    return load_file(str(path))


def test_tiny_study_runs_both_arms_and_decides_the_claim(tmp_path):
    out = tmp_path / "study"
    overrides = [*QUIET, "trainer.max_steps=3", "lit.max_steps=2", "eval.batch_size=1000"]
    summary = run_study(
        get_recipe("superclass_tiny"), out_dir=out, overrides=overrides, seeds=[0, 1],
        stream=io.StringIO(),
    )  # fmt: skip
    assert summary["seeds"] == [0, 1] and set(summary["arms"]) == {"superclass", "clip"}
    (claim,) = summary["claims"]
    assert isinstance(claim["holds"], bool) and set(claim["per_seed"]) == {"0", "1"}
    assert (claim["arm"], claim["baseline"], claim["metric"]) == (
        "superclass",
        "clip",
        "linear_top1",
    )
    for arm in ("superclass", "clip"):
        m = summary["arms"][arm]["metrics"]
        assert {"linear_top1", "zeroshot_top1", "random_init_linear_top1"} <= set(m)
        cell = json.loads((out / arm / "seed0" / "summary.json").read_text())
        assert cell["steps"] == 3 and 0 <= cell["metrics"]["zeroshot_top1"] <= 100
        assert cell["extra"]["captions_at_full_context"] == 0  # no caption was cut at 32
    sc = json.loads((out / "superclass" / "seed1" / "summary.json").read_text())["extra"]
    assert sc["idf"]["num_samples"] == 3.0 and (out / "superclass" / "seed1" / "lit").is_dir()
    assert "idf" not in json.loads((out / "clip" / "seed1" / "summary.json").read_text())["extra"]
    assert (out / "study.png").is_file()


def test_resume_is_exact_with_the_idf_statistics(tmp_path):
    # Constant lr: a 4-step run resumed to 8 follows the same schedule as a straight 8-step run.
    common = [*QUIET, "optim.schedule=constant", "optim.warmup_steps=0", "eval.enabled=false",
              "lit.enabled=false", "trainer.checkpoint_every=4"]  # fmt: skip
    recipe = get_recipe("superclass_tiny")
    straight, resumed = tmp_path / "straight", tmp_path / "resumed"
    sink = io.StringIO()
    run_recipe(recipe, out_dir=straight, overrides=[*common, "trainer.max_steps=8"], stream=sink)
    run_recipe(recipe, out_dir=resumed, overrides=[*common, "trainer.max_steps=4"], stream=sink)
    summary = run_recipe(
        recipe, out_dir=resumed, overrides=[*common, "trainer.max_steps=8"], resume=True,
        stream=sink,
    )  # fmt: skip
    assert summary["steps"] == 8 and summary["extra"]["idf"]["num_samples"] == 8.0
    a, b = _weights(straight / "model.safetensors"), _weights(resumed / "model.safetensors")
    assert a.keys() == b.keys() and a["cap_fq"].dtype == torch.float64
    assert all(torch.equal(a[k], b[k]) for k in a)
    # The loss falls on real data: the IDF-weighted caption loss of the first and last steps.
    rows = [json.loads(r) for r in (straight / "metrics.jsonl").read_text().splitlines()]
    losses = [r["loss"] for r in rows if "loss" in r]
    assert len(losses) == 8 and losses[-1] < losses[0] - 0.5, losses


def _png(value: int, size: int = 32) -> bytes:
    from PIL import Image

    g = np.random.default_rng(value)
    pixels = (g.random((size, size, 3)) * 60 + 3 * value).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(pixels).save(buf, format="PNG")
    return buf.getvalue()


def _caption(i: int) -> str:
    g = np.random.default_rng(1000 + i)
    return "a " + " ".join(g.choice(WORDS, size=3, replace=False)) + f" thing number {i % 5}"


def _shards(root: Path, n: int = 32, per_shard: int = 8) -> None:
    import webdataset as wds

    root.mkdir()
    for s in range(n // per_shard):
        with wds.TarWriter(str(root / f"{s:05d}.tar")) as sink:
            for i in range(s * per_shard, (s + 1) * per_shard):
                image = b"\x89PNG\r\n\x1a\n truncated" if i == 5 else _png(i)  # one corrupt image
                sink.write({"__key__": f"{i:06d}", "png": image, "txt": _caption(i)})


def _image_folder(root: Path) -> None:
    from PIL import Image

    for split in ("train", "val"):
        for c, name in enumerate(("dark_things", "bright_things")):
            (root / split / name).mkdir(parents=True)
            for i in range(6):
                v = 40 + 150 * c + i
                Image.fromarray(np.full((30, 30, 3), v, np.uint8)).save(
                    root / split / name / f"{i}.png"
                )


# The paper recipe at toy scale: the tiny towers and short runs, the official pipeline
# otherwise (webdataset shards, open_clip transform, AdamW, LiT, linear probe + zero-shot).
PAPER_SMALL = [
    *QUIET,
    "model=superclass_vit_tiny_mnist",
    "clip_model=superclass_clip_tiny_mnist",
    "global_batch_size=8",
    "context_length=32",
    "grad_checkpointing=false",
    "data.image_size=28",
    "data.num_workers=0",
    "trainer.amp=off",
    "trainer.max_steps=3",
    "trainer.checkpoint_every=0",
    "optim.warmup_steps=1",
    "lit.text=tiny_mnist",
    "lit.embed_dim=64",
    "lit.max_steps=2",
    "lit.warmup_steps=1",
    "eval.batch_size=8",
    "max_bad_image_fraction=0.2",
]


def test_paper_pipeline_under_two_processes_all_reduces_the_idf_statistics(tmp_path):
    shards, folder = tmp_path / "shards", tmp_path / "imagenet"
    _shards(shards)
    _image_folder(folder)
    ddp = tmp_path / "ddp"
    # 4 steps of 8: the whole epoch of 32 pairs, so the corrupt one is met on one of the ranks.
    data = [f"data.root={shards}", f"eval.root={folder}", f"shard_index_dir={tmp_path / 'idx'}",
            "trainer.max_steps=4"]  # fmt: skip
    proc = _cli(
        "reproduce", "superclass", "--recipe", "paper", "--nproc", "2", "--out", str(ddp),
        *_sets([*PAPER_SMALL, *data]),
    )  # fmt: skip
    assert "torch.distributed.run" in proc.stderr  # really relaunched under torchrun
    summary = json.loads((ddp / "summary.json").read_text())
    assert summary["world_size"] == 2 and summary["steps"] == 4
    extra = summary["extra"]
    assert extra["per_process_batch"] == 4 and extra["idf"]["num_samples"] == 4.0
    assert extra["idf"]["max_difference_across_ranks"] == 0.0  # identical on both ranks
    assert extra["skipped_files"]["pretrain"] == 1  # the corrupt image, skipped and counted
    assert "webdataset: 4 shards, 32 pairs" in extra["data"]
    for key in ("linear_top1", "zeroshot_top1"):
        assert 0.0 <= summary["metrics"][key] <= 100.0
    assert (ddp / "lit" / "model.safetensors").is_file()  # the LiT stage ran (under DDP)
    # One process over the whole global batch of 8: the same running statistics.
    single = tmp_path / "single"
    run_recipe(
        get_recipe("superclass_paper"), out_dir=single, stream=io.StringIO(),
        overrides=[*PAPER_SMALL, *data, "eval.enabled=false", "lit.enabled=false"],
    )  # fmt: skip
    a, b = _weights(ddp / "model.safetensors"), _weights(single / "model.safetensors")
    assert float(a["num_samples"]) == float(b["num_samples"]) == 4.0
    assert a["cap_fq"].abs().sum() > 0
    torch.testing.assert_close(a["cap_fq"], b["cap_fq"], rtol=1e-12, atol=1e-15)
    # DDP averages the gradients of the two halves: the weights follow the 1-process run.
    torch.testing.assert_close(
        a["text_decoder.text_projection.bias"], b["text_decoder.text_projection.bias"],
        rtol=1e-4, atol=1e-5,
    )  # fmt: skip


def test_paper_pipeline_on_jsonl_trains_the_clip_baseline(tmp_path):
    root = tmp_path / "pairs"
    root.mkdir()
    lines = []
    for i in range(12):
        (root / f"{i}.png").write_bytes(b"not a png" if i == 3 else _png(i))
        lines.append(json.dumps({"image": f"{i}.png", "caption": _caption(i)}))
    (root / "pairs.jsonl").write_text("\n".join(lines))
    summary = run_recipe(
        get_recipe("superclass_paper"), out_dir=tmp_path / "out", stream=io.StringIO(),
        overrides=[*PAPER_SMALL, f"data.root={root / 'pairs.jsonl'}", "method=clip",
                   "global_batch_size=4", "max_bad_image_fraction=0.5"],
    )  # fmt: skip
    assert summary["steps"] == 3 and summary["extra"]["data"].startswith("JSONL")
    assert summary["extra"]["skipped_files"]["pretrain"] >= 1
    assert "logit_scale" in _weights(tmp_path / "out" / "model.safetensors")


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ([], FileNotFoundError, "--data PATH"),
        (["data.root=/nonexistent/shards"], FileNotFoundError, "does not exist"),
        (["method=siglip"], Exception, "method"),
    ],
)
def test_bad_paper_config_fails_before_training(tmp_path, overrides, error, match):
    from paperzoo.core.config import apply_overrides
    from paperzoo.core.run import RunContext
    from paperzoo.superclass.recipes import paper_config
    from paperzoo.superclass.reproduce import run

    with pytest.raises(error, match=match):
        cfg = apply_overrides(paper_config(), overrides)
        run(cfg, RunContext(out_dir=tmp_path, recipe=get_recipe("superclass_paper")))
    assert not (tmp_path / "checkpoints").exists()
