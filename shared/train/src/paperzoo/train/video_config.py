"""Config sections of the video-classification task, shared by the video papers' recipes.

Torch-free (recipes import it, and ``paperzoo info`` imports recipes to print their fields).
The procedure these sections drive is :mod:`paperzoo.train.classification`; the data is
:func:`paperzoo.data.datasets.kinetics_lists` (paper recipes) or
:func:`paperzoo.data.synthetic.moving_digits_splits` (tiny recipes).

- :class:`VideoClipConfig`, the ``video`` section: PySlowFast's ``DATA`` / ``TEST`` / ``BN``
  fields (clip sampling, crops, the multi-view test, precise BN). The defaults are
  SLOWFAST_8x8_R50's; each recipe sets its own.
- :class:`MovingDigitsConfig`, the ``moving_digits`` section of a tiny recipe: the arguments
  of :func:`paperzoo.data.synthetic.write_moving_digits`, with train/val/test fractions.
- :func:`tiny_trainer` and :func:`tiny_adamw`: the CPU trainer and optimizer sections the tiny
  video recipes share (checkpoints every 100 steps, so a killed study resumes mid-cell).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from paperzoo.core.config import OptimConfig, TrainerConfig

__all__ = [
    "KINETICS_MEAN",
    "KINETICS_STD",
    "MovingDigitsConfig",
    "VideoClipConfig",
    "tiny_adamw",
    "tiny_trainer",
]

KINETICS_MEAN = (0.45, 0.45, 0.45)  # PySlowFast DATA.MEAN / DATA.STD
KINETICS_STD = (0.225, 0.225, 0.225)


@dataclass
class VideoClipConfig:
    """The ``video`` section: clip sampling, crops, the multi-view test protocol, precise BN."""

    num_frames: int = 32  # DATA.NUM_FRAMES (SlowFast: the Fast pathway's)
    sampling_rate: int = 2  # DATA.SAMPLING_RATE (source frames between sampled frames)
    fps: float = 30.0  # frame rate the sampling rate refers to (Kinetics)
    train_crop_size: int = 224  # DATA.TRAIN_CROP_SIZE
    train_jitter_scales: tuple[int, int] = (256, 320)  # DATA.TRAIN_JITTER_SCALES
    test_crop_size: int = 256  # DATA.TEST_CROP_SIZE
    test_short_side: int = 256  # short side resized to before the test crops
    num_ensemble_views: int = 10  # TEST.NUM_ENSEMBLE_VIEWS: clips per video at test
    num_spatial_crops: int = 3  # TEST.NUM_SPATIAL_CROPS
    mean: tuple[float, float, float] = KINETICS_MEAN
    std: tuple[float, float, float] = KINETICS_STD
    precise_bn_batches: int = 200  # BN.NUM_BATCHES_PRECISE (0: off)
    eval_batch_size: int = 8  # per process, at test
    max_bad_fraction: float = 0.01  # unreadable videos tolerated before failing


@dataclass
class MovingDigitsConfig:
    """The ``moving_digits`` section of a tiny recipe (see ``write_moving_digits``)."""

    num_videos_per_class: int = 30
    num_directions: int = 4
    digits: tuple[int, ...] = (0, 1, 2, 3, 4)
    num_frames: int = 16  # frames per video (8 fps)
    size: int = 64  # canvas, pixels
    speed: int = 3  # pixels per frame
    val_fraction: float = 0.2  # of each class's videos, for choices
    test_fraction: float = 0.2  # of each class's videos, read once for the reported numbers
    data_seed: int = 0  # the videos are the same for every training seed

    def write_kwargs(self) -> dict[str, object]:
        """The arguments of ``write_moving_digits`` / ``moving_digits_splits``."""
        return dict(
            num_videos_per_class=self.num_videos_per_class, num_directions=self.num_directions,
            digits=tuple(self.digits), num_frames=self.num_frames, size=self.size,
            speed=self.speed, val_fraction=self.val_fraction, test_fraction=self.test_fraction,
            seed=self.data_seed,
        )  # fmt: skip


def tiny_trainer(max_steps: int, *, log_every: int = 25, **overrides: Any) -> TrainerConfig:
    """A tiny recipe's trainer: fp32 on the CPU, quiet (the study shows one progress line),
    a checkpoint every 100 steps (one kept)."""
    fields: dict[str, Any] = dict(
        max_steps=max_steps, checkpoint_every=100, keep_checkpoints=1, log_every=log_every,
        amp="off", device="cpu", progress=False, tensorboard=False,
    )  # fmt: skip
    return TrainerConfig(**{**fields, **overrides})


def tiny_adamw(lr: float = 2e-3, **overrides: Any) -> OptimConfig:
    """AdamW, weight decay 0.05, 20 warm-up steps then cosine: what converges in a tiny
    recipe's few hundred steps where the papers' SGD schedules barely leave chance."""
    fields: dict[str, Any] = dict(
        name="adamw", lr=lr, weight_decay=0.05, schedule="cosine", warmup_steps=20
    )
    return OptimConfig(**{**fields, **overrides})
