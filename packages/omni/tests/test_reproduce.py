"""The training objective per arm, and every arm of the tiny study for a few steps through
`paperzoo reproduce omni`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from paperzoo.omni.method import ContextUnrollingMethod
from paperzoo.omni.model import omni_tiny
from paperzoo.omni.recipes import TINY_ARMS, tiny_config, tiny_study
from paperzoo.omni.reproduce import DepthQuestions, evaluate
from paperzoo.omni.scenes import depth_question_set

torch.set_num_threads(1)
PAPERZOO = [sys.executable, "-m", "paperzoo.core.cli"]


@pytest.fixture(scope="module")
def questions() -> DepthQuestions:
    return DepthQuestions(depth_question_set("train", 16))


def _batch(data: DepthQuestions) -> dict[str, torch.Tensor]:
    return data.batch(slice(0, 8))


@pytest.mark.parametrize("context", ["none", "own_depth", "oracle_depth", "filler"])
def test_every_arm_trains_the_depth_tokens_and_the_answer(questions, context):
    torch.manual_seed(0)
    method = ContextUnrollingMethod(omni_tiny(), context=context)
    out = method.training_step(_batch(questions), 0)
    assert set(out) == {"loss", "answer_loss", "depth_l1", "balance", "acc"}
    out["loss"].backward()
    m = method.model
    assert m.depth_head.weight.grad.abs().sum() > 0  # the depth pass is trained in every arm
    assert m.text_head.weight.grad.abs().sum() > 0
    assert (m.filler.grad is not None) == (context == "filler")
    assert out["balance"].item() == pytest.approx(1.0, abs=0.5)


def test_own_depth_is_written_back_without_gradient(questions):
    torch.manual_seed(0)
    method = ContextUnrollingMethod(omni_tiny(), context="own_depth", depth_weight=0.0)
    method.training_step(_batch(questions), 0)["loss"].backward()
    # the only path from the depth head to the loss is the write-back, which is detached
    grad = method.model.depth_head.weight.grad
    assert grad is None or grad.abs().sum() == 0
    assert method.model.depth_proj.weight.grad.abs().sum() > 0  # but the depth tokens are read


def test_oracle_evaluation_reads_the_true_depth(questions):
    torch.manual_seed(0)
    model = omni_tiny()
    dev = torch.device("cpu")
    oracle = evaluate(model, questions, "oracle_depth", 8, dev)
    own = evaluate(model, questions, "own_depth", 8, dev)
    assert set(oracle) == {"accuracy", "accuracy_size_misleading", "depth_mae"}
    assert oracle["depth_mae"] == pytest.approx(own["depth_mae"])  # always the model's own depth
    assert 0.0 <= oracle["accuracy"] <= 100.0


def test_the_declared_study():
    study = tiny_study()
    assert [a.name for a in study.arms] == list(TINY_ARMS) and study.seeds == (0, 1, 2)
    main = study.claims[0]
    assert (main.arm, main.baseline, main.metric) == ("own_depth", "direct", "accuracy")
    assert study.claims[1].baseline == "filler"
    cfg = tiny_config()
    assert cfg.eval.split == "test" and cfg.torch_threads == 1


def test_every_tiny_arm_runs_through_the_cli_and_the_study_decides(tmp_path: Path):
    sets = [
        "trainer.max_steps=3", "trainer.log_every=1", "scenes.num_train=64",
        "scenes.num_test=40", "data.batch_size=8", "eval.batch_size=20",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run(
        [*PAPERZOO, "reproduce", "omni", "--out", str(tmp_path), "--seeds", "0", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == set(TINY_ARMS)
    assert len(study["claims"]) == 3
    for arm in TINY_ARMS:
        cell = json.loads((tmp_path / arm / "seed0" / "summary.json").read_text())
        assert cell["steps"] == 3
        assert {"accuracy", "depth_mae", "train_accuracy"} <= set(cell["metrics"])
        assert cell["extra"]["num_eval"] == 40
    cfg = json.loads((tmp_path / "filler" / "seed0" / "config.json").read_text())
    assert cfg["config"]["omni"]["context"] == "filler"
    # the trained weights read back through create_model(checkpoint_path=)
    from safetensors.torch import load_file

    from paperzoo.core import create_model

    path = tmp_path / "own_depth" / "seed0" / "model.safetensors"
    model = create_model("omni_tiny", checkpoint_path=str(path))
    saved = load_file(str(path))
    torch.testing.assert_close(model.depth_head.weight, saved["depth_head.weight"])
    # the scenes are rendered once and shared by the cells
    assert len(list((tmp_path / "_shared" / "scenes").glob("*.npz"))) == 2


def test_unlabelled_scenes_train_the_depth_tokens_only(questions):
    torch.manual_seed(0)
    method = ContextUnrollingMethod(omni_tiny(), context="none")
    batch = _batch(questions)
    batch["answer"] = torch.full_like(batch["answer"], -1)
    out = method.training_step(batch, 0)
    assert out["answer_loss"].item() == 0.0 and torch.isfinite(out["loss"])
    out["loss"].backward()
    assert method.model.text_head.weight.grad.abs().sum() == 0
    assert method.model.depth_head.weight.grad.abs().sum() > 0
