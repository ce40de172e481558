"""The real plugins of this workspace, all installed together (the integration environment)."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

from conftest import ROOT, run


def _py(code: str) -> str:
    return run([sys.executable, "-c", textwrap.dedent(code)], cwd=ROOT).stdout


def test_every_member_registers_and_listing_never_imports_torch():
    out = _py(
        """
        import json, sys, warnings
        warnings.simplefilter("error")  # no member may fail to load here
        import paperzoo.core as pz
        reg = pz.get_registry()
        kinds = {k: pz.get_registry().names(k) for k in ("papers", "models", "recipes", "datasets", "backends", "methods", "metrics")}
        plugins = {name: [info.dist, info.status] for name, info in reg.plugins.items()}
        benchmarks = sorted({e.dist for e in reg.entries("metrics").values() if "benchmark" in e.spec.tags})
        print(json.dumps({"kinds": kinds, "plugins": plugins, "benchmarks": benchmarks,
                          "torch": "torch" in sys.modules}))
        """
    )
    result = json.loads(out)
    assert result["torch"] is False
    assert all(status == "ok" for _, status in result["plugins"].values()), result["plugins"]
    members = {
        p.parent.name
        for p in ROOT.glob("packages/*/pyproject.toml")
        if not p.parent.name.startswith("_")
    }
    assert members <= set(result["plugins"]), "every paper package registers an entry point"
    for paper in members:
        assert paper in result["kinds"]["papers"]
        # a paper package reproduces through recipes; a benchmark package scores through
        # `paperzoo eval` (a metric tagged "benchmark")
        dist = result["plugins"][paper][0]
        assert any(r.startswith(paper) for r in result["kinds"]["recipes"]) or (
            dist in result["benchmarks"]
        ), f"{paper} has neither a recipe nor a benchmark"


def test_every_import_string_resolves():
    """Each spec's factory/config/runner/loader points at something that exists."""
    out = _py(
        """
        import dataclasses
        import paperzoo.core as pz
        from paperzoo.core._imports import resolve
        reg = pz.get_registry()
        bad = []
        for kind in ("models", "methods", "datasets", "recipes", "metrics", "backends", "commands"):
            for name, entry in reg.entries(kind).items():
                for field in ("factory", "config", "runner", "checkpoint_loader", "probe", "command"):
                    target = getattr(entry.spec, field, None)
                    if target:
                        try:
                            obj = resolve(target)
                            assert callable(obj), target
                        except Exception as exc:
                            bad.append(f"{kind}/{name}.{field}={target}: {exc!r}")
        print("\\n".join(bad))
        """
    )
    assert out.strip() == ""


def test_every_recipe_config_has_the_training_fields():
    out = _py(
        """
        import paperzoo.core as pz
        from paperzoo.core._imports import resolve
        from paperzoo.core.config import config_fields
        for name in pz.list_recipes():
            keys = {k for k, _, _ in config_fields(resolve(pz.get_recipe(name).config)())}
            missing = {"trainer.max_steps", "trainer.checkpoint_every", "seed"} - keys
            if missing:
                print(name, sorted(missing))
        """
    )
    assert out.strip() == ""


def test_cli_list_is_fast_path_without_torch():
    proc = subprocess.run(
        [sys.executable, "-X", "importtime", "-m", "paperzoo.core", "list", "models"],
        capture_output=True, text=True, cwd=ROOT, check=True,
    )  # fmt: skip
    imported = {line.split("|")[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "torch" not in imported and "numpy" not in imported


def test_environment_shares_torch_with_the_uv_cache_by_hardlinks():
    """nox/uv environments hardlink from uv's cache: torch's files are not copied."""
    import importlib.util
    import os

    spec = importlib.util.find_spec("torch")
    assert spec is not None and spec.origin is not None
    lib = next(Path(spec.origin).parent.joinpath("lib").glob("libtorch_cpu*"))
    assert os.stat(lib).st_nlink >= 2, f"{lib} is a copy, not a hardlink into uv's cache"
