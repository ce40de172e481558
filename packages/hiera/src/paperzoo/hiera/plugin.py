"""Hook implementations for paperzoo-hiera. Keep this module light: no torch imports."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_LOADER = "paperzoo.hiera.convert:load_checkpoint"
_URL = "https://dl.fbaipublicfiles.com/hiera/{}.pth"

# name -> (parameter count, description). Counts equal the official hiera-transformer and
# timm models (image) and the official models (video); tests re-count them on the meta device.
_IMAGE = {
    "hiera_tiny_224": (27_910_216, "Hiera-T, 224x224 images, IN-1K head"),
    "hiera_small_224": (35_008_072, "Hiera-S, 224x224 images, IN-1K head"),
    "hiera_base_224": (51_524_968, "Hiera-B, 224x224 images, IN-1K head"),
    "hiera_base_plus_224": (69_896_616, "Hiera-B+, 224x224 images, IN-1K head"),
    "hiera_large_224": (213_739_912, "Hiera-L, 224x224 images, IN-1K head"),
    "hiera_huge_224": (672_779_752, "Hiera-H, 224x224 images, IN-1K head"),
}
_VIDEO = {
    "hiera_base_16x224": (51_092_560, "Hiera-B, 16x224x224 video, K400 head"),
    "hiera_base_plus_16x224": (69_392_240, "Hiera-B+, 16x224x224 video, K400 head"),
    "hiera_large_16x224": (213_091_600, "Hiera-L, 16x224x224 video, K400 head"),
    "hiera_huge_16x224": (671_627_664, "Hiera-H, 16x224x224 video, K400 head"),
}
# Multiply-accumulates per sample (torch.utils.flop_counter FLOPs / 2), the paper's unit.
_MACS = {"hiera_base_224": 9.4e9}


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="hiera",
            title="Hiera: A Hierarchical Vision Transformer without the Bells-and-Whistles",
            authors=(
                "Chaitanya Ryali",
                "Yuan-Ting Hu",
                "Daniel Bolya",
                "Chen Wei",
                "Haoqi Fan",
                "Po-Yao Huang",
                "Vaibhav Aggarwal",
                "Arkabandhu Chowdhury",
                "Omid Poursaeed",
                "Judy Hoffman",
                "Jitendra Malik",
                "Yanghao Li",
                "Christoph Feichtenhofer",
            ),
            year=2023,
            arxiv="2306.00989",
            venue="ICML 2023",
            official_code="https://github.com/facebookresearch/hiera",
            headline_results={
                "IN-1K top-1, Hiera-T": 82.8,
                "IN-1K top-1, Hiera-S": 83.8,
                "IN-1K top-1, Hiera-B": 84.5,
                "IN-1K top-1, Hiera-B+": 85.2,
                "IN-1K top-1, Hiera-L": 86.1,
                "IN-1K top-1, Hiera-H": 86.9,
                "K400 top-1 (3x5 views), Hiera-B 16x224": 84.0,
                "K400 top-1 (3x5 views), Hiera-L 16x224": 87.3,
            },
            description=(
                "A hierarchical ViT stripped of vision-specific modules (no relative position "
                "bias, no conv, no shifted windows): mask-unit attention in early stages, "
                "max-pooled queries between stages, taught spatial biases by MAE pretraining."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    specs = []
    for name, (count, text) in _IMAGE.items():
        short = name.removesuffix("_224")
        specs.append(
            ModelSpec(
                name=name,
                factory=f"paperzoo.hiera.model:{name}",
                paper="hiera",
                description=text,
                num_params=count,
                flops=_MACS.get(name),
                checkpoint_loader=_LOADER,
                pretrained={
                    "mae_in1k_ft_in1k": _URL.format(name),
                    "mae_in1k": _URL.format(f"mae_{short}_224"),
                },
                tags=("image", "classification"),
            )
        )
    for name, (count, text) in _VIDEO.items():
        specs.append(
            ModelSpec(
                name=name,
                factory=f"paperzoo.hiera.model:{name}",
                paper="hiera",
                description=text,
                num_params=count,
                checkpoint_loader=_LOADER,
                pretrained={
                    "mae_k400_ft_k400": _URL.format(name),
                    "mae_k400": _URL.format(f"mae_{name}"),
                },
                tags=("video", "classification"),
            )
        )
    specs.append(
        ModelSpec(
            name="hiera_toy_8x64",
            factory="paperzoo.hiera.model:hiera_toy_8x64",
            paper="hiera",
            description=(
                "not from the paper: a CPU-sized 3-stage video Hiera (8x64x64 clips, 40 "
                "moving-digits classes) used by the hiera_tiny recipe"
            ),
            num_params=87_512,
            checkpoint_loader=_LOADER,
            tags=("video", "classification", "toy"),
        )
    )
    return specs


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="hiera_mae",
            factory="paperzoo.hiera.method:hiera_mae",
            paper="hiera",
            description=(
                "MAE with a Hiera encoder (official MaskedAutoencoderHiera): mask units dropped "
                "at ratio 0.6 (images) / 0.9 (video), multi-scale fusion, normalized-pixel loss"
            ),
        ),
        MethodSpec(
            name="hiera_finetune",
            factory="paperzoo.hiera.method:hiera_finetune",
            paper="hiera",
            description="supervised (fine-)tuning of a Hiera classifier, layer-wise lr decay",
        ),
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    return [
        RecipeSpec(
            name="hiera_tiny",
            config="paperzoo.hiera.recipes:HieraTinyConfig",
            runner="paperzoo.hiera.recipes:run_tiny",
            paper="hiera",
            variant="tiny",
            description=(
                "CPU, minutes: textured moving-digits videos, hiera_toy_8x64; MAE on all "
                "training clips then fine-tuning on 10% of the labels vs the same fine-tuning "
                "from scratch, 3 seeds, test top-1"
            ),
            study="paperzoo.hiera.recipes:tiny_study",
        ),
        RecipeSpec(
            name="hiera_paper",
            config="paperzoo.hiera.recipes:HieraPaperConfig",
            runner="paperzoo.hiera.recipes:run_paper",
            paper="hiera",
            variant="paper",
            description=(
                "the paper's MAE pretraining and fine-tuning on ImageNet-1K (image) or "
                "Kinetics-400 (video); needs --data"
            ),
            reference={"top1": 84.5},
        ),
    ]
