"""Discovery through the entry point, parameter counts against the paper, and what the recipes
and the study declare."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from paperzoo.advflow import model as M
from paperzoo.advflow.plugin import PARAMS
from paperzoo.advflow.recipes import TINY_ARMS, paper_config, tiny_config, tiny_study
from paperzoo.core import get_model, get_paper, get_recipe, list_models, list_recipes
from paperzoo.core.run import build_config

# The paper's and the official README's sizes, in millions (the generator; "675 M" with the
# time embedder of the multi-step and deep models).
PAPER_MILLIONS = {
    "advflow_b2_1nfe": 130,
    "advflow_m2_1nfe": 306,
    "advflow_l2_1nfe": 457,
    "advflow_xl2_1nfe": 673,
    "advflow_xl2_2nfe": 675,
    "advflow_xl2_4nfe": 675,
    "advflow_xl2_56layer_1nfe": 675,
    "advflow_xl2_112layer_1nfe": 675,
}


def test_models_recipes_and_paper_are_discovered_by_name():
    assert set(list_models("advflow_*")) == set(PARAMS)
    assert {"advflow_tiny", "advflow_paper"} <= set(list_recipes())
    assert get_recipe("advflow_paper").reference == {}  # the unguided stage
    assert get_recipe("advflow_paper_guided").reference == {"fid": 2.38}
    assert get_recipe("advflow_tiny").study == "paperzoo.advflow.recipes:tiny_study"
    paper = get_paper("advflow")
    assert paper.arxiv == "2511.22475"
    assert paper.official_code.endswith("ByteDance-Seed/Adversarial-Flow-Models")
    assert paper.headline_results["ImageNet-256 FID-50K, XL/2 1NFE (guided)"] == 2.38
    assert paper.headline_results["ImageNet-256 FID-50K, XL/2 112-layer 1NFE (guided)"] == 1.94
    for name in PARAMS:
        assert get_model(name).checkpoint_loader == "paperzoo.advflow.convert:load_checkpoint"


def test_listing_does_not_import_torch():
    code = (
        "import sys; from paperzoo.core import list_models, get_model; "
        "names = list_models('advflow_*'); [get_model(n).num_params for n in names]; "
        "import paperzoo.advflow, paperzoo.advflow.recipes, paperzoo.advflow.plugin; "
        "paperzoo.advflow.recipes.tiny_study(); "
        "assert 'torch' not in sys.modules, 'listing imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_num_params_is_the_built_model_on_the_meta_device(name):
    with torch.device("meta"):
        model = getattr(M, name)()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name] == get_model(name).num_params


@pytest.mark.parametrize("name", sorted(PAPER_MILLIONS))
def test_parameter_counts_round_to_the_paper(name):
    assert round(PARAMS[name] / 1e6) == PAPER_MILLIONS[name]


def test_a_time_embedder_is_the_1_6_m_between_673_m_and_675_m():
    # t_embedder: Linear(256, 1152) + Linear(1152, 1152), with biases.
    t_embedder = 256 * 1152 + 1152 + 1152 * 1152 + 1152
    assert PARAMS["advflow_xl2_2nfe"] - PARAMS["advflow_xl2_1nfe"] == t_embedder
    # the deep models reuse the 28 blocks: no more parameters than the 2-step model
    assert PARAMS["advflow_xl2_112layer_1nfe"] == PARAMS["advflow_xl2_56layer_1nfe"]
    assert PARAMS["advflow_xl2_56layer_1nfe"] == PARAMS["advflow_xl2_2nfe"]
    # any-step adds the t_tgt embedder at B/2's width
    t_b = 256 * 768 + 768 + 768 * 768 + 768
    assert PARAMS["advflow_b2_anystep"] - PARAMS["advflow_b2_1nfe"] == 2 * t_b


def test_recipes_and_the_declared_claims():
    paper = paper_config()
    assert paper.model == "XL" and paper.method == "advflow" and paper.data.dataset == "imagenet"
    a = paper.advflow
    assert (a.kind, a.steps, a.batch_size, a.d_steps_per_g) == ("1nfe", 1, 256, 1)
    assert (a.gp_scale, a.gp_fraction, a.gp_eps, a.centering) == (0.25, 0.25, 0.01, 0.01)
    assert (a.ot_start, a.ot_end, a.ot_steps) == (0.2, 0.005, 1_000_000)
    assert a.grad_norm and (a.clip_generator, a.clip_discriminator) == (50.0, 50.0)
    for opt in (a.generator_optim, a.discriminator_optim):
        assert (opt.name, opt.lr, tuple(opt.betas), opt.weight_decay) == (
            "adamw", 1e-4, (0.0, 0.9), 0.01,
        )  # fmt: skip
    assert paper.trainer.ema_decay == 0.9999 and paper.vae.scaling_factor == 0.18215
    tiny = tiny_config()
    assert tiny.model == "tiny" and tiny.split == "test" and tiny.torch_threads == 1
    study = tiny_study()
    assert [a.name for a in study.arms] == list(TINY_ARMS) and study.seeds == (0, 1, 2)
    beats, approaches = study.claims
    assert (beats.arm, beats.baseline, beats.metric, beats.rule) == (
        "advflow_1nfe", "fm_euler1", "digit_fd", "better_all_seeds",
    )  # fmt: skip
    assert not beats.higher_is_better and not approaches.higher_is_better
    assert (approaches.arm, approaches.baseline, approaches.rule) == (
        "fm_heun_many", "advflow_1nfe", "not_better",
    )  # fmt: skip


def test_the_guided_stage_recipes_are_discovered():
    assert {"advflow_paper_classifier", "advflow_paper_guided"} <= set(list_recipes())
    assert get_recipe("advflow_paper_guided").reference == {"fid": 2.38}
    assert get_recipe("advflow_paper_classifier").config.endswith(":paper_classifier_config")


def test_the_4nfe_and_deep_recipes_carry_the_official_values():
    four = get_recipe("advflow_paper_4nfe_guided")
    assert four.reference == {"fid": 2.03}
    a = build_config(four).advflow
    assert (a.kind, a.steps, a.ot_start, a.clip_generator, a.clip_discriminator) == (
        "fixed", 4, 0.25, 5.0, 5.0,
    )  # fmt: skip
    assert (a.cg_scale, a.cg_flow, a.cg_timestep_hi, a.augment_p) == (0.02, False, 0.49, 0.4)
    assert a.ema_reload_every == 10_000
    assert build_config(get_recipe("advflow_paper_4nfe")).advflow.cg_scale == 0.0
    deep = build_config(get_recipe("advflow_paper_deep")).advflow
    assert (deep.kind, deep.repeat, deep.generator_optim.lr, deep.discriminator_optim.lr) == (
        "deep", 4, 5e-5, 1e-4,
    )  # fmt: skip
    assert get_recipe("advflow_paper_deep_guided").reference == {"fid": 1.94}
