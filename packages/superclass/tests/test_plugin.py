"""Registration: listing never imports torch; the specs carry the paper's facts."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from paperzoo.core import get_paper, get_recipe, list_methods, list_models, list_recipes


def test_plugin_hooks_and_recipe_configs_do_not_import_torch():
    code = textwrap.dedent(
        """
        import sys
        import paperzoo.superclass
        from paperzoo.superclass import plugin
        from paperzoo.core.run import build_config
        from paperzoo.core._imports import resolve
        names = [s.name for s in plugin.paperzoo_models()]
        assert "superclass_vit_b16" in names, names
        plugin.paperzoo_papers(); plugin.paperzoo_methods()
        for recipe in plugin.paperzoo_recipes():
            build_config(recipe)
            if recipe.study:
                assert len(resolve(recipe.study)().arms) == 2
        heavy = [m for m in ("torch", "open_clip", "paperzoo.superclass.model") if m in sys.modules]
        assert not heavy, heavy
        print("ok")
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "ok"


def test_specs():
    paper = get_paper("superclass")
    assert (
        paper.arxiv == "2411.03313" and paper.official_code == "https://github.com/x-cls/superclass"
    )
    assert paper.authors[0] == "Zilong Huang" and len(paper.authors) == 5
    assert paper.headline_results["IN-1K linear probe, ViT-B/16, 512M seen"] == 76.0
    assert {"superclass_vit_b16", "superclass_vit_l16", "superclass_vit_l14",
            "superclass_vit_tiny_mnist", "superclass_clip_vit_b16"} <= set(list_models("superclass*"))  # fmt: skip
    assert {"superclass", "superclass_clip"} <= set(list_methods())
    assert set(list_recipes(paper="superclass")) == {"superclass_tiny", "superclass_paper"}
    assert get_recipe("superclass_paper").reference == {"linear_top1": 76.0, "zeroshot_top1": 61.7}
