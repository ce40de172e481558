import json
import subprocess
import sys

import pytest

from paperzoo.core import get_model, get_paper, get_recipe, list_models, list_recipes

EXPECTED_MODELS = {
    "slowfast_r50", "slowfast_4x16_r50", "slowfast_r101", "slowfast_8x8_r101_50_50",
    "slowfast_16x8_r101_50_50", "slow_r50", "slowfast_r50_detection", "slow_r50_detection",
    "slowfast_tiny", "slow_tiny",
}  # fmt: skip


def test_registered():
    paper = get_paper("slowfast")
    assert paper.arxiv == "1812.03982"
    assert paper.official_code == "https://github.com/facebookresearch/SlowFast"
    assert paper.headline_results["K400 top-1 SlowFast R50 8x8 (30 views)"] == 77.0
    assert set(list_models(paper="slowfast")) == EXPECTED_MODELS
    assert set(list_recipes(paper="slowfast")) == {"slowfast_tiny", "slowfast_paper"}
    assert get_recipe("slowfast_tiny").variant == "tiny"
    assert get_recipe("slowfast_paper").reference["top1"] == 77.0


def test_listing_does_not_import_torch():
    code = (
        "import sys, json; from paperzoo.core import list_models, get_model, get_recipe;"
        "names = list_models(paper='slowfast'); get_recipe('slowfast_tiny');"
        "print(json.dumps(['torch' in sys.modules, len(names)]))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    imported, count = json.loads(out.stdout.strip().splitlines()[-1])
    assert not imported and count == len(EXPECTED_MODELS)


def test_recipe_config_is_torch_free():
    code = (
        "import sys; from paperzoo.slowfast.recipes import paper_config, tiny_config;"
        "paper_config(); tiny_config(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_spec_param_count_matches_model(name):
    import torch

    from paperzoo.slowfast import model as models

    with torch.device("meta"):
        net = getattr(models, name)()
    assert sum(p.numel() for p in net.parameters()) == get_model(name).num_params
