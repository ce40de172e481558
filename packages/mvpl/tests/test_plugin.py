"""The plugin registers its paper, models and recipes without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paperzoo.core import (
    create_model,
    get_model,
    get_paper,
    get_recipe,
    list_models,
    list_papers,
    list_recipes,
)


def test_plugin_and_recipes_do_not_import_torch():
    # Only this package's modules: another installed plugin may import torch on its own.
    code = (
        "import sys\n"
        "import paperzoo.mvpl, paperzoo.mvpl.plugin, paperzoo.mvpl.recipes\n"
        "specs = paperzoo.mvpl.plugin.paperzoo_models()\n"
        "assert {s.name for s in specs} == {'mvpl_slow_r50', 'mvpl_r3d_18', 'mvpl_r3d_tiny'}\n"
        "cfg = paperzoo.mvpl.recipes.tiny_config()\n"
        "assert cfg.mvpl.model == 'mvpl_r3d_tiny'\n"
        "paperzoo.mvpl.recipes.tiny_study()\n"
        "bad = [m for m in ('torch', 'torchvision', 'av', 'cv2') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_listing_finds_the_package():
    assert set(list_models("mvpl*")) == {"mvpl_slow_r50", "mvpl_r3d_18", "mvpl_r3d_tiny"}
    assert "mvpl" in list_papers()


def test_specs():
    paper = get_paper("mvpl")
    assert paper.arxiv == "2104.00682" and paper.official_code is None
    assert {"mvpl_tiny", "mvpl_paper", "mvpl_paper_1pct", "mvpl_paper_ucf101",
            "mvpl_paper_hmdb51"} <= set(list_recipes(paper="mvpl"))  # fmt: skip
    assert get_recipe("mvpl_tiny").study is not None


@pytest.mark.parametrize("name", ["mvpl_r3d_tiny", "mvpl_r3d_18"])
def test_create_model_by_name_matches_the_registered_count(name):
    model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == get_model(name).num_params
    small = create_model(name, num_classes=5, views=("rgb", "flow"))
    assert small.views == ("rgb", "flow")
