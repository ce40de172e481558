"""Discovery: the plugin imports no torch and registers the models, methods and recipes."""

from __future__ import annotations

import subprocess
import sys

from paperzoo.core import get_paper, get_recipe, list_models


def test_plugin_imports_no_torch():
    code = (
        "import sys, paperzoo.mavil.plugin as p, paperzoo.mavil, paperzoo.mavil.recipes; "
        "p.paperzoo_models(); p.paperzoo_recipes(); p.paperzoo_methods(); "
        "print('torch' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_registered_names():
    names = set(list_models("mavil_*"))
    assert {"mavil_vit_base_pretrain", "mavil_vit_base_stage2", "mavil_vit_base_audioset",
            "mavil_vit_base_vggsound", "mavil_tiny_pretrain", "mavil_tiny_classifier"} <= names  # fmt: skip
    paper = get_paper("mavil")
    assert paper.arxiv == "2212.08071" and paper.official_code is None
    assert paper.headline_results["AudioSet-2M fine-tune mAP, ViT-B (audio+video)"] == 53.3
    assert paper.headline_results["VGGSound fine-tune top-1, ViT-B (audio+video)"] == 67.1
    assert get_recipe("mavil_paper").reference["joint_mAP"] == 53.3
    assert get_recipe("mavil_paper_vggsound").reference["joint_top1"] == 67.1
    assert get_recipe("mavil_tiny").study.endswith(":tiny_study")


def test_create_model_by_name():
    import paperzoo.core as pz

    model = pz.create_model("mavil_tiny_classifier", modality="audio")
    assert model.modality == "audio" and model.head.out_features == 20
