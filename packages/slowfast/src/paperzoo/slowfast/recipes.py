"""SlowFast recipes: typed configs for the ``paper`` (Kinetics-400) and ``tiny`` (moving digits) runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
stays free of torch); the runners are in :mod:`paperzoo.slowfast.reproduce`.

Paper recipe: PySlowFast's ``configs/Kinetics/SLOWFAST_8x8_R50.yaml`` (facebookresearch/
SlowFast): SlowFast R50, alpha 4, beta 1/8, fusion kernel 7; 32 frames sampled every 2 (at
30 fps) for the Fast pathway, 8 for the Slow; short side jittered in [256, 320], random 224²
crop and flip; SGD momentum 0.9, base lr 0.1 at batch 64 (scaled linearly with the global
batch), weight decay 1e-4 and none on BatchNorm, cosine schedule over 196 epochs with 34
warm-up epochs, dropout 0.5, zero-initialised last BN of every residual branch, precise BN over
200 batches before testing; test on 10 clips x 3 crops of 256² per video (30 views), softmax
scores averaged. Reference: 77.0 top-1 on Kinetics-400 (paper Table 2; the model zoo's
SLOWFAST_8x8_R50 gives 77.0 too).

Departures: PySlowFast warms up linearly from lr 0.01 (``WARMUP_START_LR``) to the cosine
curve; paperzoo's Trainer warms up linearly from 0 to the peak and then decays by cosine. The
head averages logits over positions (PyTorchVideo) where PySlowFast averages softmax scores at
test time; views are averaged as softmax scores in both.

Tiny recipe: the claim "SlowFast beats Slow-only on motion direction" on moving-digits videos
(real h264 mp4 files written into the run directory by
:func:`paperzoo.data.synthetic.write_moving_digits`; class = digit x direction, and a single
frame never tells the direction). A small SlowFast and the Slow-only network of the same
widths train with the same budget and seeds; direction accuracy is the claim's metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig

__all__ = [
    "MovingDigitsConfig",
    "SlowFastModelConfig",
    "SlowFastRecipeConfig",
    "VideoClipConfig",
    "paper_config",
    "tiny_config",
]

KINETICS_MEAN = (0.45, 0.45, 0.45)  # PySlowFast DATA.MEAN / DATA.STD
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass
class SlowFastModelConfig:
    """The ``slowfast`` section: which model and its training-time switches."""

    model: str = "slowfast_r50"  # a factory of paperzoo.slowfast.model
    baseline: str = ""  # trained with the same budget and seeds (tiny: "slow_tiny")
    num_classes: int = 400
    dropout: float = 0.5  # MODEL.DROPOUT_RATE
    zero_init_final_norm: bool = True  # RESNET.ZERO_INIT_FINAL_BN
    norm_weight_decay: float = 0.0  # BN.WEIGHT_DECAY
    label_smoothing: float = 0.0


@dataclass
class VideoClipConfig:
    """The ``video`` section: clip sampling, crops and the multi-view test protocol."""

    num_frames: int = 32  # DATA.NUM_FRAMES, Fast pathway; the Slow one takes num_frames / alpha
    sampling_rate: int = 2  # DATA.SAMPLING_RATE (source frames between sampled frames)
    fps: float = 30.0
    train_crop_size: int = 224  # DATA.TRAIN_CROP_SIZE
    train_jitter_scales: tuple[int, int] = (256, 320)  # DATA.TRAIN_JITTER_SCALES
    test_crop_size: int = 256  # DATA.TEST_CROP_SIZE
    num_ensemble_views: int = 10  # TEST.NUM_ENSEMBLE_VIEWS
    num_spatial_crops: int = 3  # TEST.NUM_SPATIAL_CROPS
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    precise_bn_batches: int = 200  # BN.NUM_BATCHES_PRECISE (0: off)
    eval_batch_size: int = 8
    max_bad_fraction: float = 0.01


@dataclass
class MovingDigitsConfig:
    """The ``moving_digits`` section (tiny recipe)."""

    num_videos_per_class: int = 24
    num_directions: int = 4
    digits: tuple[int, ...] = (0, 1, 2, 3, 4)
    num_frames: int = 16  # frames per video (8 fps); the Slow pathway sees num_frames / alpha
    size: int = 64
    speed: int = 3  # pixels per frame
    val_fraction: float = 0.25
    data_seed: int = 0  # the videos are the same for every training seed
    seeds: tuple[int, ...] = (0,)  # training seeds, run one after another (claim: 0,1,2)


@dataclass
class SlowFastRecipeConfig:
    """A SlowFast training run and its test.

    ``data.dataset``: ``"kinetics"`` (``data.root`` holds ``train.csv`` and ``val.csv``,
    Kinetics-style ``path label`` or ``path,start,end,label`` lists; ``--data`` sets it) or
    ``"moving_digits"`` (tiny; videos generated into the run directory). ``data.batch_size``
    is per process; 0 means ``global_batch_size // world_size``. ``slowfast.num_classes=0``
    takes the number of classes from the dataset. PySlowFast trains in fp32, hence
    ``trainer.amp="off"`` in the paper recipe; ``trainer.amp=bf16`` is faster on GPUs.
    """

    seed: int = 0
    global_batch_size: int = 64
    slowfast: SlowFastModelConfig = field(default_factory=SlowFastModelConfig)
    video: VideoClipConfig = field(default_factory=VideoClipConfig)
    moving_digits: MovingDigitsConfig = field(default_factory=MovingDigitsConfig)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)


def paper_config() -> SlowFastRecipeConfig:
    """SLOWFAST_8x8_R50 on Kinetics-400 (8 GPUs x 8 clips in the official run)."""
    return SlowFastRecipeConfig(
        seed=0,
        global_batch_size=64,
        slowfast=SlowFastModelConfig(model="slowfast_r50", num_classes=400, dropout=0.5),
        video=VideoClipConfig(),
        trainer=TrainerConfig(
            epochs=196,
            amp="off",
            checkpoint_every=1000,
            log_every=20,
        ),
        optim=OptimConfig(
            name="sgd",
            lr=0.1,
            base_batch=64,
            momentum=0.9,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_epochs=34.0,
        ),
        data=DataConfig(dataset="kinetics", root="", batch_size=0, num_workers=8, image_size=224),
    )


def tiny_config() -> SlowFastRecipeConfig:
    """SlowFast vs Slow-only of the same widths on moving digits, on a CPU in minutes."""
    return SlowFastRecipeConfig(
        seed=0,
        global_batch_size=16,
        slowfast=SlowFastModelConfig(
            model="slowfast_tiny", baseline="slow_tiny", num_classes=0, dropout=0.0
        ),
        video=VideoClipConfig(
            num_frames=16,
            num_ensemble_views=1,
            num_spatial_crops=1,
            precise_bn_batches=0,
            eval_batch_size=32,
        ),
        moving_digits=MovingDigitsConfig(),
        trainer=TrainerConfig(
            max_steps=400,
            checkpoint_every=0,
            log_every=50,
            amp="off",
            device="cpu",
            progress=False,
            tensorboard=False,
        ),
        optim=OptimConfig(
            name="adamw", lr=2e-3, weight_decay=0.05, schedule="cosine", warmup_steps=20
        ),
        data=DataConfig(dataset="moving_digits", root="", batch_size=16, num_workers=0),
    )
