from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def uv() -> str:
    exe = shutil.which("uv")
    if exe is None:
        pytest.fail(
            "uv is required for the integration tests (it installs the temporary environments)"
        )
    return exe


def run(
    cmd: list[str],
    *,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
    check: bool = True,
    timeout: float = 600,
) -> subprocess.CompletedProcess:
    full_env = {**os.environ, "UV_LINK_MODE": "hardlink", "HF_HUB_OFFLINE": "1", **(env or {})}
    full_env.pop("VIRTUAL_ENV", None)
    proc = subprocess.run(
        cmd, cwd=cwd, env=full_env, capture_output=True, text=True, timeout=timeout
    )
    if check and proc.returncode != 0:
        raise AssertionError(
            f"{' '.join(map(str, cmd))} exited {proc.returncode}\n{proc.stdout}\n{proc.stderr}"
        )
    return proc


def make_venv(path: Path) -> Path:
    """A fresh, empty virtual environment made by uv; returns its python."""
    run([uv(), "venv", "--quiet", "--python", sys.executable, str(path)])
    return path / "bin" / "python"


def build_wheel(dist: str, out: Path) -> Path:
    """`uv build --package DIST --wheel` for a workspace member; returns the wheel."""
    run([uv(), "build", "--quiet", "--package", dist, "--wheel", "-o", str(out)], cwd=ROOT)
    wheels = sorted(out.glob(dist.replace("-", "_") + "-*.whl"))
    assert wheels, f"no wheel for {dist} in {out}"
    return wheels[-1]
