"""MvPL recipes: typed configs for the ``paper`` runs (Kinetics-400 1% / 10%, UCF-101, HMDB-51)
and the ``tiny`` study (moving digits on static clutter, 10% labels).

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
must stay free of torch); the runner is :mod:`paperzoo.mvpl.reproduce`.

Paper recipe. What the paper (arXiv 2104.00682) fixes, as far as it could be read here (the
abstract and Figure 2's caption, see the README's Sources): one model shared across RGB and
motion views; pseudo-labels from the weak views' aggregated predictions supervise every view's
strong version; Kinetics-400 with 1% and 10% of the labels, UCF-101 and HMDB-51. Unverified
third-party details: Slow-only R50 8x8, the views RGB + temporal gradient + flow, the mean of
the weak views' softmax, threshold 0.3, RandAugment + Cutout. FixMatch defaults where nothing
else is known: mu = 7 unlabelled clips per labelled one, lambda_u = 1. Our choice (PySlowFast's
SLOW_8x8_R50 schedule): SGD momentum 0.9, weight decay 1e-4, base lr 0.1 at a global
(unlabelled) batch of 64 scaled linearly, cosine with a 34-epoch warm-up, 196 epochs over the
unlabelled set, 8 frames every 8 at 30 fps, 224 crops from a 256 short side, 10 x 3 test views
of the RGB view, precise BN on RGB clips.

Tiny recipe: :func:`tiny_config`, :func:`tiny_study`. Its protocol is in the package README.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.mvpl.views import FlowSettings
from paperzoo.train.study import Arm, Claim, Study
from paperzoo.train.video_config import (
    MovingDigitsConfig,
    VideoClipConfig,
    tiny_adamw,
    tiny_trainer,
)

__all__ = [
    "FlowSettings",
    "MovingDigitsConfig",
    "MvPLConfig",
    "MvPLRecipeConfig",
    "VideoClipConfig",
    "paper_1pct_config",
    "paper_config",
    "paper_hmdb51_config",
    "paper_ucf101_config",
    "tiny_config",
    "tiny_study",
]

KINETICS400_TRAIN_VIDEOS = 240_436  # only used for the checkpoint interval


@dataclass
class MvPLConfig:
    """The ``mvpl`` section: the model, the views and the semi-supervised objective."""

    model: Literal["mvpl_slow_r50", "mvpl_r3d_18", "mvpl_r3d_tiny"] = "mvpl_slow_r50"
    num_classes: int = 400
    # The training views; "rgb" first (the test view). ("rgb",) is FixMatch on RGB.
    views: tuple[str, ...] = ("rgb", "tg", "flow")
    semi: bool = True  # False: the supervised baseline on the labelled clips only
    label_fraction: float = 0.1  # of each class's training videos, drawn from the seed
    threshold: float = 0.3  # confidence of the aggregated pseudo-label
    lambda_u: float = 1.0  # weight of the unlabelled loss (FixMatch)
    mu: int = 7  # unlabelled clips per labelled clip in a batch (FixMatch)
    randaugment_ops: int = 2
    randaugment_magnitude: int = 9  # of torchvision's 31 bins
    cutout: float = 0.5  # Cutout square side, fraction of the short side
    tg_std: float = 0.225  # temporal gradients (in [0, 1] pixel units) are divided by this
    flow_scale: float = 20.0  # flow (pixels) is divided by this
    dropout: float = 0.5
    flip: bool = True  # weak augmentation: horizontal flip (flow x negated)
    max_shift: int = 0  # weak augmentation: torus roll of up to this many px (synthetic videos)
    tiny_width: int = 16  # mvpl_r3d_tiny's stem width


@dataclass
class MvPLRecipeConfig:
    """An MvPL (or baseline) training run followed by a multi-view test of the RGB view.

    ``data.dataset``: ``"kinetics"`` (``data.root`` holds Kinetics-style ``train.csv`` and
    ``val.csv``), ``"ucf101"`` (``data.root/ucfTrainTestlist/{classInd,trainlist01,
    testlist01}.txt`` and the videos under ``data.root/videos``), ``"hmdb51"``
    (``data.root/testTrainMulti_7030_splits/*_test_split1.txt``, videos under
    ``data.root/videos/<class>/``) or ``"moving_digits"`` (generated, tiny). ``data.batch_size``
    is the unlabelled batch per process (0: ``global_batch_size // world_size``).
    """

    seed: int = 0
    global_batch_size: int = 64
    torch_threads: int = 0
    short_side: int = 256  # frames (and the flow) are resized to this before cropping (0: as is)
    mvpl: MvPLConfig = field(default_factory=MvPLConfig)
    # cv2.calcOpticalFlowFarneback's settings; the runner sets flow.frame_gap to
    # video.sampling_rate and flow.short_side to short_side (the flow between sampled frames,
    # at the frames' size).
    flow: FlowSettings = field(default_factory=FlowSettings)
    flow_cache_dir: str = ""  # default: the run's (a study's shared) flow_cache folder
    video: VideoClipConfig = field(default_factory=lambda: _paper_video())
    moving_digits: MovingDigitsConfig = field(default_factory=lambda: _tiny_moving_digits())
    background: Literal["black", "texture", "clutter"] = "clutter"
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)


def _paper_video() -> VideoClipConfig:
    return VideoClipConfig(
        num_frames=8, sampling_rate=8, fps=30.0, train_crop_size=224,
        train_jitter_scales=(256, 256), test_crop_size=256, test_short_side=256,
        num_ensemble_views=10, num_spatial_crops=3, precise_bn_batches=200,
    )  # fmt: skip


def _tiny_moving_digits() -> MovingDigitsConfig:
    """3 digits x 4 directions, 40 videos per class (32 train, 4 val, 4 test), 32^2, 16 frames."""
    return MovingDigitsConfig(
        num_videos_per_class=40, digits=(0, 1, 2), size=32, num_frames=16, speed=2,
        val_fraction=0.1, test_fraction=0.1,
    )  # fmt: skip


def _paper(dataset: str, label_fraction: float, num_classes: int, videos: int) -> MvPLRecipeConfig:
    batch = 64
    return MvPLRecipeConfig(
        seed=0,
        global_batch_size=batch,
        mvpl=MvPLConfig(
            model="mvpl_slow_r50", num_classes=num_classes, label_fraction=label_fraction
        ),
        video=_paper_video(),
        trainer=TrainerConfig(
            epochs=196,
            max_steps=0,
            checkpoint_every=max(1, videos // batch),
            keep_checkpoints=2,
            log_every=50,
            sync_bn=False,
        ),
        optim=OptimConfig(
            name="sgd",
            lr=0.1,
            base_batch=batch,
            momentum=0.9,
            weight_decay=1e-4,
            schedule="cosine",
            warmup_epochs=34.0,
            min_lr=0.0,
        ),
        data=DataConfig(dataset=dataset, root="", batch_size=0, num_workers=8, image_size=224),
    )


def paper_config() -> MvPLRecipeConfig:
    """MvPL, Slow-only R50 8x8, Kinetics-400 with 10% of the labels (--data DIR)."""
    return _paper("kinetics", 0.1, 400, KINETICS400_TRAIN_VIDEOS)


def paper_1pct_config() -> MvPLRecipeConfig:
    """MvPL, Slow-only R50 8x8, Kinetics-400 with 1% of the labels (--data DIR)."""
    return _paper("kinetics", 0.01, 400, KINETICS400_TRAIN_VIDEOS)


def paper_ucf101_config() -> MvPLRecipeConfig:
    """MvPL on UCF-101 split 1 from scratch, every training label (as the paper's comparison to
    self-supervised methods; unverified: set mvpl.label_fraction for a semi-supervised split)."""
    return _paper("ucf101", 1.0, 101, 9537)


def paper_hmdb51_config() -> MvPLRecipeConfig:
    """MvPL on HMDB-51 split 1 from scratch, every training label (see paper_ucf101_config)."""
    return _paper("hmdb51", 1.0, 51, 3570)


def tiny_config() -> MvPLRecipeConfig:
    """MvPL from scratch on moving digits over static clutter, 10% labels, a 2-core CPU.

    Departures from the paper recipe, all forced by size: 32x32 videos of 3 digits x 4
    directions (12 classes, 32 training videos each, 3 of them labelled), decoded once into
    memory; the narrow R3D (width 16) instead of Slow-only R50; 4-frame clips every 2nd frame;
    weak augmentation a torus shift of up to 4 px (no flip: it would swap left and right);
    AdamW instead of SGD; a batch of 8 labelled + 24 unlabelled clips (mu 3); RGB test view,
    1 clip per video; precise BN on RGB training clips.
    """
    return MvPLRecipeConfig(
        seed=0,
        global_batch_size=24,
        torch_threads=1,
        short_side=0,
        mvpl=MvPLConfig(
            model="mvpl_r3d_tiny",
            num_classes=12,
            views=("rgb", "tg", "flow"),
            semi=True,
            label_fraction=0.1,
            threshold=0.3,
            lambda_u=1.0,
            mu=3,
            dropout=0.0,
            flip=False,
            max_shift=4,
            flow_scale=4.0,
            randaugment_magnitude=9,
            cutout=0.5,
        ),
        flow=FlowSettings(winsize=7, levels=2, clip=8.0),
        video=VideoClipConfig(
            num_frames=4,
            sampling_rate=2,
            fps=8.0,
            train_crop_size=32,
            train_jitter_scales=(32, 32),
            test_crop_size=32,
            test_short_side=32,
            num_ensemble_views=1,
            num_spatial_crops=1,
            precise_bn_batches=20,
            eval_batch_size=64,
        ),
        moving_digits=_tiny_moving_digits(),
        background="clutter",
        trainer=tiny_trainer(200, log_every=16),
        optim=tiny_adamw(2e-3),
        data=DataConfig(
            dataset="moving_digits", root="", batch_size=0, num_workers=0, image_size=32
        ),
    )


def tiny_study() -> Study:
    """Supervised (10% labels) vs FixMatch on RGB vs MvPL (RGB + TG + flow), 3 seeds; test top-1
    of the RGB view. Each arm's threshold and Cutout size were chosen on val (seed 0) from the
    same grid, threshold {0.3, 0.7} x Cutout {0.5, 0.25} (see the README's protocol)."""
    return Study(
        arms=(
            Arm("supervised", ("mvpl.semi=false", "mvpl.views=rgb"),
                description="the labelled 10% only, RGB"),
            Arm("fixmatch_rgb", ("mvpl.views=rgb", "mvpl.threshold=0.3", "mvpl.cutout=0.25"),
                description="FixMatch on the RGB view alone"),
            Arm("mvpl", ("mvpl.threshold=0.7", "mvpl.cutout=0.5"),
                description="MvPL: RGB + temporal gradient + flow, one model"),
        ),
        seeds=(0, 1, 2),
        metrics=("val_top1", "pl_precision", "pl_coverage"),
        claims=(
            Claim("MvPL beats the supervised baseline", metric="top1", arm="mvpl",
                  baseline="supervised", rule="better_all_seeds"),
            Claim("MvPL beats FixMatch on RGB alone", metric="top1", arm="mvpl",
                  baseline="fixmatch_rgb", rule="better_all_seeds"),
        ),
    )  # fmt: skip
