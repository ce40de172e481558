"""Hook implementations for paperzoo-diffmae.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string.
"""

from __future__ import annotations

from paperzoo.core import CommandSpec, MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.diffmae"
_LOADER = f"{_PKG}.convert:load_checkpoint"
_TAGS = ("self-supervised", "masked-image-modeling", "diffusion", "vit")

# Parameters (every nn.Parameter, the fixed sin-cos position embeddings included, as timm
# counts them), asserted in tests/test_model.py. The fine-tuning models equal timm's
# vit_{base,large}_patch16_224 / vit_huge_patch14_224 with a 1000-way head; ViT-L's 304.3M is
# the paper's "304 M" (project-page table). Pre-training models: encoder + decoder
# (512 wide, 8 blocks, 16 heads); no number to compare with in the paper.
PARAMS = {
    "diffmae_vit_base_patch16": 122_954_752,
    "diffmae_vit_large_patch16": 342_558_976,
    "diffmae_vit_large_patch16_cross": 334_145_792,
    "diffmae_vit_huge_patch14": 671_969_612,
    "diffmae_vit_large_patch16_16x224": 346_240_000,
    "diffmae_mae_vit_large_patch16": 329_541_888,
    "diffmae_diffusion_vit_large_patch16": 342_558_976,
    "diffmae_finetune_vit_base_patch16": 86_567_656,
    "diffmae_finetune_vit_large_patch16": 304_326_632,
    "diffmae_finetune_vit_huge_patch14": 632_045_800,
    "diffmae_finetune_vit_large_patch16_16x224": 306_517_992,
    "diffmae_tiny_mnist": 487_793,
    "diffmae_tiny_mnist_cross": 420_721,
    "diffmae_mae_tiny_mnist": 412_977,
    "diffmae_diffusion_tiny_mnist": 487_793,
    "diffmae_finetune_tiny_mnist": 205_066,
    "diffmae_tiny_video": 73_248,
    "diffmae_finetune_tiny_video": 29_994,
}

_MODELS = {
    "diffmae_vit_base_patch16": ("DiffMAE ViT-B/16 + cross-self decoder (pre-training)",),
    "diffmae_vit_large_patch16": ("DiffMAE ViT-L/16 + cross-self decoder (pre-training; the "
                                  "paper's headline model)",),
    "diffmae_vit_large_patch16_cross": ("DiffMAE ViT-L/16 + cross decoder (no self-attention)",),
    "diffmae_vit_huge_patch14": ("DiffMAE ViT-H/14 + cross-self decoder (pre-training)",),
    "diffmae_vit_large_patch16_16x224": ("DiffMAE video ViT-L/16, 16 frames in 2 x 16 x 16 "
                                         "tubelets, 90% masked", "video"),
    "diffmae_mae_vit_large_patch16": ("The MAE baseline: the same encoder, MAE's decoder",
                                      "baseline"),
    "diffmae_diffusion_vit_large_patch16": ("The plain-diffusion baseline: every patch noised, "
                                            "no clean context", "baseline"),
    "diffmae_finetune_vit_base_patch16": ("ViT-B/16 classifier for fine-tuning (avg pool + "
                                          "fc_norm + head)", "classifier"),
    "diffmae_finetune_vit_large_patch16": ("ViT-L/16 classifier for fine-tuning", "classifier"),
    "diffmae_finetune_vit_huge_patch14": ("ViT-H/14 classifier for fine-tuning", "classifier"),
    "diffmae_finetune_vit_large_patch16_16x224": ("Video ViT-L/16 classifier (16 frames)",
                                                  "classifier", "video"),
    "diffmae_tiny_mnist": ("Not from the paper: 4-block width-64 ViT on 28 px digits (7 px "
                           "patches) + 4-block cross-self decoder, for CPU runs", "tiny"),
    "diffmae_tiny_mnist_cross": ("Not from the paper: the tiny model with the cross decoder",
                                 "tiny"),
    "diffmae_mae_tiny_mnist": ("Not from the paper: the tiny encoder with MAE's decoder",
                               "tiny", "baseline"),
    "diffmae_diffusion_tiny_mnist": ("Not from the paper: the tiny plain-diffusion baseline",
                                     "tiny", "baseline"),
    "diffmae_finetune_tiny_mnist": ("Not from the paper: the tiny classifier (10 classes)",
                                    "tiny", "classifier"),
    "diffmae_tiny_video": ("Not from the paper: 4 frames of 16 px in 2 x 4 x 4 tubelets",
                           "tiny", "video"),
    "diffmae_finetune_tiny_video": ("Not from the paper: the tiny video classifier",
                                    "tiny", "video", "classifier"),
}  # fmt: skip


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="diffmae",
            title="Diffusion Models as Masked Autoencoders",
            authors=(
                "Chen Wei", "Karttikeya Mangalam", "Po-Yao Huang", "Yanghao Li", "Haoqi Fan",
                "Hu Xu", "Huiyu Wang", "Cihang Xie", "Alan Yuille", "Christoph Feichtenhofer",
            ),
            year=2023,
            arxiv="2304.03283",
            venue="ICCV 2023",
            official_code=None,
            headline_results={
                # Fine-tuning generative models on ImageNet-1K (project page / paper table).
                "IN-1K fine-tune top-1, DiffMAE ViT-L": 85.8,
                "IN-1K fine-tune top-1, MAE ViT-L": 85.9,
                "IN-1K fine-tune top-1, DDPM ViT-L": 83.4,
                "IN-1K fine-tune top-1, ADM U-Net": 83.3,
                "IN-1K fine-tune top-1, iGPT-L": 72.6,
            },
            description=(
                "Conditions a diffusion model on the visible patches: a ViT encoder on the "
                "visible patches, a decoder that denoises the masked patches from a random "
                "noise level to their pixels (cross-self or cross decoder, top-down connected "
                "to the encoder blocks); iterative inpainting; extends to video. No code or "
                "weights were released."
            ),
        )
    ]  # fmt: skip


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.model:{name}",
            paper="diffmae",
            description=description,
            num_params=PARAMS[name],
            checkpoint_loader=_LOADER,
            tags=(*_TAGS, *tags),
        )
        for name, (description, *tags) in _MODELS.items()
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="diffmae",
            factory=f"{_PKG}.method:DiffMAEPretraining",
            paper="diffmae",
            description="Denoise the masked patches (DDPM noise, x0 target, MSE) given the "
            "visible ones; conditioning='none' is the plain-diffusion baseline",
        ),
        MethodSpec(
            name="diffmae_mae",
            factory=f"{_PKG}.method:MAEPretraining",
            paper="diffmae",
            description="MAE pixel regression on the same encoder (the baseline)",
        ),
        MethodSpec(
            name="diffmae_finetune",
            factory=f"{_PKG}.method:Finetune",
            paper="diffmae",
            description="Fine-tuning with layer-wise lr decay (MAE's protocol)",
        ),
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="diffmae_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="diffmae",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: MAE vs DiffMAE (cross-self, cross) vs plain diffusion "
                "pre-training (and a no-pre-training floor) on the bundled MNIST digits, the "
                "same encoder and budget, 3 seeds; fine-tune top-1 on 10% of the labels (test "
                "split) and inpainting MSE."
            ),
            reference={},
        ),
        RecipeSpec(
            name="diffmae_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="diffmae",
            variant="paper",
            description="DiffMAE ViT-L/16 on ImageNet-1K (--data: train/ and val/), then "
            "fine-tuning with layer-wise lr decay",
            reference={"finetune_top1": 85.8},
        ),
        RecipeSpec(
            name="diffmae_paper_video",
            config=f"{recipes}:paper_video_config",
            runner=runner,
            paper="diffmae",
            variant="paper_video",
            description="DiffMAE video ViT-L/16, 16 frames, 90% masking, on Kinetics-400 "
            "(--data: train.csv and val.csv), then fine-tuning",
            reference={},
        ),
    ]


@hookimpl
def paperzoo_commands() -> list[CommandSpec]:
    return [
        CommandSpec(
            name="diffmae-inpaint",
            command=f"{_PKG}.inpaint:main",
            help="inpaint masked images with a DiffMAE checkpoint and write a grid PNG "
            "(paperzoo diffmae-inpaint --checkpoint-path P --out grid.png)",
        )
    ]
