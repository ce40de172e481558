"""X3D recipes: typed configs for the ``paper`` (Kinetics-400) and ``tiny`` (moving digits) runs.

Only dataclasses live here (``paperzoo info`` imports this module to print the fields, so it
must stay free of torch); the runners are in :mod:`paperzoo.pytorchvideo.reproduce`.

Paper recipe: PySlowFast's official Kinetics-400 configs (facebookresearch/SlowFast
``configs/Kinetics/X3D_{XS,S,M,L}.yaml``), which PyTorchVideo's model-zoo X3D checkpoints
reproduce: SGD momentum 0.9, weight decay 5e-5 (none on BatchNorm), cosine schedule with a
35-epoch linear warm-up, 300 epochs (256 for L), base lr 0.1 at batch 128 (0.05 at batch 64
for L) scaled linearly with the global batch, dropout 0.5 before the classifier, zero-init of
each residual branch's last BN, precise BN over 200 batches before testing. Clips: XS 4 frames
sampled every 12, S 13x6, M 16x5, L 16x5 (at 30 fps); train crop 160/160/224/312 from a short
side jittered in [182, 228] / [182, 228] / [256, 320] / [356, 446]; test 10 clips x 3 crops of
182/182/256/356 (30 views). PyTorchVideo's model zoo reports Kinetics-400 top-1 (30 views)
XS 69.12, S 73.33, M 75.94, L 77.44.

Departures (all in the Trainer's scheduler): PySlowFast warms up linearly from lr 0.01
(``WARMUP_START_LR``); paperzoo's Trainer warms up linearly from 0.

Tiny recipe: X3D-XS from scratch on moving-digits videos (real h264 mp4 files written into the
run directory by :func:`paperzoo.data.synthetic.write_moving_digits`): class = digit x motion
direction, which a single frame cannot tell. Against chance and against a frame-averaged 2D
baseline (X3D-XS with temporal kernels 1, same budget): :func:`tiny_study`, 3 seeds. See the
package README for the measured numbers.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.train.study import Arm, Claim, Study
from paperzoo.train.video_config import (
    MovingDigitsConfig,
    VideoClipConfig,
    tiny_adamw,
    tiny_trainer,
)

__all__ = [
    "KINETICS400_TRAIN_VIDEOS",
    "MovingDigitsConfig",
    "VideoClipConfig",
    "X3DConfig",
    "X3DRecipeConfig",
    "paper_config",
    "paper_l_config",
    "paper_m_config",
    "paper_s_config",
    "tiny_config",
    "tiny_study",
]

# Kinetics-400 train videos as commonly available (~240k); only used to print epoch estimates.
KINETICS400_TRAIN_VIDEOS = 240_436


@dataclass
class X3DConfig:
    """The ``x3d`` section: which model and its training-time switches."""

    model: Literal["x3d_xs", "x3d_s", "x3d_m", "x3d_l", "efficient_x3d_xs", "efficient_x3d_s"] = (
        "x3d_xs"
    )
    num_classes: int = 400
    dropout: float = 0.5
    zero_init_final_norm: bool = True  # PySlowFast RESNET.ZERO_INIT_FINAL_BN
    label_smoothing: float = 0.0
    norm_weight_decay: float = 0.0  # PySlowFast BN.WEIGHT_DECAY
    channels_last: bool = True  # train in channels_last_3d memory format (faster on CPU and GPU)
    # The tiny recipe's baseline: X3D-XS with temporal kernels 1 on each frame, logits averaged.
    frame_averaged_2d: bool = False


def _tiny_moving_digits() -> MovingDigitsConfig:
    """3 digits x 4 directions, 36 videos per class: 24 train, 6 val, 6 test; 16 frames of 32^2."""
    return MovingDigitsConfig(
        num_videos_per_class=36, digits=(0, 1, 2), size=32, val_fraction=0.167,
        test_fraction=0.167,
    )  # fmt: skip


def _paper_video(model: str) -> VideoClipConfig:
    frames, rate, crop, jitter, test_crop, *_ = _PAPER_SIZES[model]
    return VideoClipConfig(
        num_frames=frames, sampling_rate=rate, fps=30.0, train_crop_size=crop,
        train_jitter_scales=jitter, test_crop_size=test_crop, test_short_side=test_crop,
        num_ensemble_views=10, num_spatial_crops=3, precise_bn_batches=200,
    )  # fmt: skip


# Per size: (frames, sampling rate, train crop, jitter, test crop, batch, base lr, epochs).
_PAPER_SIZES = {
    "x3d_xs": (4, 12, 160, (182, 228), 182, 128, 0.1, 300),
    "x3d_s": (13, 6, 160, (182, 228), 182, 128, 0.1, 300),
    "x3d_m": (16, 5, 224, (256, 320), 256, 128, 0.1, 300),
    "x3d_l": (16, 5, 312, (356, 446), 356, 64, 0.05, 256),
}


@dataclass
class X3DRecipeConfig:
    """An X3D training run followed by a multi-view test.

    ``data.dataset``: ``"kinetics"`` (``data.root`` holds ``train.csv`` and ``val.csv``,
    Kinetics-style ``path label`` or ``path,start,end,label`` lists; ``--data`` sets it) or
    ``"moving_digits"`` (generated into the run directory). ``data.batch_size`` is per process;
    0 means ``global_batch_size // world_size``.
    """

    seed: int = 0
    global_batch_size: int = 128
    # torch intra-op threads per process (0: torch's default). The tiny recipe uses 1 plus
    # one decoding worker, which keeps a 2-core machine busy without oversubscribing it.
    torch_threads: int = 0
    x3d: X3DConfig = field(default_factory=X3DConfig)
    video: VideoClipConfig = field(default_factory=lambda: _paper_video("x3d_xs"))
    moving_digits: MovingDigitsConfig = field(default_factory=_tiny_moving_digits)
    trainer: TrainerConfig = field(default_factory=TrainerConfig)
    optim: OptimConfig = field(default_factory=OptimConfig)
    data: DataConfig = field(default_factory=DataConfig)


def _paper(model: str) -> X3DRecipeConfig:
    *_, crop, _jitter, _test_crop, batch, lr, epochs = _PAPER_SIZES[model]
    return X3DRecipeConfig(
        seed=0,
        global_batch_size=batch,
        x3d=X3DConfig(model=model, num_classes=400, dropout=0.5, zero_init_final_norm=True),  # type: ignore[arg-type]
        video=_paper_video(model),
        trainer=TrainerConfig(
            epochs=epochs,
            max_steps=0,
            checkpoint_every=max(1, KINETICS400_TRAIN_VIDEOS // batch),  # about once per epoch
            keep_checkpoints=2,
            log_every=50,
            sync_bn=False,
        ),
        optim=OptimConfig(
            name="sgd",
            lr=lr,
            base_batch=batch,  # BASE_LR is for this global batch; scaled linearly otherwise
            momentum=0.9,
            weight_decay=5e-5,
            schedule="cosine",
            warmup_epochs=35.0,
            min_lr=0.0,
        ),
        data=DataConfig(dataset="kinetics", root="", batch_size=0, num_workers=8, image_size=crop),
    )


def paper_config() -> X3DRecipeConfig:
    """X3D-XS on Kinetics-400 (PySlowFast X3D_XS.yaml; 69.12 top-1, 30 views, in PyTorchVideo's zoo)."""
    return _paper("x3d_xs")


def paper_s_config() -> X3DRecipeConfig:
    """X3D-S on Kinetics-400 (X3D_S.yaml; 73.33 top-1)."""
    return _paper("x3d_s")


def paper_m_config() -> X3DRecipeConfig:
    """X3D-M on Kinetics-400 (X3D_M.yaml; 75.94 top-1)."""
    return _paper("x3d_m")


def paper_l_config() -> X3DRecipeConfig:
    """X3D-L on Kinetics-400 (X3D_L.yaml; 77.44 top-1)."""
    return _paper("x3d_l")


def tiny_config() -> X3DRecipeConfig:
    """X3D-XS from scratch on moving digits, a few minutes on a 2-core CPU.

    Departures from the paper recipe, all forced by size: 32x32 videos of 3 digits x 4
    directions (12 classes, 24 train, 6 val and 6 test videos each, decoded once into
    memory); 4-frame clips (every 2nd frame) from a random 1 s window (8 fps source); no spatial augmentation (a flip would swap left and right); 300 steps of
    batch 16 with AdamW (lr 2e-3, weight decay 0.05, none on norms), which converges in this
    budget where SGD at the paper's settings barely leaves chance; 1 view at test; no precise
    BN (the running statistics already cover the small train set).
    """
    return X3DRecipeConfig(
        seed=0,
        global_batch_size=16,
        torch_threads=1,
        x3d=X3DConfig(model="x3d_xs", num_classes=12, dropout=0.0, zero_init_final_norm=True),
        video=VideoClipConfig(
            num_frames=4,
            sampling_rate=2,  # 4 frames over 1 s of the 8 fps videos
            fps=8.0,
            train_crop_size=32,
            test_crop_size=32,
            test_short_side=32,
            num_ensemble_views=1,
            num_spatial_crops=1,
            precise_bn_batches=0,
            eval_batch_size=32,
        ),
        moving_digits=_tiny_moving_digits(),
        trainer=tiny_trainer(300, log_every=25),
        optim=tiny_adamw(2e-3),
        data=DataConfig(
            dataset="moving_digits", root="", batch_size=0, num_workers=0, image_size=32
        ),
    )


def tiny_study() -> Study:
    """X3D-XS vs the frame-averaged 2D baseline, same budget, 3 seeds; test top-1."""
    return Study(
        arms=(
            Arm("x3d", (), description="X3D-XS from scratch"),
            Arm("frame_2d", ("x3d.frame_averaged_2d=true",),
                description="X3D-XS with temporal kernels 1, per frame, logits averaged"),
        ),
        seeds=(0, 1, 2),
        metrics=("val_top1", "top5", "frame_only_ceiling_top1"),
        claims=(
            Claim("X3D-XS beats the frame-averaged 2D baseline: it uses motion",
                  metric="top1", arm="x3d", baseline="frame_2d", rule="better_all_seeds"),
        ),
    )  # fmt: skip
