"""Hook implementations for paperzoo-asymsiam (imports paperzoo.core only; no torch)."""

from __future__ import annotations

from paperzoo.core import MethodSpec, ModelSpec, PaperSpec, RecipeSpec, hookimpl

_PKG = "paperzoo.asymsiam"
# The official checkpoints are MoCo checkpoints (module.encoder_q/k.*, queue): paperzoo-mocov2's
# loader reads them, strictly, into the asymsiam model.
_LOADER = "paperzoo.mocov2.convert:load_official_checkpoint"
_RELEASES = "https://dl.fbaipublicfiles.com/asym-siam"
_CHECKPOINTS = {
    "baseline": "baseline",
    "multicrop": "multicrop",
    "scalemix": "scalemix",
    "asym_aug": "aug",
    "asym_bn": "asym_bn",
    "mean_enc": "mean_enc",
}
_PAPER = {  # IN-1K linear top-1, R50, 100 epochs
    "baseline": 65.8,
    "multicrop": 69.9,
    "scalemix": 67.6,
    "asym_aug": 67.2,
    "asym_bn": 66.3,
    "mean_enc": 67.7,
}


@hookimpl
def paperzoo_papers() -> list[PaperSpec]:
    return [
        PaperSpec(
            name="asymsiam",
            title="On the Importance of Asymmetry for Siamese Representation Learning",
            authors=("Xiao Wang", "Haoqi Fan", "Yuandong Tian", "Daisuke Kihara", "Xinlei Chen"),
            year=2022,
            arxiv="2204.00613",
            official_code="https://github.com/facebookresearch/asym-siam",
            headline_results={
                f"IN-1K linear top-1, R50, 100 ep, {name}": value for name, value in _PAPER.items()
            },
            description=(
                "Siamese learning with a source and a target encoder: keeping the target's "
                "variance lower than the source's helps. Five designs on MoCo v2: MultiCrop, "
                "ScaleMix and AsymAug on the source, AsymBN and MeanEnc on the target."
            ),
        )
    ]


@hookimpl
def paperzoo_models() -> list[ModelSpec]:
    return [
        ModelSpec(
            name="asymsiam_resnet50",
            factory=f"{_PKG}.model:asymsiam_resnet50",
            paper="asymsiam",
            description=(
                "MoCo v2 with the asymsiam projector (Linear-BN-ReLU-Linear-ReLU-Linear, "
                "2048-2048-2048-128), ResNet-50, K=65536, T=0.2"
            ),
            # ResNet-50 without fc (23,508,032) + projector (8,659,072).
            num_params=32_167_104,
            checkpoint_loader=_LOADER,
            pretrained={
                name: f"{_RELEASES}/checkpoint_{file}_100ep.pth"
                for name, file in _CHECKPOINTS.items()
            },
            tags=("self-supervised", "contrastive", "resnet"),
        ),
        ModelSpec(
            name="asymsiam_resnet10_narrow",
            factory=f"{_PKG}.model:asymsiam_resnet10_narrow",
            paper="asymsiam",
            description=(
                "the asymsiam projector on a narrow ResNet-10 (16-32-64-128, small-image "
                "stem); not from the paper, sized for CPU runs on 28 px images"
            ),
            num_params=357_328,
            checkpoint_loader=_LOADER,
            tags=("self-supervised", "contrastive", "resnet", "small-images", "tiny"),
        ),
    ]


@hookimpl
def paperzoo_methods() -> list[MethodSpec]:
    return [
        MethodSpec(
            name="asymsiam",
            factory=f"{_PKG}.method:AsymSiamMethod",
            paper="asymsiam",
            description=(
                "MoCo's step (paperzoo-mocov2) over source views (+ small crops) and averaged "
                "target views; sync_key_head=True is AsymBN"
            ),
        )
    ]


@hookimpl
def paperzoo_recipes() -> list[RecipeSpec]:
    recipes = f"{_PKG}.recipes"
    runner = f"{_PKG}.reproduce:run"
    out = [
        RecipeSpec(
            name="asymsiam_tiny",
            config=f"{recipes}:tiny_config",
            runner=runner,
            paper="asymsiam",
            variant="tiny",
            study=f"{recipes}:tiny_study",
            description=(
                "CPU, minutes: the baseline and the five designs x 3 seeds on the bundled MNIST "
                "digits (narrow ResNet-10), linear probe and kNN on a held-out test split, and "
                "the intra-image variance of source and target encodings"
            ),
            reference={},
        ),
        RecipeSpec(
            name="asymsiam_paper",
            config=f"{recipes}:paper_config",
            runner=runner,
            paper="asymsiam",
            variant="paper",
            description="the MoCo baseline with the BN projector, R50, ImageNet (--data), 100 ep",
            reference={"linear_top1": _PAPER["baseline"]},
        ),
    ]
    for design in ("multicrop", "scalemix", "asym_aug", "asym_bn", "mean_enc"):
        out.append(
            RecipeSpec(
                name=f"asymsiam_paper_{design}",
                config=f"{recipes}:paper_{design}_config",
                runner=runner,
                paper="asymsiam",
                variant=f"paper_{design}",
                description=f"the paper recipe with {design} on, R50, ImageNet (--data), 100 ep",
                reference={"linear_top1": _PAPER[design]},
            )
        )
    return out
