"""MViT recipes: typed configs for the ``paper`` (Kinetics-400) and ``tiny`` (CPU) runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
stays free of torch); the runners are in :mod:`paperzoo.mvit.reproduce`.

``paper``: MViT-B 16x4 on Kinetics-400 with the official hyper-parameters, PySlowFast
``configs/Kinetics/MVIT_B_16x4_CONV.yaml``: AdamW, base lr 1e-4 (PySlowFast scales it by the
number of machines, ``BASE_LR_SCALE_NUM_SHARDS``; ``TRAIN.BATCH_SIZE: 16`` is PySlowFast's
batch per machine of 8 GPUs), weight decay 0.05 with none on 1-D parameters
(``ZERO_WD_1D_PARAM``), 200 epochs, 30 warm-up epochs from 1e-6, then cosine to 1e-6, gradient
clipping at L2 norm 1.0; 16 frames at stride 4, random-resized crop 224 (scale 0.08-1, aspect
0.75-1.33), RandAugment ``rand-m7-n4-mstd0.5-inc1``, random erasing 0.25, mixup 0.8 / cutmix 1.0
(switch 0.5) with label smoothing 0.1, each video sampled twice per epoch (``AUG.NUM_SAMPLE:
2``); drop path 0.2, head dropout 0.5. Test: 5 temporal clips x 1 spatial crop (the paper's
"70.5 x 5" views; the yaml leaves ``TEST.NUM_ENSEMBLE_VIEWS`` at PySlowFast's default of 10).
Reference: 78.4 top-1 (paper Table 3).

``tiny``: the claim "MViT beats a single-scale ViT of similar compute", trained from scratch, on
CPU in minutes, on the moving-digits videos of :mod:`paperzoo.data.synthetic` (digit x direction
classes; the direction is only visible across frames), 2,400 training clips. Both models have
6 blocks and the same recipe; the MViT starts on 4x8x8 fine tokens at width 32 and pools q/k/v
while doubling its width twice, the ViT keeps 64 coarse tokens (2x8x8 patches) at one width,
76, chosen so that the two have the same MACs per clip. :func:`tiny_study` declares the arms
(3 seeds each) and the claim; each runner call trains and tests one cell.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.train.study import Arm, Claim, Study

__all__ = [
    "AugConfig",
    "MViTRecipeConfig",
    "MixupConfig",
    "ModelConfig",
    "TestConfig",
    "TinyConfig",
    "VideoDataConfig",
    "paper_config",
    "tiny_config",
    "tiny_study",
]


@dataclass
class ModelConfig:
    """Which registered model to train, and its training-time regularisation."""

    name: str = "mvit_base_16x4"
    num_classes: int = 400
    drop_path_rate: float = 0.2
    head_dropout: float = 0.5


@dataclass
class VideoDataConfig(DataConfig):
    """Clips: ``root`` holds ``train.csv`` and ``val.csv`` (Kinetics-style ``path label`` lists,
    paths relative to the list's folder)."""

    dataset: str = "kinetics400"
    batch_size: int = 2  # per process (PySlowFast: 16 per machine of 8 GPUs)
    num_workers: int = 8
    num_frames: int = 16
    sampling_rate: int = 4
    target_fps: float = 30.0  # clip duration = num_frames * sampling_rate / target_fps seconds
    train_crop_size: int = 224
    test_crop_size: int = 224
    test_short_side: int = 224  # PySlowFast resizes the short side to TEST_CROP_SIZE
    crop_scale: tuple[float, float] = (0.08, 1.0)  # TRAIN_JITTER_SCALES_RELATIVE
    crop_aspect: tuple[float, float] = (0.75, 1.3333)  # TRAIN_JITTER_ASPECT_RELATIVE
    mean: tuple[float, float, float] = (0.45, 0.45, 0.45)
    std: tuple[float, float, float] = (0.225, 0.225, 0.225)
    num_sample: int = 2  # AUG.NUM_SAMPLE: each video appears this many times per epoch


@dataclass
class AugConfig:
    """Clip augmentation (PySlowFast ``AUG``)."""

    enabled: bool = True
    # timm's "rand-m7-n4-mstd0.5-inc1"; torchvision's RandAugment(num_ops=4, magnitude=7) is used
    # (one draw per clip), without timm's magnitude noise (mstd) and increasing-severity ops.
    rand_augment_ops: int = 4
    rand_augment_magnitude: int = 7
    random_erasing: float = 0.25  # RE_PROB (RE_MODE pixel: per-pixel random values)
    flip: bool = True


@dataclass
class MixupConfig:
    """Mixup/CutMix with label smoothing (PySlowFast ``MIXUP``)."""

    enabled: bool = True
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    prob: float = 1.0
    switch_prob: float = 0.5
    label_smoothing: float = 0.1


@dataclass
class TestConfig:
    """Multi-view testing: softmax scores averaged over ``num_clips`` x ``num_crops`` views."""

    num_clips: int = 5
    num_crops: int = 1
    batch_size: int = 4


@dataclass
class MViTRecipeConfig:
    """The ``paper`` recipe (defaults: MViT-B 16x4 on Kinetics-400)."""

    seed: int = 0
    model: ModelConfig = field(default_factory=ModelConfig)
    data: VideoDataConfig = field(default_factory=VideoDataConfig)
    aug: AugConfig = field(default_factory=AugConfig)
    mixup: MixupConfig = field(default_factory=MixupConfig)
    test: TestConfig = field(default_factory=TestConfig)
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            epochs=200, clip_grad_norm=1.0, checkpoint_every=5000, log_every=50, amp="auto"
        )
    )
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw",
            lr=1e-4,
            base_batch=16,  # lr scales with global batch / 16 (1e-4 per machine of 16 clips)
            betas=(0.9, 0.999),
            weight_decay=0.05,
            schedule="cosine",
            warmup_epochs=30.0,
            min_lr=1e-6,
            exclude_bias_norm=True,
        )
    )


def paper_config() -> MViTRecipeConfig:
    """MViT-B 16x4, Kinetics-400, official hyper-parameters (see the module docstring)."""
    return MViTRecipeConfig()


@dataclass
class TinyDataConfig(DataConfig):
    """The moving-digits videos (written under ``root``; when empty, in the study's shared
    folder, else ``OUT/moving_digits``): 5 digits x 4 directions = 20 classes."""

    dataset: str = "moving_digits"
    batch_size: int = 32
    num_frames: int = 8
    image_size: int = 32
    digits: tuple[int, ...] = (0, 1, 2, 3, 4)
    videos_per_class: int = 150  # 10% val, 10% test, 80% (120 per class, 2,400) train
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    num_directions: int = 4
    speed: int = 3
    data_seed: int = 0  # the same videos for every training seed


@dataclass
class TinyConfig:
    """The ``tiny`` recipe: one cell (a model and a seed) of the MViT vs ViT study.

    ``eval_test=false`` skips the test split (for choosing hyper-parameters on val only).
    """

    seed: int = 0
    model: str = "mvit_tiny_video"
    data: TinyDataConfig = field(default_factory=TinyDataConfig)
    label_smoothing: float = 0.1
    eval_test: bool = True
    torch_threads: int = 0  # 0: torch's default
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_steps=200,
            clip_grad_norm=1.0,
            checkpoint_every=100,
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


# Chosen on val (seed 0, the same lr grid for both arms; see the README's protocol).
TINY_LR = {"mvit": 1e-3, "vit": 1e-3}


def tiny_study() -> Study:
    """MViT vs the single-scale ViT of matched MACs, 3 seeds, test top-1."""
    return Study(
        arms=(
            Arm("mvit", ("model=mvit_tiny_video", f"optim.lr={TINY_LR['mvit']}"),
                description="mvit_tiny_video: pooling attention, widths 32-64-128"),
            Arm("vit", ("model=vit_tiny_video", f"optim.lr={TINY_LR['vit']}"),
                description="vit_tiny_video: no pooling, 2x8x8 patches, width 76"),
        ),
        seeds=(0, 1, 2),
        metrics=("val_top1", "mmacs", "params_m"),
        claims=(
            Claim("MViT beats a single-scale ViT of matched compute, both trained from scratch",
                  metric="top1", arm="mvit", baseline="vit", rule="better_mean"),
        ),
    )  # fmt: skip
