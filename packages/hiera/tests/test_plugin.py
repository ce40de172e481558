"""Registration: specs are listed without importing torch, and point at real factories."""

from __future__ import annotations

import json
import subprocess
import sys

from paperzoo.core import get_method, get_paper, get_recipe, list_models, list_recipes

IMAGE = ["hiera_tiny_224", "hiera_small_224", "hiera_base_224", "hiera_base_plus_224",
         "hiera_large_224", "hiera_huge_224"]  # fmt: skip
VIDEO = ["hiera_base_16x224", "hiera_base_plus_16x224", "hiera_large_16x224", "hiera_huge_16x224"]


def test_models_papers_methods_recipes_are_registered():
    names = list_models(paper="hiera")
    assert set(IMAGE + VIDEO + ["hiera_toy_8x64"]) == set(names)
    paper = get_paper("hiera")
    assert paper.arxiv == "2306.00989"
    assert paper.official_code == "https://github.com/facebookresearch/hiera"
    assert paper.headline_results["IN-1K top-1, Hiera-B"] == 84.5
    assert get_method("hiera_mae").factory == "paperzoo.hiera.method:hiera_mae"
    assert set(list_recipes(paper="hiera")) == {"hiera_tiny", "hiera_paper"}
    assert get_recipe("hiera_tiny").variant == "tiny"
    assert get_recipe("hiera_paper").variant == "paper"


def test_listing_and_recipe_configs_do_not_import_torch():
    code = (
        "import sys, json\n"
        "from paperzoo.core import list_models, get_recipe\n"
        "from paperzoo.core._imports import resolve\n"
        "names = list_models('hiera*')\n"
        "import paperzoo.hiera.plugin\n"
        "cfg = resolve(get_recipe('hiera_tiny').config)()\n"
        "cfg = resolve(get_recipe('hiera_paper').config)()\n"
        "print(json.dumps({'n': len(names), 'torch': 'torch' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result == {"n": 11, "torch": False}
