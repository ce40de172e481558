"""Shared fixtures (markers ``slow`` and ``gpu`` are declared in the package's pyproject)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

# The official Castling-ViT repository as a bare git mirror (present on the development
# machine, absent in CI's clean clone: the tests that read it skip there).
OFFICIAL_MIRROR = Path(
    os.environ.get("PAPERZOO_CASTLINGVIT_MIRROR", "/work/.mirror/GATECH-EIC+Castling-ViT/repo")
)


@pytest.fixture(scope="session")
def official_attention(tmp_path_factory):
    """The official ``attention.py`` module (``LinAngularAttention``), read from the mirror."""
    if not OFFICIAL_MIRROR.exists() or shutil.which("git") is None:
        pytest.skip(f"official Castling-ViT mirror not found at {OFFICIAL_MIRROR}")
    out = subprocess.run(
        ["git", "-C", str(OFFICIAL_MIRROR), "show", "HEAD:attention.py"],
        capture_output=True, text=True,
    )  # fmt: skip
    if out.returncode != 0:
        pytest.skip(f"cannot read attention.py from {OFFICIAL_MIRROR}: {out.stderr.strip()}")
    folder = tmp_path_factory.mktemp("official_castling")
    (folder / "castling_official_attention.py").write_text(out.stdout)
    sys.path.insert(0, str(folder))
    try:
        import castling_official_attention as module
    finally:
        sys.path.remove(str(folder))
    return module
