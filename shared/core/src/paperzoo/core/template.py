"""``paperzoo new PAPER``: scaffold the standard package layout from DESIGN.md."""

from __future__ import annotations

import keyword
import re
import string
from importlib import metadata
from importlib.resources import files
from pathlib import Path

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def render_package(paper: str, parent: Path, *, title: str = "") -> Path:
    """Write ``parent/paper`` from the bundled template; refuses to overwrite."""
    if not _NAME.match(paper) or keyword.iskeyword(paper):
        raise ValueError(f"package name {paper!r} must be a lower-case Python identifier")
    dest = Path(parent) / paper
    if dest.exists():
        raise FileExistsError(f"{dest} already exists")
    try:
        major, minor = (int(x) for x in metadata.version("paperzoo-core").split(".")[:2])
    except metadata.PackageNotFoundError:  # running from a source tree
        major, minor = 0, 1
    values = {
        "paper": paper,
        "title": title or f"TODO: the title of the {paper} paper",
        "core_major": str(major),
        "core_minor": str(minor),
        "core_next_major": str(major + 1),
    }
    root = files("paperzoo.core").joinpath("package_template")
    _copy(root, dest, values)
    return dest


def _copy(node, target: Path, values: dict[str, str]) -> None:
    for child in node.iterdir():
        name = child.name.replace("__paper__", values["paper"])
        if child.is_dir():
            if name == "__pycache__":
                continue
            _copy(child, target / name, values)
        elif name.endswith(".tmpl"):
            out = target / name[: -len(".tmpl")]
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text(
                string.Template(child.read_text(encoding="utf-8")).substitute(values),
                encoding="utf-8",
            )
