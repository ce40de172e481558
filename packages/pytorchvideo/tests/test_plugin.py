"""The plugin registers its paper, models and recipes without importing torch."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paperzoo.core import get_model, get_paper, get_recipe, list_models, list_recipes


def test_listing_does_not_import_torch():
    code = (
        "import sys\n"
        "from paperzoo.core import list_models, list_papers, list_recipes, get_recipe\n"
        "from paperzoo.core._imports import resolve\n"
        "assert 'x3d_xs' in list_models('x3d*'), list_models()\n"
        "assert 'pytorchvideo' in list_papers()\n"
        "assert 'pytorchvideo_tiny' in list_recipes(paper='pytorchvideo')\n"
        "import paperzoo.pytorchvideo.plugin, paperzoo.pytorchvideo\n"
        "cfg = resolve(get_recipe('pytorchvideo_tiny').config)()\n"  # configs stay light
        "assert cfg.x3d.model == 'x3d_xs'\n"
        "bad = [m for m in ('torch', 'torchvision', 'av') if m in sys.modules]\n"
        "assert not bad, bad\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)


def test_specs():
    paper = get_paper("pytorchvideo")
    assert paper.arxiv == "2111.09887"
    assert paper.headline_results["X3D-XS mobile speed-up int8 (x)"] == 6.5
    assert set(list_models(paper="pytorchvideo")) == {
        "x3d_xs", "x3d_s", "x3d_m", "x3d_l", "efficient_x3d_xs", "efficient_x3d_s",
    }  # fmt: skip
    assert get_model("x3d_xs").num_params == 3_794_274
    tiny, paper_recipe = get_recipe("pytorchvideo_tiny"), get_recipe("pytorchvideo_paper")
    assert (tiny.paper, tiny.variant) == ("pytorchvideo", "tiny")
    assert (paper_recipe.paper, paper_recipe.variant) == ("pytorchvideo", "paper")
    assert {"pytorchvideo_tiny", "pytorchvideo_paper"} <= set(list_recipes(paper="pytorchvideo"))


@pytest.mark.parametrize("name", ["x3d_xs", "efficient_x3d_s"])
def test_create_model_by_name(name):
    from paperzoo.core import create_model
    from paperzoo.pytorchvideo import count_params

    model = create_model(name, num_classes=7)
    assert model.head.proj.out_features == 7
    # 2048 x (400 - 7) fewer classifier weights and 393 fewer biases than the registered count.
    assert count_params(model) == get_model(name).num_params - 2049 * 393
