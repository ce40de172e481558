"""asymsiam recipes: the baseline and the five designs as switches, ``tiny`` and ``paper``.

Only dataclasses live here (``paperzoo info`` imports this module; no torch). The runner is
:func:`paperzoo.asymsiam.reproduce.run`. The config is paperzoo-mocov2's
:class:`~paperzoo.mocov2.recipes.MoCoRecipeConfig` plus an ``asym`` section.

Paper recipe, from the official README and ``main_moco.py`` (facebookresearch/asym-siam): MoCo
v2's defaults with the BN projector, ResNet-50, ImageNet-1k, 100 epochs, SGD lr 0.03 at batch
256, momentum 0.9, weight decay 1e-4, cosine schedule without warm-up (the official code
steps it per epoch; the Trainer steps it per iteration), K=65536, m=0.999, T=0.2, shuffle-BN.
Linear evaluation as SimSiam's ``main_lincls.py --lars``: frozen backbone, fc initialised
N(0, 0.01), LARS (trust 0.001) with lr 0.1 x batch/256 at batch 4096, momentum 0.9, no weight
decay, cosine, 90 epochs, RandomResizedCrop(224) + flip; resize 256 / centre crop 224 to test.
IN-1K linear top-1 of the six official runs: baseline 65.8, MultiCrop 69.9, ScaleMix 67.6,
AsymAug 67.2, AsymBN 66.3, MeanEnc 67.7.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.mocov2.recipes import IMAGENET_TRAIN_IMAGES, EvalConfig, MoCoConfig, MoCoRecipeConfig

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "DESIGNS",
    "PAPER_LINEAR_TOP1",
    "AsymConfig",
    "AsymSiamRecipeConfig",
    "paper_config",
    "tiny_config",
    "tiny_study",
]

# The paper's Table (IN-1K linear top-1, ResNet-50, 100 epochs; the official README's table).
PAPER_LINEAR_TOP1 = {
    "baseline": 65.8,
    "multicrop": 69.9,
    "scalemix": 67.6,
    "asym_aug": 67.2,
    "asym_bn": 66.3,
    "mean_enc": 67.7,
}
# Each design is one switch of the ``asym`` section, as one flag of the official main_moco.py.
DESIGNS = {
    "baseline": (),
    "multicrop": ("asym.multicrop=true",),  # --enable-multicrop
    "scalemix": ("asym.scalemix=true",),  # --enable-scalemix
    "asym_aug": ("asym.asym_aug=true",),  # --enable-asymm-aug
    "asym_bn": ("asym.asym_bn=true",),  # --enable-asym-bn
    "mean_enc": ("asym.mean_enc=true",),  # --enable-mean-encoding
}


@dataclass
class AsymConfig:
    """The ``asym`` section: the five designs (all off = the MoCo baseline) and their settings."""

    # MultiCrop (source): extra small crops; the main crops' RandomResizedCrop scale becomes
    # (multicrop_crop_min_scale, 1) for source and target, as the official code does.
    multicrop: bool = False
    num_small_crops: int = 6
    small_size: int = 96
    small_crop_scale: tuple[float, float] = (0.05, 0.14)
    multicrop_crop_min_scale: float = 0.14
    # ScaleMix (source): two source draws mixed CutMix-style into one view.
    scalemix: bool = False
    # AsymAug: the source adds RandAugment after the flip; the target only crops and flips.
    asym_aug: bool = False
    randaugment: str = "rand-m10-n2-mstd0.5"
    randaugment_translate_const: int = 100
    weak_target_min_scale: float = 0.08  # torchvision's RandomResizedCrop default
    # AsymBN (target): the target projector's BN synchronised over the whole batch.
    asym_bn: bool = False
    # MeanEnc (target): the normalised mean of two target views' projections.
    mean_enc: bool = False
    # The intra-image variance of source and target encodings (paperzoo.asymsiam.method).
    measure_variance: bool = False
    variance_draws: int = 4
    variance_images: int = 512


@dataclass
class AsymSiamRecipeConfig(MoCoRecipeConfig):
    """MoCo's recipe config (paperzoo-mocov2) with the ``asym`` section."""

    model: str = "asymsiam_resnet50"
    asym: AsymConfig = field(default_factory=AsymConfig)


def paper_config() -> AsymSiamRecipeConfig:
    """The official 100-epoch baseline on ImageNet with SimSiam's LARS linear evaluation."""
    return AsymSiamRecipeConfig(
        seed=0,
        model="asymsiam_resnet50",
        global_batch_size=256,
        moco=MoCoConfig(temperature=0.2, crop_min_scale=0.2, shuffle_bn=True, bn_splits=1),
        trainer=TrainerConfig(
            max_steps=100 * IMAGENET_TRAIN_IMAGES // 256,
            checkpoint_every=IMAGENET_TRAIN_IMAGES // 256,
            keep_checkpoints=2,
            log_every=50,
        ),
        optim=OptimConfig(
            name="sgd", lr=0.03, momentum=0.9, weight_decay=1e-4, schedule="cosine", warmup_steps=0
        ),
        data=DataConfig(
            dataset="imagefolder", root="", batch_size=0, num_workers=8, image_size=224
        ),
        eval=EvalConfig(
            linear_protocol="main_lincls",
            linear_optimizer="lars",
            linear_lr=0.1,
            linear_base_batch=256,
            linear_batch_size=4096,
            linear_epochs=90,
            linear_schedule="cosine",
            linear_weight_decay=0.0,
            knn=False,
        ),
        asym=AsymConfig(),
    )


def _paper_design(design: str) -> AsymSiamRecipeConfig:
    cfg = paper_config()
    return dataclasses.replace(cfg, asym=dataclasses.replace(cfg.asym, **{design: True}))


def paper_multicrop_config() -> AsymSiamRecipeConfig:
    """``--enable-multicrop`` (69.9)."""
    return _paper_design("multicrop")


def paper_scalemix_config() -> AsymSiamRecipeConfig:
    """``--enable-scalemix`` (67.6)."""
    return _paper_design("scalemix")


def paper_asym_aug_config() -> AsymSiamRecipeConfig:
    """``--enable-asymm-aug`` (67.2)."""
    return _paper_design("asym_aug")


def paper_asym_bn_config() -> AsymSiamRecipeConfig:
    """``--enable-asym-bn`` (66.3)."""
    return _paper_design("asym_bn")


def paper_mean_enc_config() -> AsymSiamRecipeConfig:
    """``--enable-mean-encoding`` (67.7)."""
    return _paper_design("mean_enc")


def tiny_config() -> AsymSiamRecipeConfig:
    """The baseline on the bundled MNIST digits with a narrow ResNet-10, CPU-sized.

    Departures from the paper recipe, forced by size (the README has the protocol):
    - the narrow ResNet-10 (16-32-64-128) with the official projector shape at width 128;
      the 28 px digits cropped and resized to 16 px (the small crops to 8 px, 16 x 96/224);
      batch 32 in 2 shuffle-BN groups, 300 steps, K=1024, m=0.99, weight decay 5e-4, and
      T=0.1 with lr 0.1 (chosen on the validation split, see the README);
    - crop scales x2.5 (the digits do not survive 20% crops): the main crops (0.5, 1), with
      MultiCrop (0.35, 1) and 6 small crops of scale (0.125, 0.35); AsymAug's weak target
      crop (0.2, 1);
    - the fast linear probe and kNN on frozen features (paperzoo.train.eval), and the
      intra-image variance on the scored split's images.
    """
    return AsymSiamRecipeConfig(
        seed=0,
        model="asymsiam_resnet10_narrow",
        global_batch_size=32,
        torch_threads=1,
        moco=MoCoConfig(
            dim=128,
            queue_size=1024,
            momentum=0.99,
            temperature=0.1,
            mlp=True,
            aug_plus=True,
            blur=True,
            crop_min_scale=0.5,
            shuffle_bn=True,
            bn_splits=2,
        ),
        trainer=TrainerConfig(
            max_steps=300, checkpoint_every=100, keep_checkpoints=1, log_every=25, amp="off"
        ),
        optim=OptimConfig(
            name="sgd", lr=0.1, momentum=0.9, weight_decay=5e-4, schedule="cosine", warmup_steps=0
        ),
        # Two loader workers make the views (the step itself is light at 16 px).
        data=DataConfig(
            dataset="mnist_sample", root="", batch_size=0, num_workers=2, image_size=16
        ),
        eval=EvalConfig(
            linear_protocol="tiny",
            knn_k=200,
            knn_temperature=0.07,
            test_fraction=0.2,
            val_fraction=0.2,
            split_seed=0,
            split="test",
            random_init_baseline=False,
        ),
        asym=AsymConfig(
            small_size=8,
            small_crop_scale=(0.125, 0.35),
            multicrop_crop_min_scale=0.35,
            weak_target_min_scale=0.2,
            measure_variance=True,
            variance_draws=4,
            variance_images=512,
        ),
    )


def tiny_study() -> Study:
    """Every design and the baseline x seeds 0-2, at the same steps and batch.

    Claims, decided on the test split: each design beats the baseline (the paper's table), and
    each design raises the source/target variance ratio over the baseline (the mechanism the
    paper proposes: a source with more variance, or a target with less).
    """
    from paperzoo.train.study import Arm, Claim, Study

    arms = [Arm("baseline", DESIGNS["baseline"] + ("eval.random_init_baseline=true",))]
    arms += [Arm(name, overrides) for name, overrides in DESIGNS.items() if name != "baseline"]
    claims = []
    for name in DESIGNS:
        if name == "baseline":
            continue
        claims.append(
            Claim(
                f"{name} beats the baseline (paper: 65.8 -> {PAPER_LINEAR_TOP1[name]})",
                metric="linear_top1",
                arm=name,
                baseline="baseline",
                rule="better_mean",
            )
        )
        claims.append(
            Claim(
                f"{name} raises the source/target variance ratio over the baseline",
                metric="variance_ratio",
                arm=name,
                baseline="baseline",
                rule="better_mean",
            )
        )
    return Study(
        arms=tuple(arms),
        seeds=(0, 1, 2),
        seed_key="seed",
        metrics=(
            "linear_top1",
            "knn_top1",
            "source_variance",
            "target_variance",
            "variance_ratio",
            "random_init_linear_top1",
        ),
        claims=tuple(claims),
    )
