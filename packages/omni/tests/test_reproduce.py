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
from paperzoo.omni.recipes import (
    TINY_ARMS,
    TINY_VIEW_ARMS,
    tiny_config,
    tiny_study,
    tiny_view_config,
    tiny_view_study,
)
from paperzoo.omni.reproduce import DepthQuestions, Questions, evaluate
from paperzoo.omni.scenes import VOCAB, behind_question_set, depth_question_set

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


# -- the novel-view study ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def behind() -> Questions:
    return Questions(behind_question_set("train", 16))


@pytest.mark.parametrize("context", ["none", "own_view", "oracle_view", "filler"])
def test_every_view_arm_trains_the_view_tokens_and_the_answer(behind, context):
    torch.manual_seed(0)
    method = ContextUnrollingMethod(omni_tiny(vocab_size=18), context=context, primitive="view")
    batch = behind.batch(slice(0, 8))
    out = method.training_step(batch, 0)
    assert set(out) == {"loss", "answer_loss", "view_l1", "balance", "acc"}
    assert out["view_l1"] == pytest.approx(
        float((method.model.generate(method.model.prompt(batch), "view", batch)[0]
               - batch["view"]).abs().mean()), rel=1e-5)  # fmt: skip
    out["loss"].backward()
    m = method.model
    assert m.image_head.weight.grad.abs().sum() > 0  # the view pass is trained in every arm
    assert m.depth_head.weight.grad is None  # and the depth pass in none
    assert (m.filler.grad is not None) == (context == "filler")


def test_own_view_is_written_back_without_gradient(behind):
    torch.manual_seed(0)
    model = omni_tiny(vocab_size=18)
    method = ContextUnrollingMethod(model, context="own_view", primitive="view", depth_weight=0.0)
    method.training_step(behind.batch(slice(0, 8)), 0)["loss"].backward()
    grad = model.image_head.weight.grad
    assert grad is None or grad.abs().sum() == 0
    assert model.image_proj.weight.grad.abs().sum() > 0  # the written view's tokens are read


def test_a_context_must_write_the_studys_primitive():
    with pytest.raises(ValueError, match="supervised primitive is 'view'"):
        ContextUnrollingMethod(omni_tiny(), context="own_depth", primitive="view")


def test_view_evaluation_reads_the_true_view_for_the_oracle(behind):
    torch.manual_seed(0)
    model = omni_tiny(vocab_size=18)
    dev = torch.device("cpu")
    oracle = evaluate(model, behind, "oracle_view", 8, dev, "view")
    own = evaluate(model, behind, "own_view", 8, dev, "view")
    assert set(oracle) == {"accuracy", "accuracy_2_candidates", "accuracy_3_candidates",
                           "view_mae"}  # fmt: skip
    assert oracle["view_mae"] == pytest.approx(own["view_mae"])  # always the model's own view
    with torch.no_grad():
        b = behind.batch(slice(0, 8))
        a = model.unroll(b, ("view",), given={"view": b["view"]})
        z = model.unroll(b, ("view",), given={"view": torch.zeros_like(b["view"])})
    torch.testing.assert_close(a["intermediates"]["view"], b["view"])
    assert not torch.allclose(a["logits"], z["logits"])


def test_the_declared_view_study():
    study = tiny_view_study()
    assert [a.name for a in study.arms] == list(TINY_VIEW_ARMS) and study.seeds == (0, 1, 2)
    assert [(c.arm, c.baseline) for c in study.claims] == [
        ("own_view", "direct"), ("own_view", "filler"), ("oracle_view", "direct"),
    ]  # fmt: skip
    cfg = tiny_view_config()
    assert (cfg.data.dataset, cfg.omni.primitive, cfg.arch.vocab_size) == (
        "behind_questions", "view", len(VOCAB),
    )  # fmt: skip
    assert cfg.eval.split == "test"


def test_every_view_arm_runs_through_the_cli(tmp_path: Path):
    sets = [
        "trainer.max_steps=3", "trainer.log_every=1", "scenes.num_train=32",
        "scenes.num_test=20", "data.batch_size=8", "eval.batch_size=10",
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    args = [a for s in sets for a in ("--set", s)]
    out = subprocess.run(
        [*PAPERZOO, "reproduce", "omni", "--recipe", "tiny_view", "--out", str(tmp_path),
         "--seeds", "0", *args],
        capture_output=True, text=True, env=env, timeout=300,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr[-4000:]
    study = json.loads((tmp_path / "summary.json").read_text())
    assert set(study["arms"]) == set(TINY_VIEW_ARMS) and len(study["claims"]) == 3
    for arm in TINY_VIEW_ARMS:
        cell = json.loads((tmp_path / arm / "seed0" / "summary.json").read_text())
        assert cell["steps"] == 3 and cell["extra"]["num_eval"] == 20
        assert {"accuracy", "view_mae", "train_accuracy"} <= set(cell["metrics"])


def test_box_pixel_weight_is_a_weighted_mean_over_the_views_box_pixels(behind):
    batch = behind.batch(slice(0, 4))
    method = ContextUnrollingMethod(omni_tiny(vocab_size=18), context="own_view",
                                    primitive="view", box_pixel_weight=10.0)  # fmt: skip
    target = batch["view"]
    pred = torch.zeros_like(target)
    err = target.abs()  # (B, 3, S, S)
    boxes = batch["view_boxes"].unsqueeze(1).expand_as(err)
    assert 0 < boxes.float().mean() < 1
    w = torch.where(boxes, 10.0, 1.0)
    expected = (err * w).sum() / w.sum()
    torch.testing.assert_close(method.reconstruction_loss(pred, target, batch), expected)
    plain = ContextUnrollingMethod(omni_tiny(vocab_size=18), context="own_view", primitive="view")
    torch.testing.assert_close(plain.reconstruction_loss(pred, target, batch), err.mean())
