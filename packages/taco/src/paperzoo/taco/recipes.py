"""TaCo recipes: typed configs for the ``tiny`` study (CPU, moving digits) and the ``paper`` run.

Only dataclasses live here (``paperzoo info`` imports this module; no torch). The runner is
:func:`paperzoo.taco.reproduce.run`. The ``moco`` section is paperzoo-mocov2's
:class:`~paperzoo.mocov2.recipes.MoCoConfig` (its image-augmentation fields are unused: the
clips' augmentation is the ``taco`` section's).

Paper recipe. The paper (arXiv:2011.13046) pre-trains on Kinetics-400 and fine-tunes on
UCF-101 and HMDB-51 (split 1), best 85.1 / 51.6 top-1. Its text could not be read from this
machine, so the schedule below is NOT the paper's verified one: pre-training takes MoCo v2's
defaults (SGD lr 0.03 at batch 256, momentum 0.9, weight decay 1e-4, cosine, T=0.2, K=65536,
m=0.999, MLP head) on 16-frame 112 px clips of R3D-18, 200 epochs; fine-tuning is the usual
R3D-18 UCF/HMDB protocol of that period (16 x 112 px, SGD lr 0.05 at batch 64, momentum 0.9,
weight decay 1e-4, cosine, 100 epochs; 10 clips x 3 crops at test). The README's "Sources"
section says which number comes from where.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.mocov2.recipes import MoCoConfig
from paperzoo.train.video_config import MovingDigitsConfig, tiny_adamw, tiny_trainer

if TYPE_CHECKING:
    from paperzoo.train.study import Study

__all__ = [
    "KINETICS400_TRAIN_VIDEOS",
    "PAPER_TOP1",
    "FinetuneConfig",
    "ProbeConfig",
    "TaCoConfig",
    "TaCoRecipeConfig",
    "paper_config",
    "paper_hmdb51_config",
    "tiny_config",
    "tiny_study",
]

KINETICS400_TRAIN_VIDEOS = 240_000  # about; the exact count depends on the copy
PAPER_TOP1 = {"ucf101": 85.1, "hmdb51": 51.6}  # the paper's best model (abstract)
TRANSFORMATIONS = ("rotation", "shuffle", "reverse", "speed")


@dataclass
class TaCoConfig:
    """The ``taco`` section: which temporal transformations, and what learns from them.

    ``transformations`` are drawn for every clip (the augmentation); ``heads`` adds one
    prediction head per transformation; ``contrastive=False`` drops the MoCo loss (the heads
    alone). Empty ``transformations`` with ``heads=False`` is plain video MoCo.
    """

    transformations: tuple[str, ...] = TRANSFORMATIONS
    heads: bool = True
    contrastive: bool = True
    # The contrastive framework TaCo is put on: MoCo v2 (the recipes), SimCLR or BYOL.
    framework: Literal["moco", "simclr", "byol"] = "moco"
    # lambda_k of L = L_contrast + sum_k lambda_k CE_k (1.0 each: our choice, see the README).
    rotation_weight: float = 1.0
    shuffle_weight: float = 1.0
    reverse_weight: float = 1.0
    speed_weight: float = 1.0
    speeds: tuple[int, ...] = (1, 2, 4)  # relative to video.sampling_rate
    # Spatial augmentation of every clip (torchvision transforms.v2, one draw per clip).
    crop_scale: tuple[float, float] = (0.2, 1.0)
    jitter: float = 0.4  # brightness and contrast
    flip: bool = True  # off on moving digits: a flip swaps left and right (the label)

    def task_weights(self) -> dict[str, float]:
        return {name: getattr(self, f"{name}_weight") for name in self.transformations}


@dataclass
class VideoConfig:
    """The ``video`` section: clip length and sampling, sizes, normalisation."""

    num_frames: int = 16
    sampling_rate: int = 2  # source frames between sampled frames at speed 1
    fps: float = 30.0  # of the source videos (Kinetics, UCF); the clip windows are in seconds
    crop_size: int = 112
    short_side: int = 128  # test: resize, then crop(s) of crop_size
    train_scales: tuple[int, int] = (128, 160)  # fine-tuning: random short side
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)


@dataclass
class ProbeConfig:
    """The ``eval`` section: a linear probe on frozen pooled features (tiny study)."""

    linear: bool = True
    knn: bool = True
    knn_k: int = 20
    knn_temperature: float = 0.07
    batch_size: int = 64
    split: Literal["val", "test"] = "val"  # "test" is read once, for the reported numbers
    # Also probe the encoder at its random initialisation (the floor: does pre-training help?).
    random_init_baseline: bool = False


@dataclass
class FinetuneConfig:
    """The ``finetune`` section: the pre-trained query backbone plus a new linear classifier,
    trained end to end and tested.

    ``dataset``: ``"moving_digits"`` (the tiny study, on ``label_fraction`` of the train
    videos, the same videos for every arm and seed) or ``"ucf101"`` / ``"hmdb51"`` under
    ``root`` (UCF: ``classInd.txt``, ``trainlist0N.txt``, ``testlist0N.txt`` and the class
    folders of videos; HMDB: ``splits/<class>_test_split<N>.txt`` and ``videos/<class>/``).
    """

    enabled: bool = True
    dataset: Literal["moving_digits", "ucf101", "hmdb51"] = "ucf101"
    root: str = ""
    split: int = 1
    label_fraction: float = 1.0
    label_seed: int = 0
    max_steps: int = 0  # 0: epochs * steps per epoch
    epochs: int = 100
    batch_size: int = 64  # global
    lr: float = 0.05
    optimizer: Literal["sgd", "adamw"] = "sgd"
    weight_decay: float = 1e-4
    dropout: float = 0.5
    num_clips: int = 10  # test views per video: clips x crops
    num_crops: int = 3
    num_workers: int = 8


@dataclass
class TaCoRecipeConfig:
    """TaCo pre-training, then the linear probe (tiny) and the fine-tune.

    ``data.dataset``: ``"moving_digits"`` (generated into the study's shared folder) or
    ``"kinetics"`` (``data.root`` holds ``train.csv``, Kinetics-style). ``data.batch_size`` is
    per process; 0 means ``global_batch_size // world_size``.
    """

    seed: int = 0
    model: str = "taco_r3d_18"
    global_batch_size: int = 256
    torch_threads: int = 0
    moco: MoCoConfig = field(default_factory=MoCoConfig)
    taco: TaCoConfig = field(default_factory=TaCoConfig)
    video: VideoConfig = field(default_factory=VideoConfig)
    moving_digits: MovingDigitsConfig = field(default_factory=MovingDigitsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)
    eval: ProbeConfig = field(default_factory=ProbeConfig)
    finetune: FinetuneConfig = field(default_factory=FinetuneConfig)


def paper_config() -> TaCoRecipeConfig:
    """R3D-18 TaCo on Kinetics-400 (``--data``), then UCF-101 split 1 (``--set finetune.root=``).

    Not the paper's verified schedule (its text was not readable here): see the module doc."""
    return TaCoRecipeConfig(
        seed=0,
        model="taco_r3d_18",
        global_batch_size=256,
        moco=MoCoConfig(dim=128, queue_size=65536, momentum=0.999, temperature=0.2, mlp=True),
        taco=TaCoConfig(),
        video=VideoConfig(),
        trainer=TrainerConfig(
            max_steps=200 * KINETICS400_TRAIN_VIDEOS // 256,
            checkpoint_every=KINETICS400_TRAIN_VIDEOS // 256,
            keep_checkpoints=2,
            log_every=50,
        ),
        optim=OptimConfig(
            name="sgd", lr=0.03, momentum=0.9, weight_decay=1e-4, schedule="cosine", warmup_steps=0
        ),
        data=DataConfig(dataset="kinetics", root="", batch_size=0, num_workers=8, image_size=112),
        eval=ProbeConfig(linear=False, knn=False),
        finetune=FinetuneConfig(dataset="ucf101"),
    )


def paper_hmdb51_config() -> TaCoRecipeConfig:
    """The paper recipe fine-tuned on HMDB-51 split 1 (51.6 top-1 in the paper)."""
    cfg = paper_config()
    cfg.finetune.dataset = "hmdb51"
    return cfg


def tiny_config() -> TaCoRecipeConfig:
    """TaCo on moving digits (5 digits x 4 directions) with a narrow R3D-10, CPU-sized.

    The protocol (README): 4-frame 32 px clips, batch 32 in 2 shuffle-BN groups, 300 steps of
    AdamW; the linear probe on frozen centre clips of all train videos, and a fine-tune of the
    whole network on 10% of the train labels; val for choices, test read once.
    """
    return TaCoRecipeConfig(
        seed=0,
        model="taco_r3d_narrow",
        global_batch_size=32,
        torch_threads=1,
        moco=MoCoConfig(
            dim=64, queue_size=1024, momentum=0.99, temperature=0.1, mlp=True, bn_splits=2
        ),
        taco=TaCoConfig(crop_scale=(0.5, 1.0), jitter=0.4, flip=False, speeds=(1, 2, 4)),
        video=VideoConfig(
            num_frames=4,
            sampling_rate=1,
            fps=8.0,
            crop_size=32,
            short_side=32,
            train_scales=(32, 32),
        ),
        moving_digits=MovingDigitsConfig(
            num_videos_per_class=30,
            num_directions=4,
            digits=(0, 1, 2, 3, 4),
            num_frames=16,
            size=32,
            speed=2,
            val_fraction=0.2,
            test_fraction=0.2,
        ),
        trainer=tiny_trainer(300),
        optim=tiny_adamw(2e-3),
        data=DataConfig(
            dataset="moving_digits", root="", batch_size=0, num_workers=1, image_size=32
        ),
        # The choices ran with eval.split=val; the reported run reads test once.
        eval=ProbeConfig(linear=True, knn=True, knn_k=20, split="test"),
        finetune=FinetuneConfig(
            dataset="moving_digits",
            label_fraction=0.1,
            max_steps=150,
            batch_size=16,
            lr=2e-3,
            optimizer="adamw",
            weight_decay=0.05,
            dropout=0.0,
            num_clips=1,
            num_crops=1,
            num_workers=0,
        ),
    )


# Pre-training lr per arm, chosen on val at seed 0 from {1e-3, 2e-3, 4e-3} by the mean of the
# val linear-probe and 10%-fine-tune top-1 (the README has the grid's numbers).
TINY_ARMS = {
    "moco": (
        "taco.transformations=[]", "taco.heads=false", "eval.random_init_baseline=true",
        "optim.lr=4e-3",
    ),
    "temporal_aug": ("taco.heads=false", "optim.lr=4e-3"),
    "taco": ("optim.lr=4e-3",),
    "heads_only": ("taco.contrastive=false", "optim.lr=2e-3"),
}  # fmt: skip


def tiny_study() -> Study:
    """The paper's question on moving digits: four arms x seeds 0-2, same steps and batch.

    Claims (test split, 3 seeds): temporal augmentation alone does not beat spatial-only video
    MoCo (the paper's motivating observation), and TaCo beats it, in the linear probe and in
    the 10%-label fine-tune.
    """
    from paperzoo.train.study import Arm, Claim, Study

    arms = (
        Arm("moco", TINY_ARMS["moco"], description="(a) video MoCo, spatial augmentation only"),
        Arm("temporal_aug", TINY_ARMS["temporal_aug"],
            description="(b) + the temporal transformations as augmentation only"),
        Arm("taco", TINY_ARMS["taco"], description="(c) TaCo: + one prediction head each"),
        Arm("heads_only", TINY_ARMS["heads_only"],
            description="(d) the prediction heads alone, no contrastive loss"),
    )  # fmt: skip
    claims = []
    for metric, what in (("linear_top1", "linear probe"), ("finetune_top1", "10% fine-tune")):
        claims += [
            Claim(f"temporal augmentation alone does not beat video MoCo ({what})",
                  metric=metric, arm="temporal_aug", baseline="moco", rule="not_better"),
            Claim(f"TaCo beats video MoCo ({what})",
                  metric=metric, arm="taco", baseline="moco", rule="better_mean"),
        ]  # fmt: skip
    return Study(
        arms=arms,
        seeds=(0, 1, 2),
        metrics=("linear_top1", "finetune_top1", "knn_top1", "linear_direction_acc",
                 "finetune_direction_acc", "random_init_linear_top1"),
        claims=tuple(claims),
    )  # fmt: skip
