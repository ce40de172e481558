from __future__ import annotations

import json

import pytest
from conftest import make_plugin

from paperzoo.core import ModelSpec, PaperSpec, RecipeSpec
from paperzoo.core.cli import main

RECIPE = RecipeSpec(
    name="linefit_tiny",
    paper="linefit",
    variant="tiny",
    config="linefit_recipe:LineFitConfig",
    runner="linefit_recipe:run",
    reference={"slope": 3.0},
)
PAPER = PaperSpec(name="linefit", title="Least squares", authors=("Legendre",), arxiv="0000.00000")


@pytest.fixture
def demo(registry):
    registry.register(
        make_plugin(
            "linefit",
            paperzoo_recipes=[RECIPE],
            paperzoo_papers=[PAPER],
            paperzoo_models=[
                ModelSpec(name="od", factory="collections:OrderedDict", paper="linefit")
            ],
        ),
        dist="paperzoo-linefit",
    )
    return registry


def test_list_tables(demo, capsys):
    assert main(["list", "recipes"]) == 0
    out = capsys.readouterr().out
    assert "linefit_tiny" in out and "paperzoo-linefit" in out
    assert main(["list", "papers"]) == 0
    assert "Least squares" in capsys.readouterr().out


def test_info_shows_spec_paper_and_fields(demo, capsys):
    assert main(["info", "linefit_tiny"]) == 0
    out = capsys.readouterr().out
    assert "trainer.max_steps: int = 50" in out
    assert "lr: float = 0.1" in out
    assert "Least squares" in out
    assert main(["info", "linefit_tny"]) == 2
    assert "did you mean 'linefit_tiny'" in capsys.readouterr().err


def test_reproduce_writes_summary_and_applies_overrides(demo, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "linefit", "--out", str(out), "--set", "trainer.max_steps=200"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["paper"] == "linefit" and summary["recipe"] == "tiny"
    assert summary["steps"] == 200 and summary["world_size"] == 1
    assert summary["reference"] == {"slope": 3.0}
    assert abs(summary["metrics"]["slope"] - 3.0) < 0.05  # converged with the longer run
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 200
    table = capsys.readouterr().out
    assert "slope" in table and "reference" in table
    # The override really changed the run: fewer steps -> a worse fit.
    short = tmp_path / "short"
    assert main(["train", "linefit_tiny", "--out", str(short), "--set", "trainer.max_steps=3"]) == 0
    assert (
        json.loads((short / "summary.json").read_text())["metrics"]["mse"]
        > summary["metrics"]["mse"]
    )


def test_reproduce_rejects_bad_override_before_running(demo, tmp_path, capsys):
    out = tmp_path / "run"
    assert main(["reproduce", "linefit", "--out", str(out), "--set", "trainer.max_step=1"]) == 2
    assert "did you mean trainer.max_steps" in capsys.readouterr().err
    assert not out.exists()


def test_reproduce_unknown_paper_or_variant(demo, capsys):
    assert main(["reproduce", "linefitt"]) == 2
    assert "did you mean 'linefit'" in capsys.readouterr().err
    assert main(["reproduce", "linefit", "--recipe", "papr"]) == 2
    assert "linefit --recipe tiny" in capsys.readouterr().err


def test_new_scaffolds_standard_layout(tmp_path, capsys):
    assert main(["new", "demo", "--dest", str(tmp_path), "--title", "A demo paper"]) == 0
    root = tmp_path / "demo"
    for rel in [
        "pyproject.toml",
        "README.md",
        "CHANGELOG.md",
        "src/paperzoo/demo/__init__.py",
        "src/paperzoo/demo/plugin.py",
        "src/paperzoo/demo/model.py",
        "tests/test_plugin.py",
    ]:
        assert (root / rel).is_file(), rel
    assert not (root / "src/paperzoo/__init__.py").exists()  # PEP 420 namespace
    pyproject = (root / "pyproject.toml").read_text()
    assert '[project.entry-points.paperzoo]\ndemo = "paperzoo.demo.plugin"' in pyproject
    readme = (root / "README.md").read_text()
    for section in [
        "## Paper",
        "## What is implemented",
        "## Install",
        "## Quickstart",
        "## Reproduce",
        "## Citation",
    ]:
        assert section in readme
    assert main(["new", "demo", "--dest", str(tmp_path)]) == 2  # refuses to overwrite
    assert main(["new", "Bad-Name", "--dest", str(tmp_path)]) == 2
    assert "lower-case Python identifier" in capsys.readouterr().err
