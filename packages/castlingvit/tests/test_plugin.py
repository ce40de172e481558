"""Registration: discovered through its entry point, lists without torch, and its specs
describe the real models."""

from __future__ import annotations

import subprocess
import sys
from importlib.metadata import entry_points

import pytest

from paperzoo.core import get_model, get_paper, get_recipe, list_models, list_recipes

EXPECTED_MODELS = {
    "castling_deit_tiny",
    "castling_deit_small",
    "castling_deit_base",
    "deit_tiny",
    "deit_small",
    "deit_base",
    "castling_mvitv2_tiny",
    "castling_mvitv2_small",
    "castling_mvitv2_base",
    "vit_tiny_mnist",
    "castling_vit_tiny_mnist",
}


def test_entry_point_is_declared_and_loads():
    (ep,) = [e for e in entry_points(group="paperzoo") if e.name == "castlingvit"]
    assert ep.value == "paperzoo.castlingvit.plugin"
    assert hasattr(ep.load(), "paperzoo_models")


def test_listing_does_not_import_torch():
    code = (
        "import sys\n"
        "from paperzoo.core import list_models, list_recipes, get_paper\n"
        "import paperzoo.castlingvit, paperzoo.castlingvit.plugin, paperzoo.castlingvit.recipes\n"
        "assert 'castling_deit_tiny' in list_models('castling*'), list_models()\n"
        "assert 'castlingvit_tiny' in list_recipes(paper='castlingvit')\n"
        "get_paper('castlingvit')\n"
        "print('torch' in sys.modules)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False", out.stdout + out.stderr


def test_registered_specs():
    assert set(list_models()) >= EXPECTED_MODELS
    assert {"castlingvit_tiny", "castlingvit_paper"} <= set(list_recipes(paper="castlingvit"))
    tiny, paper = get_recipe("castlingvit_tiny"), get_recipe("castlingvit_paper")
    assert (tiny.variant, paper.variant) == ("tiny", "paper")
    assert paper.reference["top1"] == 76.0
    spec = get_paper("castlingvit")
    assert spec.arxiv == "2211.10526" and spec.authors[0] == "Haoran You"
    assert "GATECH-EIC/Castling-ViT" in spec.official_code


@pytest.mark.parametrize("name", sorted(EXPECTED_MODELS))
def test_spec_numbers_match_the_built_model(name):
    import torch

    from paperzoo.castlingvit.flops import inference_macs
    from paperzoo.core import create_model

    spec = get_model(name)
    with torch.device("meta"):
        model = create_model(name)
    assert sum(p.numel() for p in model.parameters()) == spec.num_params
    shape = (1, 1, 28, 28) if "mnist" in name else (1, 3, 224, 224)
    assert inference_macs(model, shape) == pytest.approx(spec.flops, rel=1e-4)
