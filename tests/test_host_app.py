"""A host application outside this repo discovers paperzoo plugins through real installs.

Three throwaway distributions are written to a temporary directory and installed, with the
paperzoo-core wheel, into a fresh environment (no monkeypatching of entry points):
- ``acme-zoo`` registers a model and a paper through the ``paperzoo`` entry point;
- ``broken-zoo`` fails at import time;
- ``clash-zoo`` registers a model under a name acme-zoo already uses.
"""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from conftest import build_wheel, make_venv, run, uv

PYPROJECT = """\
[project]
name = "{name}"
version = "{version}"
requires-python = ">=3.10"
dependencies = ["paperzoo-core"]

[project.entry-points.paperzoo]
{ep} = "{module}.plugin"

[build-system]
requires = ["hatchling"]
build-backend = "hatchling.build"

[tool.hatch.build.targets.wheel]
packages = ["{module}"]
"""

ACME_PLUGIN = """
from paperzoo.core import ModelSpec, PaperSpec, hookimpl

@hookimpl
def paperzoo_papers():
    return [PaperSpec(name="acme", title="ACME nets", authors=("W. E. Coyote",), arxiv="2401.00001")]

@hookimpl
def paperzoo_models():
    return [ModelSpec(name="acme_net", factory="acme_zoo.model:acme_net", paper="acme",
                      default_args={"width": 2})]
"""

# The model is plain Python on purpose: the host app must not need torch to discover or build.
ACME_MODEL = """
class AcmeNet:
    def __init__(self, width):
        self.width = width
        self.weights = [0.5 * (i + 1) for i in range(width)]

    def __call__(self, xs):
        return sum(w * x for w, x in zip(self.weights, xs))

def acme_net(width=2):
    return AcmeNet(width)
"""

BROKEN_PLUGIN = """
raise ImportError("libacme.so.3: cannot open shared object file")
"""

CLASH_PLUGIN = """
from paperzoo.core import ModelSpec, hookimpl

@hookimpl
def paperzoo_models():
    return [ModelSpec(name="acme_net", factory="clash_zoo.plugin:make")]

def make():
    return "clash"
"""

HOST_APP = """
import json, sys, warnings
import paperzoo.core as pz

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    try:
        models = pz.list_models()
        error = None
    except pz.DuplicateNameError as exc:
        models, error = None, str(exc)
result = {"models": models, "error": error,
          "warnings": [str(w.message) for w in caught if issubclass(w.category, pz.PluginLoadWarning)],
          "papers": pz.list_papers(), "torch_imported": "torch" in sys.modules}
if models:
    net = pz.create_model("acme_net", width=3)
    result["output"] = net([1.0, 1.0, 1.0])
    try:
        pz.create_model("acme_nte")
    except pz.UnknownNameError as exc:
        result["unknown"] = str(exc)
print(json.dumps(result))
"""


def _write_dist(
    root: Path, name: str, ep: str, module: str, files: dict[str, str], version: str = "1.2.3"
) -> Path:
    path = root / name
    (path / module).mkdir(parents=True)
    (path / "pyproject.toml").write_text(
        PYPROJECT.format(name=name, version=version, ep=ep, module=module)
    )
    (path / module / "__init__.py").write_text("")
    for rel, text in files.items():
        (path / module / rel).write_text(textwrap.dedent(text))
    return path


@pytest.fixture(scope="module")
def host_env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("host")
    core_wheel = build_wheel("paperzoo-core", tmp / "dist")
    acme = _write_dist(
        tmp, "acme-zoo", "acme", "acme_zoo", {"plugin.py": ACME_PLUGIN, "model.py": ACME_MODEL}
    )
    broken = _write_dist(
        tmp, "broken-zoo", "broken", "broken_zoo", {"plugin.py": BROKEN_PLUGIN}, "0.9"
    )
    clash = _write_dist(tmp, "clash-zoo", "clash", "clash_zoo", {"plugin.py": CLASH_PLUGIN}, "2.0")
    python = make_venv(tmp / "env")
    run([uv(), "pip", "install", "--quiet", "--python", str(python), str(core_wheel),
         str(acme), str(broken), str(clash)])  # fmt: skip
    app = tmp / "host_app.py"
    app.write_text(HOST_APP)
    return python, app


def _host(host_env, disable: str) -> dict:
    python, app = host_env
    out = run([str(python), str(app)], env={"PAPERZOO_DISABLE_PLUGINS": disable})
    return json.loads(out.stdout)


def test_third_party_model_is_listed_and_built_by_name(host_env):
    result = _host(host_env, disable="clash")
    assert result["models"] == ["acme_net"]
    assert result["papers"] == ["acme"]
    assert result["output"] == pytest.approx(
        0.5 + 1.0 + 1.5
    )  # width=3 override reached the factory
    assert "did you mean 'acme_net'" in result["unknown"]
    assert result["torch_imported"] is False


def test_broken_plugin_is_skipped_with_one_warning(host_env):
    result = _host(host_env, disable="clash")
    assert len(result["warnings"]) == 1
    warning = result["warnings"][0]
    assert "'broken'" in warning and "broken-zoo" in warning and "libacme.so.3" in warning
    assert result["models"] == ["acme_net"]  # everything else keeps working


def test_disable_env_skips_plugins(host_env):
    result = _host(host_env, disable="clash,broken")
    assert result["warnings"] == []
    assert result["models"] == ["acme_net"]


def test_duplicate_name_error_names_both_distributions(host_env):
    result = _host(host_env, disable="broken")
    assert result["models"] is None
    assert "acme-zoo" in result["error"] and "clash-zoo" in result["error"]


def test_doctor_lists_each_plugin_with_distribution_version_and_status(host_env):
    python, _ = host_env
    paperzoo = python.parent / "paperzoo"
    out = run([str(paperzoo), "doctor"], env={"PAPERZOO_DISABLE_PLUGINS": "clash"}).stdout
    lines = {
        line.split()[0]: line
        for line in out.splitlines()[1:]
        if line.startswith("  ") and "zoo" in line
    }
    assert "acme-zoo 1.2.3" in lines["acme"] and " ok" in lines["acme"]
    assert "broken-zoo 0.9" in lines["broken"] and "failed" in lines["broken"]
    assert "libacme.so.3" in lines["broken"]
    assert "disabled" in lines["clash"]
    listed = run(
        [str(paperzoo), "list", "models"], env={"PAPERZOO_DISABLE_PLUGINS": "clash"}
    ).stdout
    assert "acme_net" in listed and "acme-zoo" in listed
