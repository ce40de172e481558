"""Hiera recipes: ``hiera_tiny`` (CPU, minutes) and ``hiera_paper`` (the paper's settings).

Configs are plain dataclasses and this module imports no torch at module level: ``paperzoo
info`` imports it to print the fields, and the study declaration (:func:`tiny_study`) is read
without torch. The runners import the heavy parts when they run.

**tiny** tests the paper's central claim at toy scale, in the regime where MAE is meant to
pay off: *MAE pretraining on unlabelled clips, then fine-tuning on a few labelled ones, beats
training the same Hiera from scratch on those labelled clips*. The data are the moving-digits
videos of :mod:`paperzoo.data.synthetic` (real h264 mp4 files decoded with PyAV) on a textured
background, so that a masked patch carries something to reconstruct (on the black background
of the first version, MAE collapsed to predicting empty patches). Splits: train / val / test
with disjoint MNIST images. One run of :func:`run_tiny` is one *cell* of the study (one arm,
one seed in ``cfg.seed``):

1. ``pretrain=true`` (arm ``mae``): MAE (``hiera_mae``) on *all* training clips, labels unused;
2. fine-tuning on ``label_fraction`` of the training clips (a class-stratified subset drawn
   from the cell's seed, so both arms of a seed see the same labelled clips), from the
   pretrained encoder (arm ``mae``) or from a random initialisation (arm ``scratch``, with
   ``pretrain=false``): the same steps, batch, optimizer and regularisation for both.

Each phase trains through :class:`paperzoo.train.Trainer` in its own folder (``pretrain/``,
``finetune/``), so ``paperzoo reproduce hiera --resume`` continues a half-finished cell. The
cell reports top-1 on the val split (used to choose the settings) and on the test split (read
by the final run only; ``report_test=false`` skips it while tuning). The study runner
(:mod:`paperzoo.train.study`) runs the cells and decides the claim (:func:`tiny_study`).

**paper** follows the paper's MAE pretraining then fine-tuning on ImageNet-1K (images) or
Kinetics-400 (video). The official repository has no training code, so the numbers come from
the paper's appendix; those marked ``unverified`` were recalled, not re-read: check them.
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from paperzoo.core.config import DataConfig, OptimConfig, TrainerConfig
from paperzoo.core.run import RunContext, RunResult
from paperzoo.train.study import Arm, Claim, Study

__all__ = [
    "FinetuneStageConfig",
    "HieraPaperConfig",
    "HieraTinyConfig",
    "MAEStageConfig",
    "run_paper",
    "run_tiny",
    "tiny_study",
]


# -- tiny ------------------------------------------------------------------------------------


def tiny_study() -> Study:
    """``paperzoo reproduce hiera``: scratch vs MAE + fine-tuning, 3 seeds, test top-1."""
    return Study(
        arms=(
            Arm("scratch", ("pretrain=false",), description="fine-tuning recipe, random init"),
            # The fine-tuning lr of each arm is its best on val (seed 0) of {1e-3, 3e-3}.
            Arm(
                "mae",
                ("optim.lr=0.003",),
                description="MAE on all training clips, then the same fine-tuning",
            ),
        ),
        seeds=(0, 1, 2),
        metrics=("top1", "val_top1", "labelled_clips"),
        claims=(
            Claim(
                "MAE pretraining then fine-tuning beats training from scratch when labels "
                "are scarce (test top-1)",
                metric="top1",
                arm="mae",
                baseline="scratch",
                rule="better_all_seeds",
            ),
        ),
        description="hiera_toy_8x64 on textured moving digits; labels on a small fraction",
    )


@dataclass
class MovingDigitsConfig:
    """The synthetic video set (:func:`paperzoo.data.synthetic.write_moving_digits`)."""

    root: str = ""  # where the mp4s go; default OUT/_shared/moving_digits (a study) or OUT/...
    num_videos_per_class: int = 30
    num_directions: int = 4
    num_frames: int = 16  # written per video; the model sees ``clip_frames`` of them
    clip_frames: int = 8
    size: int = 64
    speed: int = 3
    val_fraction: float = 0.1
    test_fraction: float = 0.1
    background: Literal["black", "texture", "clutter"] = "texture"
    background_drift: int = 0
    # Texture smoothness, cycles per canvas: at 1 a 16 px mask unit is predictable from its
    # neighbours (at 3, the first protocol's, MAE's loss never left the trivial 0.995).
    background_cutoff: float = 1.0
    seed: int = 0  # the data is the same for every training seed


def _tiny_trainer() -> TrainerConfig:
    return TrainerConfig(
        max_steps=0,  # set per phase by the runner
        checkpoint_every=50,  # a killed cell resumes from at most 50 steps back
        keep_checkpoints=1,
        log_every=20,
        amp="off",
        progress=False,
        tensorboard=False,
        device="cpu",
    )


@dataclass
class HieraTinyConfig:
    """``hiera_tiny``: one cell of the MAE-vs-scratch study (see :func:`tiny_study`)."""

    seed: int = 0
    model: str = "hiera_toy_8x64"
    label: Literal["direction", "digit", "digit_direction"] = "direction"
    # The fraction of training clips whose labels fine-tuning sees (class-stratified, per seed).
    label_fraction: float = 0.1
    pretrain: bool = True  # MAE first (arm "mae"); false: fine-tune from random init ("scratch")
    mae_steps: int = 1000
    finetune_steps: int = 150
    # 0.75, not the paper's 0.9 for video: with 64 mask units per clip, 0.9 leaves 6 visible
    # and the MAE loss did not leave the trivial plateau within 1000 steps (README).
    mask_ratio: float = 0.75
    norm_pix_loss: bool = True
    decoder_embed_dim: int = 32
    decoder_depth: int = 2
    decoder_num_heads: int = 1
    # Fine-tuning regularisation, MAE-style, identical for both arms.
    layer_decay: float = 0.75
    drop_path_rate: float = 0.1
    label_smoothing: float = 0.1
    # Random spatial shift on the torus canvas (label-preserving: digit and texture wrap around).
    roll_augment: bool = True  # fine-tuning, both arms
    mae_roll_augment: bool = False  # pretraining: MAE escaped its plateau ~2x sooner without
    report_test: bool = True  # false while tuning on val: the test split is read once
    mae_optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw", lr=1e-3, betas=(0.9, 0.95), weight_decay=0.05, warmup_steps=20
        )
    )
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw", lr=1e-3, betas=(0.9, 0.999), weight_decay=0.05, warmup_steps=20
        )
    )
    trainer: TrainerConfig = field(default_factory=_tiny_trainer)
    data: DataConfig = field(
        default_factory=lambda: DataConfig(dataset="moving_digits", batch_size=16, image_size=64)
    )
    digits: MovingDigitsConfig = field(default_factory=MovingDigitsConfig)


class _Normalize:
    """uint8 clips -> float, standardised by the training clips' mean and std (scalars: the
    frames are grey replicated to RGB). Also the DataLoader's collate function."""

    def __init__(self, mean: float, std: float) -> None:
        self.mean, self.std = mean, std

    def __call__(self, clips: Any) -> Any:
        return (clips.float() / 255.0 - self.mean) / self.std

    def collate(self, items: list[tuple[Any, Any]]) -> tuple[Any, Any]:
        import torch

        clips = torch.stack([clip for clip, _ in items])
        return self(clips), torch.stack([torch.as_tensor(y) for _, y in items])


class _ClipTensorDataset:
    """Decoded clips held in memory: (uint8 (N, C, T, H, W), labels (N,)); optional random roll.

    The tiny set is decoded once with PyAV (through ``LabeledVideoDataset``) and kept as
    uint8, so the short training phases do not re-decode every epoch. Items stay uint8;
    :meth:`_Normalize.collate` converts whole batches (far fewer small ops than per clip).
    """

    def __init__(self, clips: Any, labels: Any, roll: bool) -> None:
        self.clips, self.labels, self.roll = clips, labels, roll

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> tuple[Any, Any]:
        import torch

        clip = self.clips[i]
        if self.roll:  # the canvas is a torus: any shift keeps digit, direction and label
            h, w = clip.shape[-2:]
            dy, dx = torch.randint(h, ()).item(), torch.randint(w, ()).item()
            clip = torch.roll(clip, shifts=(dy, dx), dims=(-2, -1))
        return clip, self.labels[i]


def _digits_root(cfg: HieraTinyConfig, ctx: RunContext) -> Path:
    if cfg.digits.root or cfg.data.root:
        return Path(cfg.digits.root or cfg.data.root)
    return Path(ctx.shared_dir or ctx.out_dir) / "moving_digits"


def _load_moving_digits(cfg: HieraTinyConfig, ctx: RunContext) -> dict[str, Any]:
    """Split -> (uint8 clips (N, C, clip_frames, H, W), labels): every ``num_frames //
    clip_frames``-th frame of each video, from :func:`paperzoo.data.synthetic.moving_digits_splits`
    (written once per study, decoded once per process)."""
    from paperzoo.data.synthetic import moving_digits_splits

    d = cfg.digits
    if d.num_frames % d.clip_frames:
        raise ValueError(
            f"digits.num_frames ({d.num_frames}) must be a multiple of digits.clip_frames "
            f"({d.clip_frames}): clips take every (num_frames / clip_frames)-th frame"
        )
    splits = ("train", "val", "test") if d.test_fraction > 0 else ("train", "val")
    sets = moving_digits_splits(
        _digits_root(cfg, ctx), splits,
        num_videos_per_class=d.num_videos_per_class, num_directions=d.num_directions,
        num_frames=d.num_frames, size=d.size, speed=d.speed, val_fraction=d.val_fraction,
        test_fraction=d.test_fraction, background=d.background,
        background_drift=d.background_drift, background_cutoff=d.background_cutoff, seed=d.seed,
    )  # fmt: skip
    step = d.num_frames // d.clip_frames
    return {name: (v.videos[:, :, ::step], v.labels) for name, v in sets.items()}


def _relabel(labels: Any, cfg: HieraTinyConfig) -> Any:
    """Data labels are ``digit * num_directions + direction``; pick the recipe's label."""
    n = cfg.digits.num_directions
    if cfg.label == "direction":
        return labels % n
    if cfg.label == "digit":
        return labels // n
    return labels


def _labelled_subset(labels: Any, fraction: float, seed: int) -> Any:
    """Indices of ``fraction`` of each class's clips (at least one), drawn from ``seed``."""
    import torch

    if not 0.0 < fraction <= 1.0:
        raise ValueError(f"label_fraction must be in (0, 1], got {fraction}")
    gen = torch.Generator().manual_seed(seed)
    keep = []
    for c in torch.unique(labels).tolist():
        idx = torch.nonzero(labels == c).flatten()
        idx = idx[torch.randperm(len(idx), generator=gen)]
        keep.append(idx[: max(1, round(fraction * len(idx)))])
    return torch.sort(torch.cat(keep)).values


def _mean_std(clips: Any, chunk: int = 64) -> tuple[float, float]:
    """Mean and std of uint8 pixels scaled to [0, 1], in chunks (the float copy is large)."""
    import torch

    total = total_sq = 0.0
    for i in range(0, len(clips), chunk):
        x = clips[i : i + chunk].to(torch.float64) / 255.0
        total += x.sum().item()
        total_sq += x.square().sum().item()
    n = clips.numel()
    mean = total / n
    return mean, math.sqrt(max(total_sq / n - mean * mean, 1e-12))


def _phase_ctx(ctx: RunContext, name: str) -> RunContext:
    """The context of one training phase: its own folder; resume only what was started."""
    out = Path(ctx.out_dir) / name
    started = (out / "checkpoints").is_dir() and any((out / "checkpoints").iterdir())
    return dataclasses.replace(ctx, out_dir=out, resume=ctx.resume and started)


def _evaluate(model: Any, clips: Any, labels: Any, norm: _Normalize, batch_size: int = 64) -> float:
    """Top-1 accuracy (%) of ``model`` on uint8 clips."""
    import torch

    model.eval()
    correct = 0
    with torch.no_grad():
        for i in range(0, len(labels), batch_size):
            logits = model(norm(clips[i : i + batch_size]))
            correct += (logits.argmax(-1) == labels[i : i + batch_size]).sum().item()
    return 100.0 * correct / len(labels)


def _train(method: Any, dataset: Any, ctx: RunContext, cfg: HieraTinyConfig, optim: OptimConfig,
           steps: int, norm: _Normalize) -> tuple[float, dict[str, float]]:  # fmt: skip
    """Run the Trainer for ``steps``; return (wall seconds, last logged metrics)."""
    from paperzoo.train import Trainer

    start = time.perf_counter()
    trainer_cfg = dataclasses.replace(cfg.trainer, max_steps=steps)
    state = Trainer(
        method, dataset, ctx, trainer_cfg, optim, batch_size=cfg.data.batch_size, seed=cfg.seed,
        collate_fn=norm.collate,
    ).fit()  # fmt: skip
    return time.perf_counter() - start, dict(state.metrics)


def run_tiny(cfg: HieraTinyConfig, ctx: RunContext) -> RunResult:
    """One cell: (MAE on all training clips, if ``cfg.pretrain``) then fine-tuning on the
    labelled fraction; val (and test) top-1 of the fine-tuned classifier."""
    import torch

    from paperzoo.hiera import model as models
    from paperzoo.hiera.method import HieraClassifier, hiera_mae
    from paperzoo.train import seed_everything

    if cfg.model not in models.model_configs():
        raise ValueError(
            f"unknown Hiera model {cfg.model!r}; known: {sorted(models.model_configs())}"
        )
    if cfg.report_test and cfg.digits.test_fraction <= 0:
        raise ValueError(
            "report_test=true needs a test split: set digits.test_fraction > 0 (or "
            "report_test=false to report val only)"
        )
    data = _load_moving_digits(cfg, ctx)
    train_x, train_y = data["train"]
    train_y = _relabel(train_y, cfg)
    subset = _labelled_subset(train_y, cfg.label_fraction, cfg.seed)
    all_y = torch.cat([_relabel(data[s][1], cfg) for s in data])
    num_classes = int(all_y.max()) + 1
    input_size = tuple(train_x.shape[2:])
    norm = _Normalize(*_mean_std(train_x))  # unlabelled statistics: every training clip
    metrics: dict[str, float] = {"labelled_clips": float(len(subset))}
    steps = 0

    encoder_state = None
    if cfg.pretrain:  # MAE on every training clip; its labels are never read
        seed_everything(cfg.seed)
        mae = hiera_mae(
            cfg.model,
            input_size=input_size,
            decoder_embed_dim=cfg.decoder_embed_dim,
            decoder_depth=cfg.decoder_depth,
            decoder_num_heads=cfg.decoder_num_heads,
            mask_ratio=cfg.mask_ratio,
            norm_pix_loss=cfg.norm_pix_loss,
        )
        unlabelled = _ClipTensorDataset(
            train_x, torch.zeros_like(train_y), roll=cfg.mae_roll_augment
        )
        seconds, last = _train(mae, unlabelled, _phase_ctx(ctx, "pretrain"), cfg, cfg.mae_optim,
                               cfg.mae_steps, norm)  # fmt: skip
        metrics["pretrain_seconds"] = seconds
        metrics["mae_loss"] = float(last.get("loss", math.nan))
        steps += cfg.mae_steps
        encoder_state = mae.encoder_state_dict()

    # Fine-tuning: the same classifier, steps and optimizer for both arms; the MAE arm starts
    # from the pretrained encoder (norm and head fresh, as the official fine-tuning).
    seed_everything(cfg.seed)
    model = getattr(models, cfg.model)(
        num_classes=num_classes, input_size=input_size, drop_path_rate=cfg.drop_path_rate
    )
    if encoder_state is not None:
        missing, unexpected = model.load_state_dict(encoder_state, strict=False)
        if unexpected or any(not k.startswith(("norm.", "head.")) for k in missing):
            raise RuntimeError(f"MAE encoder does not fit the classifier: {missing}, {unexpected}")
    method = HieraClassifier(
        model, label_smoothing=cfg.label_smoothing, layer_decay=cfg.layer_decay,
        weight_decay=cfg.optim.weight_decay,
    )  # fmt: skip
    labelled = _ClipTensorDataset(train_x[subset], train_y[subset], roll=cfg.roll_augment)
    seconds, last = _train(method, labelled, _phase_ctx(ctx, "finetune"), cfg, cfg.optim,
                           cfg.finetune_steps, norm)  # fmt: skip
    metrics["finetune_seconds"] = seconds
    steps += cfg.finetune_steps
    val_x, val_y = data["val"]
    metrics["val_top1"] = _evaluate(model, val_x, _relabel(val_y, cfg), norm)
    if cfg.report_test:
        test_x, test_y = data["test"]
        metrics["top1"] = _evaluate(model, test_x, _relabel(test_y, cfg), norm)
    extra = {
        "train_clips": len(train_y),
        "labelled_clips": len(subset),
        "val_clips": len(val_y),
        "test_clips": len(data["test"][1]) if "test" in data else 0,
        "num_classes": num_classes,
        "data_root": str(_digits_root(cfg, ctx)),
        "input_mean_std": [norm.mean, norm.std],
    }
    return RunResult(metrics=metrics, steps=steps, extra=extra)


# -- paper -----------------------------------------------------------------------------------


@dataclass
class MAEStageConfig:
    """MAE pretraining (paper, appendix; the official repo has no training code)."""

    epochs: int = 1600  # final models; 400 in the paper's ablations (IN-1K)
    mask_ratio: float = 0.0  # 0: the paper's, 0.6 for images and 0.9 for video
    decoder_embed_dim: int = 512
    decoder_depth: int = 8
    decoder_num_heads: int = 16
    batch_size: int = 4096  # global
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw",
            lr=8e-4,  # unverified: recalled from the paper's pretraining table
            base_batch=0,
            betas=(0.9, 0.95),
            weight_decay=0.05,
            warmup_epochs=40,  # unverified
            exclude_bias_norm=True,
        )
    )


@dataclass
class FinetuneStageConfig:
    """Supervised fine-tuning (paper, appendix)."""

    epochs: int = 100  # Hiera-B on IN-1K (unverified for other sizes: T 300, S 200, L/H 50)
    batch_size: int = 1024  # global
    layer_decay: float = 0.65  # unverified: B; larger for L/H
    drop_path_rate: float = 0.1  # unverified: B
    label_smoothing: float = 0.1
    mixup_alpha: float = 0.8
    cutmix_alpha: float = 1.0
    rand_augment: bool = True  # RandAugment (9, 0.5)
    random_erasing: float = 0.25
    optim: OptimConfig = field(
        default_factory=lambda: OptimConfig(
            name="adamw",
            lr=2e-3,  # unverified: at batch 1024
            betas=(0.9, 0.999),
            weight_decay=0.05,
            warmup_epochs=5,
            min_lr=1e-6,
        )
    )


@dataclass
class HieraPaperConfig:
    """``hiera_paper``: MAE pretraining then fine-tuning of ``model`` on ``data.root``.

    ``data.root``: an ImageNet-style folder with ``train/`` and ``val/`` (image models) or a
    folder with Kinetics-style ``train.csv`` / ``val.csv`` (video models, ``path label`` lines).
    ``stage``: ``both``, ``pretrain`` or ``finetune`` (``pretrained`` = an MAE checkpoint:
    official ``mae_hiera_*.pth`` or this recipe's ``pretrain/model.safetensors``).
    """

    seed: int = 0
    model: str = "hiera_base_224"
    stage: Literal["both", "pretrain", "finetune"] = "both"
    pretrained: str = ""
    pretrain: MAEStageConfig = field(default_factory=MAEStageConfig)
    finetune: FinetuneStageConfig = field(default_factory=FinetuneStageConfig)
    # Video: 16 frames, temporal stride 4; 3 spatial x 5 temporal test views (K400 protocol).
    sampling_rate: int = 4
    test_clips: int = 5
    test_crops: int = 3
    trainer: TrainerConfig = field(
        default_factory=lambda: TrainerConfig(
            max_steps=0, checkpoint_every=1000, clip_grad_norm=0.0
        )
    )
    optim: OptimConfig = field(default_factory=OptimConfig)  # unused: see pretrain / finetune
    data: DataConfig = field(default_factory=lambda: DataConfig(batch_size=64, num_workers=8))


def _require_data(cfg: HieraPaperConfig, video: bool) -> Path:
    if not cfg.data.root:
        what = (
            "a Kinetics-400 folder with train.csv and val.csv ('path label' lines)"
            if video
            else "an ImageNet-1K folder with train/ and val/ class subfolders"
        )
        raise FileNotFoundError(
            f"hiera_paper needs the dataset: pass --data PATH ({what}); nothing is downloaded"
        )
    root = Path(cfg.data.root).expanduser()
    need = ["train.csv", "val.csv"] if video else ["train", "val"]
    for name in need:
        if not (root / name).exists():
            raise FileNotFoundError(
                f"hiera_paper: {root / name} is missing; --data must point at a folder holding "
                f"{' and '.join(need)}"
            )
    return root


def _paper_datasets(cfg: HieraPaperConfig, root: Path, video: bool, size: int,
                    frames: int) -> tuple[Any, Any, Any]:  # fmt: skip
    """(pretrain set, fine-tune set, val set) for the paper recipe."""
    import torch
    from torchvision.transforms import v2

    ft = cfg.finetune
    if video:
        from paperzoo.data.datasets import LabeledVideoDataset
        from paperzoo.data.samplers import ConstantClipsPerVideoSampler, RandomClipSampler
        from paperzoo.data.transforms import video_eval_transform, video_train_transform

        duration = frames * cfg.sampling_rate / 30.0  # Kinetics is ~30 fps
        train = LabeledVideoDataset.from_csv(
            root / "train.csv",
            clip_sampler=RandomClipSampler(duration),
            num_frames=frames,
            transform=video_train_transform(
                frames,
                crop_size=size,
                rand_augment=ft.rand_augment,
                random_erasing=ft.random_erasing,
            ),
        )
        pretrain = LabeledVideoDataset.from_csv(
            root / "train.csv",
            clip_sampler=RandomClipSampler(duration),
            num_frames=frames,
            transform=video_train_transform(frames, crop_size=size),
        )
        val = LabeledVideoDataset.from_csv(
            root / "val.csv",
            clip_sampler=ConstantClipsPerVideoSampler(duration, cfg.test_clips),
            num_frames=frames,
            transform=video_eval_transform(frames, crop_size=size, center_crop=False),
            num_crops=cfg.test_crops,
            crop_size=size,
            return_index=True,
        )
        return pretrain, train, val
    from paperzoo.data.images import ImageFolderDataset

    mean, std = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
    finish = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(mean, std)]
    pre_tf = v2.Compose(
        [v2.RandomResizedCrop(size, scale=(0.2, 1.0), antialias=True), v2.RandomHorizontalFlip(),
         *finish]
    )  # fmt: skip
    ft_ops: list[Any] = [
        v2.RandomResizedCrop(size, antialias=True),
        v2.RandomHorizontalFlip(),
    ]
    if ft.rand_augment:
        ft_ops.append(v2.RandAugment(num_ops=2, magnitude=9))
    ft_ops += finish
    if ft.random_erasing > 0:
        ft_ops.append(v2.RandomErasing(p=ft.random_erasing, value=0))
    val_tf = v2.Compose(
        [v2.Resize(int(size / 0.875), antialias=True), v2.CenterCrop(size), *finish]
    )
    return (
        ImageFolderDataset(root / "train", transform=pre_tf),
        ImageFolderDataset(root / "train", transform=v2.Compose(ft_ops)),
        ImageFolderDataset(root / "val", transform=val_tf),
    )


def _per_rank_batch(global_batch: int, ctx: RunContext, trainer: TrainerConfig) -> int:
    per_rank, rest = divmod(global_batch, ctx.world_size * trainer.grad_accum_steps)
    if per_rank < 1 or rest:
        raise ValueError(
            f"global batch {global_batch} does not split over {ctx.world_size} processes x "
            f"{trainer.grad_accum_steps} accumulation steps; change the batch_size"
        )
    return per_rank


def run_paper(cfg: HieraPaperConfig, ctx: RunContext) -> RunResult:
    """MAE pretraining and/or fine-tuning with the paper's settings; val top-1 at the end."""
    from paperzoo.data.transforms import MixupCutmix
    from paperzoo.hiera import model as models
    from paperzoo.hiera.convert import (
        convert_official_mae_state_dict,
        detect_format,
        read_state_dict,
    )
    from paperzoo.hiera.method import HieraClassifier, hiera_mae
    from paperzoo.train import Trainer, seed_everything

    configs = models.model_configs()
    if cfg.model not in configs:
        raise ValueError(f"unknown Hiera model {cfg.model!r}; known: {sorted(configs)}")
    mcfg = configs[cfg.model]
    input_size = tuple(mcfg.get("input_size", (224, 224)))
    video = len(input_size) == 3
    root = _require_data(cfg, video)
    size, frames = input_size[-1], (input_size[0] if video else 1)
    pretrain_set, train_set, val_set = _paper_datasets(cfg, root, video, size, frames)
    metrics: dict[str, float] = {}
    steps = 0
    seed_everything(cfg.seed)
    encoder_state = None

    if cfg.stage in ("both", "pretrain"):
        pt = cfg.pretrain
        mae = hiera_mae(
            cfg.model,
            decoder_embed_dim=pt.decoder_embed_dim,
            decoder_depth=pt.decoder_depth,
            decoder_num_heads=pt.decoder_num_heads,
            mask_ratio=pt.mask_ratio or None,
        )
        state = Trainer(
            mae, pretrain_set, _phase_ctx(ctx, "pretrain"),
            dataclasses.replace(cfg.trainer, epochs=pt.epochs), pt.optim,
            batch_size=_per_rank_batch(pt.batch_size, ctx, cfg.trainer),
            num_workers=cfg.data.num_workers, seed=cfg.seed,
        ).fit()  # fmt: skip
        steps += state.step
        encoder_state = mae.encoder_state_dict()
    elif cfg.pretrained:
        state = read_state_dict(cfg.pretrained)
        if detect_format(state) == "official_mae":
            state = convert_official_mae_state_dict(state)
        encoder_state = {
            k[len("encoder.") :]: v
            for k, v in state.items()
            if k.startswith("encoder.") and not k.startswith(("encoder.norm.", "encoder.head."))
        }

    if cfg.stage in ("both", "finetune"):
        ft = cfg.finetune
        num_classes = len(getattr(train_set, "classes", None) or []) or mcfg.get(
            "num_classes", 1000
        )
        model = getattr(models, cfg.model)(
            num_classes=num_classes, drop_path_rate=ft.drop_path_rate
        )
        if encoder_state is not None:
            model.load_state_dict(encoder_state, strict=False)
        method = HieraClassifier(
            model, layer_decay=ft.layer_decay, weight_decay=ft.optim.weight_decay,
            mixup=MixupCutmix(num_classes, ft.mixup_alpha, ft.cutmix_alpha,
                              label_smoothing=ft.label_smoothing),
        )  # fmt: skip
        state = Trainer(
            method, train_set, _phase_ctx(ctx, "finetune"),
            dataclasses.replace(cfg.trainer, epochs=ft.epochs), ft.optim,
            batch_size=_per_rank_batch(ft.batch_size, ctx, cfg.trainer),
            num_workers=cfg.data.num_workers, seed=cfg.seed,
        ).fit()  # fmt: skip
        steps += state.step
        metrics["top1"] = _evaluate_views(
            model, val_set, cfg.data.batch_size, video, cfg.data.num_workers
        )
    return RunResult(metrics=metrics, steps=steps)


def _evaluate_views(
    model: Any, val_set: Any, batch_size: int, video: bool, num_workers: int
) -> float:
    """Top-1 (%): one centre crop per image, or the mean softmax over each video's views."""
    import torch
    from torch.utils.data import DataLoader

    device = next(model.parameters()).device
    model.eval()
    scores: dict[int, torch.Tensor] = {}
    labels: dict[int, int] = {}
    with torch.no_grad():
        for i, batch in enumerate(
            DataLoader(val_set, batch_size=batch_size, num_workers=num_workers)
        ):
            x, y = batch[0].to(device), batch[1]
            probs = model(x).softmax(-1).cpu()
            ids = batch[2].tolist() if video else range(i * batch_size, i * batch_size + len(y))
            for j, vid in enumerate(ids):
                scores[vid] = scores.get(vid, 0) + probs[j]
                labels[vid] = int(y[j])
    hits = sum(int(scores[k].argmax()) == labels[k] for k in scores)
    return 100.0 * hits / max(len(scores), 1)
