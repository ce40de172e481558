"""Hook implementations for paperzoo-mocov2.

Imported by every ``paperzoo list``: it imports ``paperzoo.core`` only (no torch) and names
everything heavy by import string.
"""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.mocov2"
_LOADER = f"{_PKG}.convert:load_official_checkpoint"
_RELEASES = "https://dl.fbaipublicfiles.com/moco/moco_checkpoints"

# Trainable parameters (query encoder + head; the key encoder is a momentum copy):
# ResNet-50 without fc = 23,508,032; MLP head 2048-2048-128 = 4,458,624; linear head 262,272.
_R50_NO_FC = 23_508_032


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="mocov2",
            title="Improved Baselines with Momentum Contrastive Learning",
            authors=("Xinlei Chen", "Haoqi Fan", "Ross Girshick", "Kaiming He"),
            year=2020,
            arxiv="2003.04297",
            official_code="https://github.com/facebookresearch/moco",
            headline_results={
                "IN-1K linear top-1, R50, 200 ep": 67.5,
                "IN-1K linear top-1, R50, 800 ep": 71.1,
            },
            description=(
                "MoCo v2: MoCo v1's momentum key encoder and queue of negatives, plus an MLP "
                "projection head, stronger augmentation (blur) and a cosine learning-rate schedule."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name="mocov2_resnet50",
            factory=f"{_PKG}.model:mocov2_resnet50",
            paper="mocov2",
            description="MoCo v2: ResNet-50 query/key encoders, 2048-2048-128 MLP head, K=65536, T=0.2",
            num_params=_R50_NO_FC + 4_458_624,
            checkpoint_loader=_LOADER,
            pretrained={
                "in1k_800ep": f"{_RELEASES}/moco_v2_800ep/moco_v2_800ep_pretrain.pth.tar",
                "in1k_200ep": f"{_RELEASES}/moco_v2_200ep/moco_v2_200ep_pretrain.pth.tar",
            },
            tags=("self-supervised", "contrastive", "resnet"),
        ),
        ModelSpec(
            name="mocov1_resnet50",
            factory=f"{_PKG}.model:mocov1_resnet50",
            paper="mocov2",
            description="MoCo v1: ResNet-50 encoders, linear 2048-128 head, K=65536, T=0.07",
            num_params=_R50_NO_FC + 262_272,
            checkpoint_loader=_LOADER,
            pretrained={"in1k_200ep": f"{_RELEASES}/moco_v1_200ep/moco_v1_200ep_pretrain.pth.tar"},
            tags=("self-supervised", "contrastive", "resnet"),
        ),
        ModelSpec(
            name="mocov2_resnet18_cifar",
            factory=f"{_PKG}.model:mocov2_resnet18_cifar",
            paper="mocov2",
            description="MoCo v2 on ResNet-18 with a 3x3 stride-1 stem, no max-pool (32 px images)",
            # ResNet-18 with the 3x3 stem, without fc (11,168,832) + head 512-512-128 (328,320).
            num_params=11_168_832 + 328_320,
            checkpoint_loader=_LOADER,
            tags=("self-supervised", "contrastive", "resnet", "small-images"),
        ),
        ModelSpec(
            name="mocov2_resnet10_narrow",
            factory=f"{_PKG}.model:mocov2_resnet10_narrow",
            paper="mocov2",
            description=(
                "MoCo v2 on a narrow ResNet-10 (widths 16-32-64-128, small-image stem); "
                "not from the paper, sized for CPU runs on 28 px images"
            ),
            num_params=307_536 + 33_024,
            checkpoint_loader=_LOADER,
            tags=("self-supervised", "contrastive", "resnet", "small-images", "tiny"),
        ),
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="moco",
            factory=f"{_PKG}.method:MoCoMethod",
            paper="mocov2",
            description=(
                "MoCo v1/v2: momentum key encoder, queue of negatives, InfoNCE, shuffle-BN "
                "(across DDP ranks, or bn_splits virtual GPUs in one process)"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    return [
        RecipeSpec(
            name="mocov2_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="mocov2",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: the paper's Table 1 ablation as a study on the bundled MNIST "
                "digits (narrow ResNet-10): MoCo v1, v1 + MLP head, v1 + aug+, v2, 3 seeds "
                "each; linear probe and kNN on a held-out test split, with the random-init "
                "encoder as a floor. No reference values: the arms' results and the claims' "
                "verdicts are in the package README."
            ),
            reference={},
        ),
        RecipeSpec(
            name="mocov2_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="mocov2",
            variant="paper",
            description="MoCo v2, ResNet-50, ImageNet-1k (--data), 200 epochs; linear eval lr 30",
            reference={"linear_top1": 67.5},
        ),
        RecipeSpec(
            name="mocov2_paper_800ep",
            config=f"{recipes}:paper_800ep_config",
            runner=runner,
            paper="mocov2",
            variant="paper_800ep",
            description="MoCo v2, ResNet-50, ImageNet-1k (--data), 800 epochs; linear eval lr 30",
            reference={"linear_top1": 71.1},
        ),
    ]
