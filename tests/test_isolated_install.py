"""Every member builds on its own (`uv build --package`) and its wheel installs alone.

The core wheel goes into a fresh environment by itself; a paper package goes in next to the
wheels of exactly the workspace members it declares, with everything else from the index.
"""

from __future__ import annotations

import re
import sys
import tarfile
import zipfile
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from conftest import ROOT, build_wheel, make_venv, run, uv

PAPER_PACKAGE = "packages/mocov2"


def _project(member: str) -> dict:
    with open(ROOT / member / "pyproject.toml", "rb") as fh:
        return tomllib.load(fh)["project"]


def _member_by_dist() -> dict[str, str]:
    out = {}
    for pyproject in [
        *ROOT.glob("shared/*/pyproject.toml"),
        ROOT / "kernels/pyproject.toml",
        *ROOT.glob("packages/*/pyproject.toml"),
    ]:
        if pyproject.parent.name.startswith("_"):
            continue
        with open(pyproject, "rb") as fh:
            out[tomllib.load(fh)["project"]["name"]] = str(pyproject.parent.relative_to(ROOT))
    return out


def _sibling_closure(member: str) -> list[str]:
    by_dist = _member_by_dist()
    seen, stack = [], [_project(member)["name"]]
    while stack:
        dist = stack.pop()
        if dist in seen:
            continue
        seen.append(dist)
        for req in _project(by_dist[dist]).get("dependencies", []):
            name = re.split(r"[\s<>=!~;\[(]", req, maxsplit=1)[0]
            if name in by_dist:
                stack.append(name)
    return seen


def test_core_builds_wheel_and_sdist_and_installs_alone(tmp_path):
    out = tmp_path / "dist"
    run([uv(), "build", "--quiet", "--package", "paperzoo-core", "-o", str(out)], cwd=ROOT)
    version = tomllib.loads((ROOT / "shared/core/pyproject.toml").read_text())["project"]["version"]
    wheel = next(out.glob(f"paperzoo_core-{version}-*.whl"))
    sdist = next(out.glob(f"paperzoo_core-{version}.tar.gz"))
    names = zipfile.ZipFile(wheel).namelist()
    assert "paperzoo/core/hookspecs.py" in names
    assert "paperzoo/__init__.py" not in names  # PEP 420 namespace shared by every member
    assert any(n.endswith("package_template/pyproject.toml.tmpl") for n in names)
    with tarfile.open(sdist) as archive:
        assert any(n.endswith("CHANGELOG.md") for n in archive.getnames())

    python = make_venv(tmp_path / "env")
    run([uv(), "pip", "install", "--quiet", "--python", str(python), str(wheel)])
    installed = run([uv(), "pip", "list", "--python", str(python)]).stdout
    assert "paperzoo-core" in installed and "torch" not in installed
    listed = run([str(python.parent / "paperzoo"), "list", "papers"])
    assert "no papers registered" in listed.stdout
    doctor = run([str(python.parent / "paperzoo"), "doctor"]).stdout
    assert f"paperzoo-core {version}" in doctor


def test_paper_package_wheel_installs_next_to_its_sibling_wheels(tmp_path):
    dists = _sibling_closure(PAPER_PACKAGE)
    wheels = [build_wheel(dist, tmp_path / "dist") for dist in dists]
    python = make_venv(tmp_path / "env")
    run(
        [uv(), "pip", "install", "--quiet", "--python", str(python), *map(str, wheels)], timeout=900
    )
    project = _project(PAPER_PACKAGE)
    code = (
        "import importlib.metadata as md, paperzoo.core as pz; "
        f"print(md.version({project['name']!r})); print(pz.list_papers()); print(len(pz.list_models()))"
    )
    out = run([str(python), "-c", code]).stdout.splitlines()
    assert out[0] == project["version"]
    paper = Path(PAPER_PACKAGE).name
    assert paper in out[1]
    assert int(out[2]) >= 1
    doctor = run([str(python.parent / "paperzoo"), "doctor"]).stdout
    assert f"{project['name']} {project['version']}" in doctor
