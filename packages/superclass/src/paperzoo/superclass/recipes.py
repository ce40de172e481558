"""SuperClass recipes: typed configs for the ``tiny`` (CPU, captioned MNIST) and ``paper`` runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
must stay free of torch); the runner is :func:`paperzoo.superclass.reproduce.run`.

Paper recipe: the official ``opencls/configs/cls_schedule/cls_vit_b16_s512m_bs16k.yaml``
(ViT-B/16, 512M samples seen at a global batch of 16,384: 31,250 steps; AdamW lr 5e-4,
betas (0.9, 0.98), eps 1e-6, weight decay 0.2 (the ``--wd`` default) on weights with ndim >= 2,
500 warm-up steps then cosine (the ``--lr-scheduler`` default), ``amp_bfloat16``, gradient
checkpointing, a checkpoint every 6,104 steps), then the LiT stage of
``lit_vit_b16_s512m_bs16k.yaml`` (``ViT-B-16-avg`` with the SuperClass tower locked but its new
projection, a 12-block width-512 text tower trained from scratch, the same optimizer and
length). ``method=clip`` trains the baseline: open_clip's CLIP at the same tower and budget.
The paper's Table 9 (batch 16k, 512M samples, ViT-B/16): SuperClass linear probe 76.0,
zero-shot (after LiT) 61.7; CLIP 75.5 and 59.8.

Tiny recipe: the two arms of :func:`tiny_study` on the 5,000 bundled MNIST digits with
captions measured from each image (:mod:`paperzoo.superclass.captions`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "TINY_ARMS",
    "EvalConfig",
    "LiTConfig",
    "SuperClassRecipeConfig",
    "paper_config",
    "tiny_config",
    "tiny_study",
]

PAPER_SAMPLES_SEEN = 512_000_000
PAPER_GLOBAL_BATCH = 16_384


@dataclass
class LiTConfig:
    """The ``lit`` section: lock the SuperClass tower, train a CLIP text tower (zero-shot).

    Only the ``superclass`` method runs it; the CLIP baseline has its own text tower. ``text``
    names a text tower of ``paperzoo.superclass.model.TEXT_CONFIGS``. The optimizer is the
    recipe's ``optim`` with ``lr``/``warmup_steps`` replaced.
    """

    enabled: bool = True
    max_steps: int = PAPER_SAMPLES_SEEN // PAPER_GLOBAL_BATCH
    text: str = "vit_b16"
    embed_dim: int = 512
    pool_type: Literal["avg", "tok"] = "avg"  # ViT-B-16-avg in lit_vit_b16_s512m_bs16k.yaml
    unlocked_groups: int = 1  # lock_image_unlocked_groups: the new projection trains
    lr: float = 5e-4
    warmup_steps: int = 500


@dataclass
class EvalConfig:
    """The ``eval`` section: linear probe on frozen pooled features, and zero-shot.

    Tiny (``data.dataset="mnist_captions"``): stratified splits fixed across arms and seeds;
    ``test_fraction`` of each class is the test split, ``val_fraction`` of the rest the
    validation split; the probe fits on what remains (the pre-training images) and is scored
    on ``split`` (``val`` to tune, ``test`` read once). Paper: ``root`` is an image folder
    with ``train/<class>/*`` and ``val/<class>/*`` (ImageNet); empty skips evaluation.
    """

    enabled: bool = True
    root: str = ""
    linear_protocol: Literal["tiny", "paper"] = "paper"
    zeroshot: bool = True
    batch_size: int = 256
    test_fraction: float = 0.2
    val_fraction: float = 0.2
    split_seed: int = 0
    split: Literal["val", "test"] = "test"
    # Also probe the image tower at its random initialisation (the floor of the tiny study).
    random_init_baseline: bool = False


@dataclass
class SuperClassRecipeConfig:
    """Pre-training (SuperClass or the CLIP baseline), the LiT stage, then evaluation.

    ``data.dataset``: ``"mnist_captions"`` (bundled, tiny), ``"webdataset"`` (``data.root``:
    a folder of ``.tar`` shards, a brace pattern or a glob), ``"jsonl"`` (``data.root``: a
    JSONL file of ``{"image", "caption"}``) or ``"auto"`` (decided from ``data.root``).
    ``data.batch_size`` is per process; 0 means ``global_batch_size // world_size``.
    """

    seed: int = 0
    method: Literal["superclass", "clip"] = "superclass"
    model: str = "superclass_vit_b16"  # the SuperClass model
    clip_model: str = "superclass_clip_vit_b16"  # the CLIP baseline with the same image tower
    global_batch_size: int = PAPER_GLOBAL_BATCH
    context_length: int = 77
    idf: bool = True  # False: the paper's "w/o IDF" ablation (Table 7)
    grad_checkpointing: bool = True
    # Undecodable images are skipped and counted; past this fraction of the data in one epoch
    # the run stops with an error naming them.
    max_bad_image_fraction: float = 0.01
    # Webdataset shards: keep each shard's index here (default: OUT/_shard_index).
    shard_index_dir: str = ""
    # torch intra-op threads of this process; 0 leaves torch's default.
    torch_threads: int = 0
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    lit: LiTConfig = field(default_factory=LiTConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)


def _official_optim(lr: float = 5e-4, warmup: int = 500) -> OptimConfig:
    return OptimConfig(
        name="adamw", lr=lr, betas=(0.9, 0.98), eps=1e-6, weight_decay=0.2, schedule="cosine",
        warmup_steps=warmup, min_lr=0.0, exclude_bias_norm=True,
    )  # fmt: skip


def paper_config() -> SuperClassRecipeConfig:
    """SuperClass ViT-B/16, batch 16k, 512M samples seen (``cls_vit_b16_s512m_bs16k``), LiT."""
    steps = PAPER_SAMPLES_SEEN // PAPER_GLOBAL_BATCH
    return SuperClassRecipeConfig(
        seed=0,
        method="superclass",
        model="superclass_vit_b16",
        clip_model="superclass_clip_vit_b16",
        global_batch_size=PAPER_GLOBAL_BATCH,
        context_length=77,
        grad_checkpointing=True,
        trainer=TrainerConfig(
            max_steps=steps,
            checkpoint_every=6104,
            keep_checkpoints=2,
            log_every=128,
            amp="bf16",
        ),
        optim=_official_optim(),
        data=DataConfig(dataset="auto", root="", batch_size=0, num_workers=6, image_size=224),
        lit=LiTConfig(enabled=True, max_steps=steps, text="vit_b16", embed_dim=512),
        eval=EvalConfig(enabled=True, root="", linear_protocol="paper", zeroshot=True),
    )


# The arms of the tiny study: the same tower, data, batch, steps and optimizer; only the
# objective differs. Each arm's lr is its best of {1, 2, 4, 8}e-3 on the validation split
# (seed 0, the full budget; the README has the table): SuperClass 4e-3, CLIP 2e-3.
TINY_ARMS: dict[str, tuple[str, ...]] = {
    "superclass": ("method=superclass", "optim.lr=0.004"),
    "clip": ("method=clip", "optim.lr=0.002"),
}


def tiny_config() -> SuperClassRecipeConfig:
    """The ``superclass`` arm of :func:`tiny_study`: captioned MNIST, a 4-block ViT, CPU.

    Departures from the paper recipe, forced by size: a width-64 4-block ViT on 28 px digits
    (patch 4), global batch 64, a few hundred steps, context length 32 (the longest caption
    has 28 tokens, so no caption is cut and the targets are the paper's), no augmentation
    (the captions describe position and size, which crops would change), fp32; the LiT and
    baseline text towers have 2 blocks of width 64. The probe is the fast deterministic one
    (``protocol="tiny"``) on frozen pooled features.
    """
    return SuperClassRecipeConfig(
        seed=0,
        method="superclass",
        model="superclass_vit_tiny_mnist",
        clip_model="superclass_clip_tiny_mnist",
        global_batch_size=64,
        context_length=32,
        grad_checkpointing=False,
        torch_threads=1,
        trainer=TrainerConfig(
            max_steps=300,
            checkpoint_every=100,
            keep_checkpoints=1,
            log_every=10,
            amp="off",
            tensorboard=False,
        ),
        optim=_official_optim(lr=0.002, warmup=30),
        data=DataConfig(
            dataset="mnist_captions", root="", batch_size=0, num_workers=0, image_size=28
        ),
        lit=LiTConfig(
            enabled=True,
            max_steps=150,
            text="tiny_mnist",
            embed_dim=64,
            pool_type="avg",
            lr=0.002,
            warmup_steps=15,
        ),
        eval=EvalConfig(
            enabled=True,
            linear_protocol="tiny",
            zeroshot=True,
            batch_size=500,
            test_fraction=0.2,
            val_fraction=0.2,
            split_seed=0,
            split="test",
            random_init_baseline=True,
        ),
    )


def tiny_study() -> Study:
    """SuperClass vs CLIP at equal compute and a small batch, seeds 0-2, on test top-1."""
    from paperzoo.train.study import Arm, Claim, Study

    return Study(
        arms=tuple(
            Arm(name, overrides, description=text)
            for (name, overrides), text in zip(
                TINY_ARMS.items(),
                (
                    "SuperClass: IDF-weighted caption-token classification, then LiT",
                    "CLIP: open_clip's CLIP and ClipLoss, the same image tower",
                ),
            )
        ),
        seeds=(0, 1, 2),
        seed_key="seed",
        metrics=("linear_top1", "zeroshot_top1", "random_init_linear_top1"),
        claims=(
            Claim(
                "at equal compute and a small batch, SuperClass reaches CLIP's linear-probe "
                "accuracy or better",
                metric="linear_top1",
                arm="superclass",
                baseline="clip",
                rule="better_mean",
            ),
        ),
        description=(
            "Captioned MNIST (captions measured from each image), batch 64, same ViT and "
            "steps: linear probe on frozen pooled features (test split); zero-shot beside it "
            "(SuperClass through LiT)."
        ),
    )
