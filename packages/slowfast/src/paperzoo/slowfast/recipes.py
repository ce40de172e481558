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
widths train with the same budget and seeds (:func:`tiny_study`, 3 seeds); test direction
accuracy is the claim's metric.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.train.study import Arm, Claim, Study
from paperzoo.train.video_config import (
    MovingDigitsConfig,
    VideoClipConfig,
    tiny_adamw,
    tiny_trainer,
)

__all__ = [
    "MovingDigitsConfig",
    "SlowFastModelConfig",
    "SlowFastRecipeConfig",
    "VideoClipConfig",
    "paper_config",
    "tiny_config",
    "tiny_study",
]


@dataclass
class SlowFastModelConfig:
    """The ``slowfast`` section: which model and its training-time switches."""

    model: str = "slowfast_r50"  # a factory of paperzoo.slowfast.model
    num_classes: int = 400
    dropout: float = 0.5  # MODEL.DROPOUT_RATE
    zero_init_final_norm: bool = True  # RESNET.ZERO_INIT_FINAL_BN
    norm_weight_decay: float = 0.0  # BN.WEIGHT_DECAY
    label_smoothing: float = 0.0


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
    # 5 digits x 4 directions, 30 videos per class: 18 train, 6 val, 6 test; 16 frames of 64^2.
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
        slowfast=SlowFastModelConfig(model="slowfast_tiny", num_classes=0, dropout=0.0),
        video=VideoClipConfig(
            num_frames=16,
            num_ensemble_views=1,
            num_spatial_crops=1,
            precise_bn_batches=0,
            eval_batch_size=32,
        ),
        moving_digits=MovingDigitsConfig(),
        trainer=tiny_trainer(400, log_every=50),
        optim=tiny_adamw(2e-3),
        data=DataConfig(dataset="moving_digits", root="", batch_size=16, num_workers=0),
    )


def tiny_study() -> Study:
    """SlowFast vs Slow-only of the same widths, 3 seeds; the claim is on test direction accuracy."""
    return Study(
        arms=(
            Arm("slowfast", ("slowfast.model=slowfast_tiny",),
                description="slowfast_tiny: Slow (4 frames, 8 channels) + Fast (16 frames, 2)"),
            Arm("slow", ("slowfast.model=slow_tiny",),
                description="slow_tiny: the Slow pathway alone, same widths"),
        ),
        seeds=(0, 1, 2),
        metrics=("top1", "val_direction_acc"),
        claims=(
            Claim("SlowFast beats Slow-only on motion direction (test direction accuracy)",
                  metric="direction_acc", arm="slowfast", baseline="slow",
                  rule="better_all_seeds"),
        ),
    )  # fmt: skip
