"""Hook implementations for paperzoo-mvit.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string. ``num_params`` and ``flops`` (multiply-accumulates, the
papers' "FLOPs", see :mod:`paperzoo.mvit.flops`) are checked by the package's tests.
"""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.mvit"
_LOADER = f"{_PKG}.convert:load_checkpoint"
_PTV = "https://dl.fbaipublicfiles.com/pytorchvideo/model_zoo"
_MVIT2 = "https://dl.fbaipublicfiles.com/mvit/mvitv2_models"
_PYSF2 = "https://dl.fbaipublicfiles.com/pyslowfast/model_zoo/mvitv2/pysf_video_models"

# name -> (description, num_params, MACs at the default input, pretrained tags, tags)
_MODELS: dict[str, tuple[str, int, float, dict[str, str], tuple[str, ...]]] = {
    "mvit_base_16x4": (
        "MViT-B 16x4, Kinetics-400: 16 frames x 224^2, conv patch embed (3,7,7)/(2,4,4), "
        "separate space-time position embeddings, cls token, 4 scale stages",
        36_610_672,
        70.60e9,
        {
            "k400": f"{_PTV}/kinetics/MVIT_B_16x4.pyth",  # pytorchvideo layout
            "k400_torchvision": "https://download.pytorch.org/models/mvit_v1_b-dbeb1030.pth",
        },
        ("video", "kinetics"),
    ),
    "mvit_base_32x3": (
        "MViT-B 32x3, Kinetics-400: 32 frames x 224^2",
        36_611_440,
        169.96e9,
        {"k400": f"{_PTV}/kinetics/MVIT_B_32x3_f294077834.pyth"},
        ("video", "kinetics"),
    ),
    "mvit_base_224": (
        "image MViT-B-16, ImageNet-1K 224^2: 2D patch embed, kv pooling kernel (1,3,3)",
        36_982_696,
        7.81e9,
        {"in1k": f"{_PTV}/imagenet/MVIT_B_16_f292487636.pyth"},
        ("image", "imagenet"),
    ),
    "mvitv2_tiny": (
        "MViTv2-T, ImageNet-1K 224^2 (timm mvitv2_tiny): rel-pos, residual pooling",
        24_173_320,
        4.68e9,
        {"in1k": f"{_MVIT2}/MViTv2_T_in1k.pyth"},
        ("image", "imagenet", "mvitv2"),
    ),
    "mvitv2_small": (
        "MViTv2-S, ImageNet-1K 224^2 (timm mvitv2_small)",
        34_870_216,
        6.96e9,
        {"in1k": f"{_MVIT2}/MViTv2_S_in1k.pyth"},
        ("image", "imagenet", "mvitv2"),
    ),
    "mvitv2_base": (
        "MViTv2-B, ImageNet-1K 224^2 (timm mvitv2_base)",
        51_472_744,
        10.10e9,
        {"in1k": f"{_MVIT2}/MViTv2_B_in1k.pyth"},
        ("image", "imagenet", "mvitv2"),
    ),
    "mvitv2_small_16x4": (
        "MViTv2-S 16x4, Kinetics-400 (torchvision mvit_v2_s): cls token, space-time rel-pos",
        34_537_744,
        64.22e9,
        {
            "k400": f"{_PYSF2}/MViTv2_S_16x4_k400_f302660347.pyth",
            "k400_torchvision": "https://download.pytorch.org/models/mvit_v2_s-ae3be167.pth",
        },
        ("video", "kinetics", "mvitv2"),
    ),
    "mvit_tiny_video": (
        "not from the paper: a 6-block MViT for 8x32x32 clips (the tiny recipe)",
        773_288,
        33.6e6,
        {},
        ("video", "tiny"),
    ),
    "vit_tiny_video": (
        "not from the paper: the single-scale ViT baseline of the tiny recipe (same 6 blocks, "
        "no pooling, 2x8x8 patches, width 76: the MViT's MACs)",
        470_556,
        33.7e6,
        {},
        ("video", "tiny", "baseline"),
    ),
}


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="mvit",
            title="Multiscale Vision Transformers",
            authors=(
                "Haoqi Fan",
                "Bo Xiong",
                "Karttikeya Mangalam",
                "Yanghao Li",
                "Zhicheng Yan",
                "Jitendra Malik",
                "Christoph Feichtenhofer",
            ),
            year=2021,
            arxiv="2104.11227",
            venue="ICCV 2021",
            official_code="https://github.com/facebookresearch/SlowFast/tree/main/projects/mvit",
            headline_results={
                "K400 top-1, MViT-B 16x4 (1x5 views, 70.5 GFLOPs/view)": 78.4,
                "K400 top-1, MViT-B 32x3 (1x5 views, 170 GFLOPs/view)": 80.2,
            },
            description=(
                "Multiscale transformer for video and images: multi-head pooling attention "
                "(pooled queries reduce the space-time resolution stage by stage while the "
                "channels expand; pooled keys/values cut the attention cost). Also MViTv2 "
                "(arXiv 2112.01526): decomposed relative positions and residual pooling."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name=name,
            factory=f"{_PKG}.model:{name}",
            paper="mvit",
            description=description,
            num_params=num_params,
            flops=flops,
            checkpoint_loader=_LOADER,
            pretrained=pretrained,
            tags=("transformer", *tags),
        )
        for name, (description, num_params, flops, pretrained, tags) in _MODELS.items()
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="video_classification",
            factory="paperzoo.train.classification:Classification",
            paper="mvit",
            description="supervised clip classification: CE with label smoothing, or soft CE "
            "on Mixup/CutMix targets",
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    return [
        RecipeSpec(
            name="mvit_tiny",
            config=f"{recipes}:tiny_config",
            runner=f"{_PKG}.reproduce:run_tiny",
            paper="mvit",
            variant="tiny",
            description=(
                "CPU, minutes: MViT vs a single-scale ViT of matched MACs (same depth, both "
                "from scratch) on 2,400 moving-digits clips (digit x direction), 3 seeds each; "
                "test top-1. The claim holds when the MViT's mean is higher."
            ),
            reference={},
            study=f"{recipes}:tiny_study",
        ),
        RecipeSpec(
            name="mvit_paper",
            config=f"{recipes}:paper_config",
            runner=f"{_PKG}.reproduce:run_paper",
            paper="mvit",
            variant="paper",
            description=(
                "MViT-B 16x4 on Kinetics-400 (--data: a folder with train.csv/val.csv), "
                "official PySlowFast hyper-parameters, 200 epochs; 5-clip x 1-crop test"
            ),
            reference={"top1": 78.4},
        ),
    ]
