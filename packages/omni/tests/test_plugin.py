"""Discovery through the entry point, without importing torch."""

from __future__ import annotations

import subprocess
import sys

from paperzoo.core import get_paper, get_recipe, list_models, list_papers


def test_paper_model_and_recipe_are_discovered():
    assert "omni" in list_papers()
    assert list_models("omni*") == ["omni_tiny"]
    paper = get_paper("omni")
    assert paper.arxiv == "2604.21921" and paper.official_code is None
    assert paper.authors[0] == "Ceyuan Yang" and paper.authors[-1] == "Haoqi Fan"
    recipe = get_recipe("omni_tiny")
    assert recipe.study == "paperzoo.omni.recipes:tiny_study"


def test_listing_does_not_import_torch():
    code = (
        "import sys; from paperzoo.core import list_models; list_models('omni*'); "
        "import paperzoo.omni, paperzoo.omni.plugin, paperzoo.omni.recipes; "
        "assert 'torch' not in sys.modules, 'listing imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)
