"""Registration: the plugin lists without torch, and its specs describe the real models."""

from __future__ import annotations

import subprocess
import sys

import pytest

from paperzoo.core import get_model, get_paper, get_recipe, list_models, list_recipes

EXPECTED_MODELS = {
    "mvit_base_16x4",
    "mvit_base_32x3",
    "mvit_base_224",
    "mvitv2_tiny",
    "mvitv2_small",
    "mvitv2_base",
    "mvitv2_small_16x4",
    "mvit_tiny_video",
    "vit_tiny_video",
}


def test_listing_does_not_import_torch():
    code = (
        "import sys\n"
        "from paperzoo.core import list_models, list_recipes, get_paper\n"
        "import paperzoo.mvit, paperzoo.mvit.plugin, paperzoo.mvit.recipes\n"
        "assert 'mvit_base_16x4' in list_models('mvit*'), list_models()\n"
        "assert 'mvit_tiny' in list_recipes(paper='mvit')\n"
        "get_paper('mvit')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_registered_specs():
    assert set(list_models()) >= EXPECTED_MODELS
    assert {"mvit_tiny", "mvit_paper"} <= set(list_recipes(paper="mvit"))
    tiny, paper = get_recipe("mvit_tiny"), get_recipe("mvit_paper")
    assert (tiny.paper, tiny.variant) == ("mvit", "tiny")
    assert (paper.paper, paper.variant) == ("mvit", "paper")
    assert paper.reference["top1"] == 78.4
    spec = get_paper("mvit")
    assert spec.arxiv == "2104.11227"
    assert spec.authors[0] == "Haoqi Fan" and spec.authors[-1] == "Christoph Feichtenhofer"
    assert "facebookresearch/SlowFast" in spec.official_code


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_spec_numbers_match_the_built_model(name):
    import torch

    from paperzoo.core import create_model
    from paperzoo.mvit.flops import count_macs

    spec = get_model(name)
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == spec.num_params
    t, s = model.input_size[0], model.input_size[1]
    shape = (1, 3, s, s) if model.patch_2d else (1, 3, t, s, s)
    assert count_macs(model, shape) == pytest.approx(spec.flops, rel=2e-3)
