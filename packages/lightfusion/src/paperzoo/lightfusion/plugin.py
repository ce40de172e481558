"""Hook implementations for paperzoo-lightfusion. Keep this module light: no torch imports."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.lightfusion"

# Parameters of the registered tiny model as lightfusion_tiny() builds it (every nn.Parameter;
# asserted in tests/test_model.py): the tiny Qwen2 LM 78,400 (tied embeddings), the tiny Wan DiT
# 192,132 (14 x 14 digits, patch 2), two fusion layers 66,688 and the learned 4 x 32
# cross-attention context 128. Not from the paper. The paper's pair (Qwen2.5-VL-7B + Wan2.2-TI2V-5B) adds 29 fusion layers
# (2,372,613,888 parameters; "min" pairing: 27 layers, 2,208,985,344) to the two base models;
# that factory loads the base models from local folders, so its count is not fixed here.
PARAMS = {"lightfusion_tiny": 337_348}


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="lightfusion",
            title="LightFusion: A Light-weighted, Double Fusion Framework for Unified Multimodal "
            "Understanding and Generation",
            authors=(
                "Zeyu Wang",
                "Zilong Chen",
                "Chenhui Gou",
                "Feng Li",
                "Chaorui Deng",
                "Deyao Zhu",
                "Kunchang Li",
                "Weihao Yu",
                "Haoqin Tu",
                "Haoqi Fan",
                "Cihang Xie",
            ),
            year=2025,
            arxiv="2510.22946",
            official_code="https://github.com/chenhuigou/VQ-VA-World/tree/main/modeling/lightfusion",
            headline_results={
                "GenEval overall": 0.91,
                "DPG-Bench": 82.16,
                "GEdit-Bench": 6.06,
                "ImgEdit": 3.77,
            },
            description=(
                "A frozen Qwen2.5-VL-7B and a Wan2.2-TI2V-5B DiT keep their own blocks; a "
                "zero-initialised multimodal attention layer after each layer pair lets the "
                "latents attend to the VLM's tokens; rectified-flow training of the generation "
                "side only"
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    tags = ("text-to-image", "fusion", "flow-matching")
    return [
        ModelSpec(
            name="lightfusion_base",
            factory=f"{_PKG}.model:lightfusion_base",
            paper="lightfusion",
            checkpoint_loader=f"{_PKG}.convert:load_official",
            description=(
                "LightFusion over any transformers causal LM / VLM and a diffusers "
                "WanTransformer3DModel: vlm_path= (Qwen2.5-VL-7B) and vgen_path= (Wan2.2-TI2V-5B) "
                "local folders for the paper's pair (29 fusion layers), or the two modules"
            ),
            tags=tags,
        ),
        ModelSpec(
            name="lightfusion_tiny",
            factory=f"{_PKG}.model:lightfusion_tiny",
            paper="lightfusion",
            num_params=PARAMS["lightfusion_tiny"],
            checkpoint_loader=f"{_PKG}.convert:load_official",
            description=(
                "a 2-layer 64-wide Qwen2 LM fused with a 3-block 64-wide Wan DiT on 14 x 14 "
                "digits (2 fusion layers); the CPU study's size, not from the paper"
            ),
            tags=(*tags, "tiny"),
        ),
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="lightfusion",
            factory=f"{_PKG}.method:LightFusionFlow",
            paper="lightfusion",
            description=(
                "rectified flow on the generation side (logit-normal t, shift 4), text dropout "
                "0.1, the understanding tower frozen; FSDP2 units = LM layers, DiT blocks, "
                "fusion layers"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="lightfusion_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="lightfusion",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: a Wan DiT alone (class embedding) vs the same DiT fused with a "
                "frozen tiny Qwen2 LM, digits from prompts x 3 seeds; classifier-judged prompt "
                "accuracy and digit Frechet distance"
            ),
            reference={},
        ),
        RecipeSpec(
            name="lightfusion_tiny_long",
            config=f"{recipes}:tiny_long_config",
            runner=runner,
            paper="lightfusion",
            variant="tiny_long",
            study=f"{recipes}:tiny_long_study",
            description=(
                "CPU, ~35 min: lightfusion_tiny with 1,200 steps for both arms after the shared "
                "pretraining (the second declared protocol)"
            ),
            reference={},
        ),
        RecipeSpec(
            name="lightfusion_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="lightfusion",
            variant="paper",
            description=(
                "official stage 1: Qwen2.5-VL-7B + Wan2.2-TI2V-5B from local folders, AdamW 3e-5 "
                "(0.9, 0.95), warm-up 2000, 50k steps, shift 4, EMA 0.9999; --data an "
                "image-caption folder"
            ),
            reference={"GenEval overall": 0.91, "DPG-Bench": 82.16},
        ),
    ]
