"""Registration: listing never imports torch; the specs carry the paper's facts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from paperzoo.core import get_paper, get_recipe, list_methods, list_models, list_recipes


def test_plugin_hooks_and_recipe_configs_do_not_import_torch():
    # Only this package's plugin is imported: another distribution's plugin that imports torch
    # must not make this test fail (nor pass) for the wrong reason.
    code = textwrap.dedent(
        """
        import sys
        import paperzoo.mocov2
        from paperzoo.mocov2 import plugin
        from paperzoo.core.run import build_config
        names = [s.name for s in plugin.paperzoo_models()]
        assert "mocov2_resnet50" in names, names
        plugin.paperzoo_papers(); plugin.paperzoo_methods()
        from paperzoo.core._imports import resolve
        for recipe in plugin.paperzoo_recipes():
            build_config(recipe)  # what `paperzoo info` does
            if recipe.study:
                assert len(resolve(recipe.study)().arms) == 4
        heavy = [m for m in ("torch", "torchvision", "paperzoo.mocov2.model") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_specs():
    paper = get_paper("mocov2")
    assert paper.arxiv == "2003.04297"
    assert paper.authors == ("Xinlei Chen", "Haoqi Fan", "Ross Girshick", "Kaiming He")
    assert paper.official_code == "https://github.com/facebookresearch/moco"
    assert paper.headline_results["IN-1K linear top-1, R50, 800 ep"] == 71.1
    assert {"mocov2_resnet50", "mocov1_resnet50", "mocov2_resnet10_narrow"} <= set(list_models())
    assert "moco" in list_methods()
    assert set(list_recipes(paper="mocov2")) == {
        "mocov2_tiny",
        "mocov2_paper",
        "mocov2_paper_800ep",
    }
    assert get_recipe("mocov2_tiny").variant == "tiny"
    assert get_recipe("mocov2_paper").reference["linear_top1"] == 67.5
    assert get_recipe("mocov2_paper_800ep").reference["linear_top1"] == 71.1
