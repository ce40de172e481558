"""Discovery: the plugin imports no torch, registers the models, recipes and the command."""

from __future__ import annotations

import subprocess
import sys

from paperzoo.core import get_paper, get_recipe, list_models


def test_plugin_imports_no_torch():
    code = (
        "import sys, paperzoo.diffmae.plugin as p, paperzoo.diffmae, paperzoo.diffmae.recipes; "
        "p.paperzoo_models(); p.paperzoo_recipes(); print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registered_names():
    names = set(list_models("diffmae_*"))
    assert {"diffmae_vit_large_patch16", "diffmae_vit_large_patch16_cross",
            "diffmae_mae_tiny_mnist", "diffmae_diffusion_tiny_mnist",
            "diffmae_finetune_vit_large_patch16", "diffmae_vit_large_patch16_16x224"} <= names  # fmt: skip
    paper = get_paper("diffmae")
    assert paper.arxiv == "2304.03283" and paper.official_code is None
    assert paper.headline_results["IN-1K fine-tune top-1, DiffMAE ViT-L"] == 85.8
    assert paper.headline_results["IN-1K fine-tune top-1, MAE ViT-L"] == 85.9
    assert get_recipe("diffmae_paper").reference["finetune_top1"] == 85.8
    assert get_recipe("diffmae_tiny").study.endswith(":tiny_study")


def test_inpaint_command_is_registered():
    from paperzoo.core import api

    spec = api.get_command("diffmae-inpaint")
    assert spec.command == "paperzoo.diffmae.inpaint:main"
