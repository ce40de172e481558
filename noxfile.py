"""nox sessions for the paperzoo workspace.

The member list is read from the workspace in pyproject.toml, never kept by hand:

    nox -l                                  # every session
    nox -s "tests(package='core')"          # one member, dependencies from uv.lock
    nox -s "tests_lowest(package='core')"   # the same member at its declared lower bounds
    nox -t ci                               # what .ci/run runs

Each test session syncs only its member (and the member's declared dependencies) into its own
environment, so a dependency a member forgot to declare fails there. Environments are filled
from uv's cache by hardlinks: torch is never copied.
"""

from __future__ import annotations

import glob
import os
import re
import sys
from pathlib import Path

import nox

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

ROOT = Path(__file__).resolve().parent

nox.options.default_venv_backend = "uv"
nox.options.error_on_missing_interpreters = True
nox.options.sessions = []  # `nox` alone lists; run sessions by name or tag

# Hardlink from uv's cache into every environment; never copy torch.
# Bytecode is written (an empty PYTHONDONTWRITEBYTECODE overrides a machine-wide 1): otherwise
# every test subprocess recompiles torch's modules, which costs ~15 s of CPU each.
UV_ENV = {"UV_LINK_MODE": "hardlink", "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": ""}


def _load(path: Path) -> dict:
    with open(path, "rb") as fh:
        return tomllib.load(fh)


def _workspace_members() -> dict[str, Path]:
    """Short name (directory name) -> member directory, from [tool.uv.workspace]."""
    workspace = _load(ROOT / "pyproject.toml")["tool"]["uv"]["workspace"]
    excluded = {
        Path(p).resolve()
        for pattern in workspace.get("exclude", [])
        for p in glob.glob(str(ROOT / pattern))
    }
    members: dict[str, Path] = {}
    for pattern in workspace["members"]:
        for path in sorted(glob.glob(str(ROOT / pattern))):
            path = Path(path).resolve()
            if path in excluded or not (path / "pyproject.toml").is_file():
                continue
            members[path.name] = path
    return members


MEMBERS = _workspace_members()
PYPROJECTS = {name: _load(path / "pyproject.toml") for name, path in MEMBERS.items()}
DIST_TO_MEMBER = {pp["project"]["name"]: name for name, pp in PYPROJECTS.items()}


def _dist(package: str) -> str:
    return PYPROJECTS[package]["project"]["name"]


def _req_name(requirement: str) -> str:
    return re.split(r"[\s<>=!~;\[(]", requirement, maxsplit=1)[0].lower().replace("_", "-")


def _workspace_closure(package: str) -> list[str]:
    """The member and every workspace member it depends on, transitively."""
    seen: list[str] = []
    stack = [package]
    while stack:
        name = stack.pop()
        if name in seen:
            continue
        seen.append(name)
        for req in PYPROJECTS[name]["project"].get("dependencies", []):
            dep = DIST_TO_MEMBER.get(_req_name(req))
            if dep:
                stack.append(dep)
    return seen


def _groups(package: str) -> dict[str, list[str]]:
    return PYPROJECTS[package].get("dependency-groups", {})


def _env(session: nox.Session) -> dict[str, str]:
    return {**UV_ENV, "UV_PROJECT_ENVIRONMENT": session.virtualenv.location}


def _sync(session: nox.Session, package: str, *groups: str) -> None:
    """Install one member and its locked dependencies (plus some of its groups) from uv.lock."""
    args = ["uv", "sync", "--frozen", "--package", _dist(package), "--no-default-groups"]
    for group in groups:
        if group in _groups(package):
            args += ["--group", group]
    session.run_install(*args, env=_env(session), external=True)


def _pytest(session: nox.Session, package: str, *extra: str) -> None:
    tests = MEMBERS[package] / "tests"
    if not tests.is_dir():
        session.error(f"{package} has no tests/ directory")
    # Point pytest at tests/ only: collecting the namespace src/ tree can shadow real libraries.
    session.run(
        "python", "-m", "pytest", str(tests), "-p", "no:cacheprovider", "--rootdir", str(MEMBERS[package]),
        *extra, *session.posargs, env=UV_ENV,
    )  # fmt: skip


@nox.session(tags=["ci"])
@nox.parametrize("package", list(MEMBERS))
def tests(session: nox.Session, package: str) -> None:
    """One member's tests with its dependencies from uv.lock (the `highest` resolution)."""
    _sync(session, package, "test")
    _pytest(session, package, "-m", "not slow")


@nox.session
@nox.parametrize(
    "package",
    # CI checks the core's lower bounds on every run; the rest have their own sessions.
    [nox.param(name, tags=["ci"] if name == "core" else []) for name in MEMBERS],
)
def tests_lowest(session: nox.Session, package: str) -> None:
    """One member's tests at the lowest versions its declared bounds allow (torch included).

    `--resolution lowest-direct` applies to the requirements named on the command line, so
    every member in the closure is installed editable and its declared dependencies are
    passed explicitly.
    """
    closure = _workspace_closure(package)
    requirements: list[str] = []
    for name in closure:
        for req in PYPROJECTS[name]["project"].get("dependencies", []):
            if _req_name(req) not in DIST_TO_MEMBER:
                requirements.append(req)
    requirements += [r for r in _groups(package).get("test", []) if isinstance(r, str)]
    editables = [arg for name in closure for arg in ("-e", str(MEMBERS[name]))]
    session.run_install(
        "uv", "pip", "install", "--python", session.virtualenv.location,
        "--resolution", "lowest-direct", *editables, *requirements,
        env=_env(session), external=True,
    )  # fmt: skip
    session.run(
        "uv", "pip", "list", "--python", session.virtualenv.location, external=True, silent=False
    )
    _pytest(session, package, "-m", "not slow")


@nox.session
@nox.parametrize("package", list(MEMBERS))
def slow(session: nox.Session, package: str) -> None:
    """One member's long tests (full tiny reproductions over several seeds)."""
    _sync(session, package, "test")
    _pytest(session, package, "-m", "slow")


@nox.session(tags=["ci"])
def integration(session: nox.Session) -> None:
    """Cross-package tests in tests/: host-app discovery, isolated installs, CLI end to end."""
    session.run_install(
        "uv",
        "sync",
        "--frozen",
        "--all-packages",
        "--group",
        "dev",
        env=_env(session),
        external=True,
    )
    session.run("python", "-m", "pytest", str(ROOT / "tests"), "-p", "no:cacheprovider", "-m", "not slow",
                *session.posargs, env=UV_ENV)  # fmt: skip


@nox.session(tags=["ci"])
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole workspace."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", str(ROOT))
    session.run("ruff", "format", "--check", str(ROOT))


@nox.session(tags=["ci"])
def typecheck(session: nox.Session) -> None:
    """mypy over the core (the plugin-authoring surface third parties type against)."""
    _sync(session, "core", "test")
    session.install("mypy>=1.11")
    session.run("mypy", str(MEMBERS["core"] / "src" / "paperzoo" / "core"), env=UV_ENV)


@nox.session
def bench(session: nox.Session) -> None:
    """Every member's benchmark scripts (bench/bench_*.py), each in that member's environment.

    Timings live here, never in tests: the machines are shared and noisy.
    `nox -s bench -- kernels` runs one member's.
    """
    wanted = set(session.posargs) or set(MEMBERS)
    for package, path in MEMBERS.items():
        scripts = sorted((path / "bench").glob("bench_*.py"))
        if package not in wanted or not scripts:
            continue
        _sync(session, package, "test", "bench")
        for script in scripts:
            session.log(f"== {package}: {script.name}")
            session.run("python", str(script), env=UV_ENV)


@nox.session(tags=["ci"])
def docs(session: nox.Session) -> None:
    """Build the site strictly and test it in headless Chromium.

    Every workspace member is installed, so that each paper's plugin is discovered and gets its
    page (docs/gen_pages.py). `mkdocs build --strict` fails on any warning: a broken link, a
    missing page, a docstring the API reference cannot render. The browser test serves the
    built site on 127.0.0.1 and needs Debian's chromium (`.ci/run` installs it).
    """
    args = ["uv", "sync", "--frozen", "--all-packages", "--no-default-groups", "--group", "docs"]
    session.run_install(*args, env=_env(session), external=True)
    env = {**UV_ENV, "NO_MKDOCS_2_WARNING": "1", "DISABLE_MKDOCS_2_WARNING": "true"}
    session.run("python", str(ROOT / "docs" / "check_cli_reference.py"), env=env)
    site = ROOT / "site"
    session.run("mkdocs", "build", "--strict", "--clean", "-f", str(ROOT / "mkdocs.yml"),
                "-d", str(site), env=env)  # fmt: skip
    session.run(
        "python", "-m", "pytest", str(ROOT / "docs" / "tests"), "-p", "no:cacheprovider",
        "--rootdir", str(ROOT / "docs"), *session.posargs, env={**env, "PAPERZOO_SITE_DIR": str(site)},
    )  # fmt: skip


if os.environ.get("PAPERZOO_NOX_DEBUG"):  # pragma: no cover
    print({name: str(path) for name, path in MEMBERS.items()})
