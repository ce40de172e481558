"""Discovery through the entry point, parameter counts, and what the recipes and the study declare."""

from __future__ import annotations

import subprocess
import sys

import pytest
import torch

from paperzoo.cafm.plugin import PARAMS
from paperzoo.cafm.recipes import (
    TINY_ARMS,
    paper_config,
    paper_jit_config,
    tiny_config,
    tiny_study,
)
from paperzoo.core import get_model, get_paper, get_recipe, list_models, list_recipes
from paperzoo.core._imports import resolve


def test_models_recipes_and_paper_are_discovered_by_name():
    assert set(list_models("cafm_*")) == set(PARAMS)
    assert {"cafm_tiny", "cafm_paper", "cafm_paper_jit"} <= set(list_recipes())
    assert get_recipe("cafm_tiny").study == "paperzoo.cafm.recipes:tiny_study"
    assert get_recipe("cafm_paper").reference == {"fid": 3.63}
    assert get_recipe("cafm_paper_jit").reference == {"fid": 3.57}
    paper = get_paper("cafm")
    assert paper.arxiv == "2604.11521"
    assert paper.official_code == "https://github.com/ByteDance-Seed/Adversarial-Flow-Models"
    assert paper.headline_results["ImageNet-256 guidance-free FID, SiT-XL/2 before"] == 8.26
    assert paper.headline_results["ImageNet-256 guidance-free FID, SiT-XL/2 + CAFM"] == 3.63
    assert paper.headline_results["ImageNet-256 guidance-free FID, JiT-H/16 + CAFM"] == 3.57
    for name in PARAMS:
        assert get_model(name).checkpoint_loader == "paperzoo.cafm.convert:load_checkpoint"


def test_listing_does_not_import_torch():
    code = (
        "import sys; from paperzoo.core import list_models, get_recipe; list_models('cafm_*'); "
        "import paperzoo.cafm, paperzoo.cafm.plugin, paperzoo.cafm.recipes; "
        "paperzoo.cafm.recipes.tiny_study(); paperzoo.cafm.recipes.paper_config(); "
        "assert 'torch' not in sys.modules, 'listing imported torch'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=120)


@pytest.mark.parametrize("name", sorted(PARAMS))
def test_num_params_equal_the_built_models(name):
    with torch.device("meta"):
        model = resolve(get_model(name).factory)()
    assert sum(p.numel() for p in model.parameters()) == PARAMS[name] == get_model(name).num_params


def test_sit_xl_2_is_the_official_layout():
    with torch.device("meta"):
        model = resolve(get_model("cafm_sit_xl_2").factory)()
    state = model.state_dict()
    assert sum(p.numel() for p in model.parameters()) == 675_129_632
    assert state["y_embedder.embedding_table.weight"].shape == (1001, 1152)  # 1000 + null
    assert state["final_layer.linear.weight"].shape == (2 * 2 * 8, 1152)  # learn_sigma: 8 ch
    assert state["pos_embed"].shape == (1, 256, 1152)
    assert len({k.split(".")[1] for k in state if k.startswith("blocks.")}) == 28
    with torch.device("meta"):
        dis = resolve(get_model("cafm_sit_xl_2_discriminator").factory)()
    own = set(dis.state_dict())
    assert own - set(state) == {"dis_embed", "final_layer.1.weight"}
    assert {k for k in set(state) - own} == {k for k in state if k.startswith("final_layer.")}


def test_jit_h_16_is_the_official_layout():
    with torch.device("meta"):
        model = resolve(get_model("cafm_jit_h_16").factory)()
    state = model.state_dict()
    assert state["x_embedder.proj1.weight"].shape == (256, 3, 16, 16)  # bottleneck 256
    assert state["in_context_posemb"].shape == (1, 32, 1280)
    assert state["blocks.0.mlp.w12.weight"].shape == (2 * 3413, 1280)  # SwiGLU, int(5120 * 2/3)
    assert state["feat_rope_incontext.freqs_cos"].shape == (32 + 256, 80)  # buffers, as JiT's
    assert state["y_embedder.embedding_table.weight"].shape == (1001, 1280)
    assert len({k.split(".")[1] for k in state if k.startswith("blocks.")}) == 32


def test_paper_recipes_are_the_official_configs():
    sit = paper_config()
    assert sit.model == "sit_xl_2" and sit.data.dataset == "imagenet"
    p = sit.post
    assert (p.method, p.batch_size, p.d_warmup_steps, p.d_steps_per_g) == ("cafm", 256, 10_000, 16)
    assert (p.timesteps, p.label_dropout, p.cp_scale, p.ot_scale) == ("uniform", 0.1, 0.001, 0.0)
    assert (p.ema_decay, p.clip_grad_norm, p.max_steps) == (0.99, 10_000.0, 1_000_000)
    for optim in (p.gen_optim, p.dis_optim):
        assert (optim.name, optim.lr, optim.betas, optim.weight_decay) == (
            "adamw", 1e-5, (0.0, 0.95), 0.0,
        )  # fmt: skip
        assert optim.schedule == "constant" and optim.warmup_steps == 0
    assert (sit.sample.method, sit.sample.steps, sit.sample.cfg_scale) == ("heun", 125, 1.0)
    assert sit.sample.num_samples == 50_000 and sit.vae.scaling_factor == 0.18215
    jit = paper_jit_config()
    assert jit.model == "jit_h_16"
    assert (jit.post.batch_size, jit.post.d_warmup_steps, jit.post.timesteps) == (
        1024, 5000, "logit_normal",
    )  # fmt: skip
    assert jit.sample.steps == 25  # 50 Heun evaluations


def test_tiny_study_declares_its_arms_and_claims():
    tiny = tiny_config()
    assert tiny.model == "tiny_mnist" and tiny.split == "test" and tiny.torch_threads == 1
    study = tiny_study()
    assert [a.name for a in study.arms] == list(TINY_ARMS) and study.seeds == (0, 1, 2)
    main = study.claims[0]
    assert (main.arm, main.baseline, main.metric, main.higher_is_better) == (
        "cafm", "base", "digit_fd", False,
    )  # fmt: skip
    assert {a.name: a.overrides for a in study.arms}["cafm"] == ("post.method=cafm",)
