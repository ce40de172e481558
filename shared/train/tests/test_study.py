"""The claim-study runner: rules, aggregation, the table and PNG, SIGKILL resume, --cell/--collect."""

from __future__ import annotations

import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path

import pytest
from conftest import TESTS_DIR, subprocess_env
from study_recipe import RECIPE

from paperzoo.train.study import Arm, Claim, Study, StudyError, run_study

SCRIPT = str(TESTS_DIR / "scripts" / "run_study.py")
CELLS = [f"{arm}/seed{s}" for s in (0, 1, 2) for arm in ("untrained", "trained")]


# -- rules ---------------------------------------------------------------------------------------


def _values(a, b):
    return {"a": dict(enumerate(a)), "b": dict(enumerate(b))}


@pytest.mark.parametrize(
    ("rule", "a", "b", "margin", "higher", "holds"),
    [
        ("better_mean", [2, 2, 0.5], [1, 1, 1], 0.0, True, True),
        ("better_all_seeds", [2, 2, 0.5], [1, 1, 1], 0.0, True, False),  # seed 2 lost
        ("better_all_seeds", [2, 2, 1.5], [1, 1, 1], 0.0, True, True),
        ("better_all_seeds", [2, 2, 1.5], [1, 1, 1], 1.0, True, False),  # mean gain 0.83 < 1
        ("better_mean", [0.5, 0.6, 0.7], [1, 1, 1], 0.0, False, True),  # lower is better
        ("better_mean", [0.5, 0.6, 0.7], [1, 1, 1], 0.0, True, False),
        ("not_better", [1.1, 0.9, 1.0], [1, 1, 1], 0.05, True, True),
        ("not_better", [1.5, 1.4, 1.3], [1, 1, 1], 0.05, True, False),
        ("within", [1.1, 0.8, 1.0], [1, 1, 1], 0.1, True, True),
        ("within", [1.3, 1.2, 1.4], [1, 1, 1], 0.1, True, False),
    ],
)
def test_claim_rules(rule, a, b, margin, higher, holds):
    claim = Claim("s", metric="m", arm="a", baseline="b", rule=rule, margin=margin,
                  higher_is_better=higher)  # fmt: skip
    verdict = claim.decide(_values(a, b))
    assert verdict["holds"] is holds
    assert verdict["delta"] == pytest.approx(statistics.fmean(a) - statistics.fmean(b))
    assert verdict["std"]["a"] == pytest.approx(statistics.stdev(a))
    assert [v["delta"] for v in verdict["per_seed"].values()] == pytest.approx(
        [x - y for x, y in zip(a, b)]
    )
    assert set(verdict) >= {"statement", "holds", "metric", "per_seed", "mean", "std", "delta"}


def test_study_declaration_errors():
    with pytest.raises(StudyError, match="names arm 'c'"):
        Study(arms=(Arm("a"), Arm("b")), claims=(Claim("x", "m", arm="c", baseline="a"),))
    with pytest.raises(StudyError, match="unique"):
        Study(arms=(Arm("a"), Arm("a")))
    with pytest.raises(StudyError, match="unknown rule"):
        Claim("x", "m", arm="a", baseline="b", rule="better")
    with pytest.raises(StudyError, match="must be non-empty"):
        Arm("a/b")


# -- a real study ----------------------------------------------------------------------------------


def _arms_metrics(summary):
    return {name: arm["metrics"] for name, arm in summary["arms"].items()}


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The uninterrupted study: every other test compares against it.

    In a subprocess with the same environment (one thread) as the killed one, so that float
    reductions run in the same order and the comparison can be exact.
    """
    out = tmp_path_factory.mktemp("straight")
    done = subprocess.run([sys.executable, SCRIPT, str(out)], env=subprocess_env(),
                          capture_output=True, text=True, timeout=300)  # fmt: skip
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, json.loads((out / "summary.json").read_text()), done.stdout


def test_study_aggregates_cells_and_decides_claims(straight):
    out, summary, printed = straight
    for arm in ("untrained", "trained"):
        per_seed = []
        for seed in (0, 1, 2):
            cell = json.loads((out / arm / f"seed{seed}" / "summary.json").read_text())
            assert (out / arm / f"seed{seed}" / "metrics.jsonl").is_file()
            per_seed.append(cell["metrics"]["val_mse"])
        m = summary["arms"][arm]["metrics"]["val_mse"]
        assert [m["per_seed"][str(s)] for s in (0, 1, 2)] == per_seed
        assert m["mean"] == pytest.approx(statistics.fmean(per_seed))
        assert m["std"] == pytest.approx(statistics.stdev(per_seed))
    # The arm override reached the cell's config, and the seed too.
    cfg = json.loads((out / "untrained" / "seed2" / "config.json").read_text())["config"]
    assert cfg["lr"] == 0.0 and cfg["seed"] == 2
    true_claim, false_claim = summary["claims"]
    assert true_claim["holds"] is True and true_claim["delta"] < 0
    assert false_claim["holds"] is False
    # Printed: one block per metric with every seed, and both verdicts.
    assert "HOLDS: training lowers the held-out error" in printed
    assert "DOES NOT HOLD: training does not lower" in printed
    trained = summary["arms"]["trained"]["metrics"]["val_mse"]
    assert f"{trained['per_seed']['1']:.4g}" in printed
    # The data every cell uses was written once, into OUT/_shared.
    assert (out / "_shared" / "writes.log").read_text() == "write\n"
    # The PNG is a real image.
    import matplotlib.image

    image = matplotlib.image.imread(out / "study.png")
    assert image.ndim == 3 and image.shape[0] > 100 and image.shape[1] > 100


def test_sigkill_mid_study_then_resume_gives_the_same_numbers(straight, tmp_path):
    _, reference, _ = straight
    out = tmp_path / "killed"
    env = subprocess_env()
    env["PZ_STEP_SLEEP"] = "0.15"
    victim = subprocess.Popen([sys.executable, SCRIPT, str(out)], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)  # fmt: skip
    # Kill inside the third cell (untrained/seed1), after its first checkpoint.
    target = out / "untrained" / "seed1" / "checkpoints"
    deadline = time.monotonic() + 240
    while not (target.is_dir() and any(target.glob("step_*.pt"))):
        assert victim.poll() is None, victim.communicate()[0][-4000:]
        assert time.monotonic() < deadline, "the study never reached its third cell"
        time.sleep(0.05)
    time.sleep(0.2)
    os.kill(victim.pid, signal.SIGKILL)
    victim.communicate(timeout=60)
    assert not (out / "untrained" / "seed1" / "summary.json").exists(), "killed too late"
    finished = out / "untrained" / "seed0" / "summary.json"
    before = finished.stat().st_mtime_ns

    resumed = subprocess.run([sys.executable, SCRIPT, str(out), "resume"], env=subprocess_env(),
                             capture_output=True, text=True, timeout=300)  # fmt: skip
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert finished.stat().st_mtime_ns == before, "a finished cell ran again"
    assert "finished before" in resumed.stderr  # the progress line says which cells were skipped
    assert "cell 6/6" in resumed.stderr
    # The half-finished cell continued from its checkpoint rather than from step 0.
    records = [json.loads(x) for x in (target.parent / "metrics.jsonl").read_text().splitlines()]
    assert records[0]["step"] == 2
    summary = json.loads((out / "summary.json").read_text())
    assert _arms_metrics(summary) == _arms_metrics(reference)  # exactly, not approximately
    assert summary["claims"] == reference["claims"]


@pytest.fixture
def one_thread():
    """One torch thread, as in the subprocesses, so that results compare exactly."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def test_cells_one_by_one_then_collect(straight, tmp_path, one_thread):
    _, reference, _ = straight
    out = tmp_path / "fanout"
    run_study(RECIPE, out_dir=out, cell="trained/1")
    with pytest.raises(StudyError, match="5 of 6 cells are not finished") as err:
        run_study(RECIPE, out_dir=out, collect=True)
    assert "untrained/seed0" in str(err.value) and "--cell untrained/0" in str(err.value)
    for cell in ["untrained/0", "trained/0", "untrained/1", "untrained/2", "trained/2"]:
        run_study(RECIPE, out_dir=out, cell=cell)
    summary = run_study(RECIPE, out_dir=out, collect=True)
    assert _arms_metrics(summary) == _arms_metrics(reference)
    assert (out / "study.png").is_file()


def test_cell_errors_and_changed_config_on_resume(straight, tmp_path):
    with pytest.raises(StudyError, match="unknown arm 'traned'"):
        run_study(RECIPE, out_dir=tmp_path, cell="traned/0")
    with pytest.raises(StudyError, match="ARM/SEED"):
        run_study(RECIPE, out_dir=tmp_path, cell="trained")
    out = tmp_path / "changed"
    run_study(RECIPE, out_dir=out, cell="trained/0", overrides=["trainer.max_steps=4"])
    with pytest.raises(StudyError, match="different config"):
        run_study(RECIPE, out_dir=out, cell="trained/0", resume=True)


def test_seeds_subset(tmp_path):
    summary = run_study(RECIPE, out_dir=tmp_path, seeds=[5], overrides=["trainer.max_steps=2"])
    assert summary["seeds"] == [5]
    assert Path(tmp_path / "trained" / "seed5" / "summary.json").is_file()
    assert summary["claims"][0]["num_seeds"] == 1
