"""The runner of the MAViL recipes: ``run(cfg, ctx) -> RunResult``, one run (one study cell).

1. Build the data: the generated audio-visual digits (written once under the study's shared
   folder), or AudioSet / VGGSound through the shared readers
   (:func:`paperzoo.data.datasets.read_audioset_csv`, :func:`~paperzoo.data.datasets.read_vggsound_csv`).
   A missing dataset fails before training.
2. Pre-train (``pretrain.objective``) with :class:`paperzoo.train.Trainer`: audio MAE or MAViL
   stage 1 into ``OUT/pretrain``; MAViL also stage 2 into ``OUT/stage2``, its targets from the
   frozen stage-1 model.
3. Fine-tune one classifier per ``finetune.modalities`` entry into ``OUT/finetune_<modality>``
   and score it on the scored split: ``<modality>_mAP`` (AudioSet-style, multi-label:
   :func:`paperzoo.train.multilabel.mean_average_precision`) or ``<modality>_top1`` (%).

Metrics also hold ``pretrain_loss`` (the last pre-training stage's final logged loss).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch

from paperzoo.core.run import RunContext, RunResult
from paperzoo.mavil.data import AVClipDataset, av_digits_splits
from paperzoo.mavil.method import Finetune, MAViLPretraining, encoder_state_dict
from paperzoo.mavil.model import SIZES, MAViL, build_classifier, build_pretraining_model
from paperzoo.mavil.recipes import MAViLRecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["MAViLData", "build_data", "evaluate_clips", "run"]


@dataclass
class MAViLData:
    pretrain: Any
    finetune: Any
    scored: Any
    num_classes: int
    multilabel: bool
    description: str


def _phase(ctx: RunContext, name: str) -> RunContext:
    return dataclasses.replace(ctx, out_dir=ctx.out_dir / name)


def _labelled_subset(dataset: AVClipDataset, per_class: int, seed: int) -> Any:
    """``per_class`` clips of each (first) class, drawn with ``seed``."""
    from torch.utils.data import Subset

    g = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, r in enumerate(dataset.records):
        label = r.label[0] if isinstance(r.label, list) else r.label
        by_class.setdefault(int(label), []).append(i)
    picked: list[int] = []
    for c in sorted(by_class):
        idx = by_class[c]
        order = torch.randperm(len(idx), generator=g)[:per_class]
        picked += [idx[int(j)] for j in order]
    return Subset(dataset, sorted(picked))


def build_data(cfg: MAViLRecipeConfig, ctx: RunContext) -> MAViLData:
    """The pre-training, fine-tuning and scored sets of ``cfg.data.dataset``."""
    size = SIZES[cfg.model] if cfg.model in SIZES else SIZES["vit_base"]
    shape = {"audio_frames": size["audio"]["audio_frames"],
             "num_frames": size["video"]["num_frames"], "img_size": size["video"]["img_size"]}  # fmt: skip
    files = cfg.files
    if cfg.data.dataset == "av_digits":
        root = (
            Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir) / "av_digits"
        )
        splits, classes = av_digits_splits(
            root, clips_per_class=files.clips_per_class, noise=files.noise, **shape
        )
        train = splits["train"]
        finetune: Any = train
        if cfg.finetune.labels_per_class > 0:
            finetune = _labelled_subset(train, cfg.finetune.labels_per_class, cfg.seed)
        return MAViLData(
            pretrain=train, finetune=finetune, scored=splits[cfg.split],
            num_classes=len(classes), multilabel=False,
            description=f"av_digits: {len(train)} train clips, {len(finetune)} labelled, "
            f"{len(splits[cfg.split])} {cfg.split} clips, {len(classes)} classes",
        )  # fmt: skip
    if not cfg.data.root:
        raise ValueError(f"--data PATH is required for dataset {cfg.data.dataset!r}")
    root = Path(cfg.data.root)
    videos = root / files.video_dir
    if cfg.data.dataset == "audioset":
        from paperzoo.data.datasets import read_audioset_csv

        index = root / files.class_index
        train_r, classes = read_audioset_csv(root / files.train_list, index, videos,
                                             file_name=files.file_name)  # fmt: skip
        eval_r, _ = read_audioset_csv(root / files.eval_list, index, videos,
                                      file_name=files.file_name)  # fmt: skip
        multilabel = True
    elif cfg.data.dataset == "vggsound":
        from paperzoo.data.datasets import read_vggsound_csv

        lst = root / files.train_list
        train_r, classes = read_vggsound_csv(lst, videos, "train", file_name=files.file_name)
        eval_r, _ = read_vggsound_csv(root / files.eval_list, videos, "test",
                                      file_name=files.file_name)  # fmt: skip
        multilabel = False
    else:
        raise ValueError(
            f"unknown dataset {cfg.data.dataset!r}; use 'av_digits', 'audioset' or 'vggsound'"
        )
    make = {"multilabel": multilabel, **shape}
    train = AVClipDataset(train_r, len(classes), **make)
    return MAViLData(
        pretrain=train, finetune=train, scored=AVClipDataset(eval_r, len(classes), **make),
        num_classes=len(classes), multilabel=multilabel,
        description=f"{cfg.data.dataset}: {len(train_r)} train, {len(eval_r)} eval clips, "
        f"{len(classes)} classes",
    )  # fmt: skip


def _trainer_cfg(cfg: MAViLRecipeConfig, epochs: int, max_steps: int) -> Any:
    return dataclasses.replace(cfg.trainer, epochs=epochs, max_steps=max_steps)


def _pretrain_stage(
    cfg: MAViLRecipeConfig, ctx: RunContext, data: MAViLData, *, name: str, video: bool,
    teacher: MAViL | None, contrast: bool, epochs: int, max_steps: int,
) -> tuple[MAViL, Any]:  # fmt: skip
    pt = cfg.pretrain
    seed_everything(cfg.seed)  # the same initial weights on every rank
    model = build_pretraining_model(
        cfg.model, video=video, stage=2 if teacher is not None else 1,
        audio_mask_ratio=pt.audio_mask_ratio, video_mask_ratio=pt.video_mask_ratio,
    )  # fmt: skip
    method = MAViLPretraining(
        model, teacher=teacher, inter_weight=pt.inter_weight if contrast else 0.0,
        intra_weight=pt.intra_weight if contrast else 0.0, temperature=pt.temperature,
        norm_pix_loss=pt.norm_pix_loss,
    )  # fmt: skip
    batch = dist_utils.per_process_batch(pt.batch_size, cfg.data.batch_size, ctx.world_size)
    state = Trainer(
        method, data.pretrain, _phase(ctx, name), _trainer_cfg(cfg, epochs, max_steps), pt.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed,
    ).fit()  # fmt: skip
    return model, state


def pretrain(cfg: MAViLRecipeConfig, ctx: RunContext, data: MAViLData) -> tuple[MAViL, Any, int]:
    """Run the pre-training that ``cfg.pretrain.objective`` names; returns (model, the last
    stage's state, the steps of all stages)."""
    pt = cfg.pretrain
    if pt.objective == "audio_mae":
        model, state = _pretrain_stage(cfg, ctx, data, name="pretrain", video=False,
                                       teacher=None, contrast=False, epochs=pt.epochs,
                                       max_steps=pt.max_steps)  # fmt: skip
        return model, state, state.step
    if pt.objective not in ("contrast", "mavil"):
        raise ValueError(f"unknown objective {pt.objective!r}: audio_mae, contrast or mavil")
    stage1, state = _pretrain_stage(cfg, ctx, data, name="pretrain", video=True, teacher=None,
                                    contrast=True, epochs=pt.epochs, max_steps=pt.max_steps)  # fmt: skip
    if pt.objective == "contrast":
        return stage1, state, state.step
    stage2, state2 = _pretrain_stage(
        cfg, ctx, data, name="stage2", video=True, teacher=stage1, contrast=pt.stage2_contrast,
        epochs=pt.stage2_epochs, max_steps=pt.stage2_max_steps,
    )  # fmt: skip
    return stage2, state2, state.step + state2.step


@torch.no_grad()
def evaluate_clips(
    model: torch.nn.Module, dataset: Any, *, multilabel: bool, batch_size: int = 64,
    num_workers: int = 0,
) -> dict[str, float]:  # fmt: skip
    """Score ``model`` on ``dataset`` items ``(fbank, video, target)``: ``{"mAP": %}`` for
    multi-label targets (AudioSet-style), else ``{"top1": %}``."""
    from torch.utils.data import DataLoader

    from paperzoo.train.multilabel import mean_average_precision

    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    scores, targets = [], []
    for audio, video, target in DataLoader(dataset, batch_size=batch_size,
                                           num_workers=num_workers):  # fmt: skip
        scores.append(model(audio.to(device), video.to(device)).float().cpu())
        targets.append(target)
    model.train(was_training)
    s, t = torch.cat(scores), torch.cat(targets)
    if multilabel:
        return {"mAP": mean_average_precision(torch.sigmoid(s), t)["mAP"]}
    return {"top1": float((s.argmax(1) == t).float().mean()) * 100.0}


def _finetune(
    cfg: MAViLRecipeConfig, ctx: RunContext, data: MAViLData, modality: str,
    encoder: dict[str, torch.Tensor] | None,
) -> tuple[torch.nn.Module, Any]:  # fmt: skip
    from paperzoo.data.audio import spec_augment

    ft = cfg.finetune
    seed_everything(cfg.seed + 1)  # the same head initialisation on every rank
    model = build_classifier(cfg.model, num_classes=data.num_classes, modality=modality,  # type: ignore[arg-type]
                             drop_path_rate=ft.drop_path_rate)  # fmt: skip
    if encoder is not None:
        own = set(model.state_dict())
        wanted = {k: v for k, v in encoder.items() if k in own}
        result = model.load_state_dict(wanted, strict=False)
        missing = [k for k in result.missing_keys if not k.startswith(("head_norm.", "head."))]
        # Audio MAE has no video encoder: its video-only / joint classifiers start the video
        # side from random weights (recorded, not an error).
        ctx_missing = [k for k in missing if not k.startswith(("video_encoder.", "fusion_"))]
        if ctx_missing:
            raise RuntimeError(f"pre-trained weights do not fit: {ctx_missing[:5]}")
    elif cfg.stage == "finetune":
        from paperzoo.mavil.convert import load_checkpoint

        load_checkpoint(model, cfg.pretrained)
    augment = None
    if ft.freq_mask > 0 or ft.time_mask > 0:

        def augment(x: torch.Tensor) -> torch.Tensor:
            return spec_augment(x, ft.freq_mask, ft.time_mask)

    method = Finetune(model, layer_decay=ft.layer_decay, weight_decay=ft.optim.weight_decay,
                      multilabel=data.multilabel, label_smoothing=ft.label_smoothing,
                      spec_augment=augment)  # fmt: skip
    batch = dist_utils.per_process_batch(ft.batch_size, cfg.data.batch_size, ctx.world_size)
    batch = min(batch, len(data.finetune))
    state = Trainer(
        method, data.finetune, _phase(ctx, f"finetune_{modality}"),
        _trainer_cfg(cfg, ft.epochs, ft.max_steps), ft.optim, batch_size=batch,
        num_workers=cfg.data.num_workers, seed=cfg.seed,
    ).fit()  # fmt: skip
    return model, state


def run(cfg: MAViLRecipeConfig, ctx: RunContext) -> RunResult:
    """Pre-train and/or fine-tune as ``cfg`` says, then evaluate; see the module docstring."""
    if cfg.stage == "finetune" and not cfg.pretrained:
        raise ValueError("stage=finetune needs pretrained=PATH (a MAViL checkpoint)")
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    data = build_data(cfg, ctx)
    metrics: dict[str, float] = {}
    extra: dict[str, Any] = {"data": data.description}
    steps, encoder = 0, None
    if cfg.stage in ("both", "pretrain"):
        model, state, pretrain_steps = pretrain(cfg, ctx, data)
        steps += pretrain_steps
        metrics["pretrain_loss"] = float(state.metrics.get("loss", float("nan")))
        extra["pretrain_wall_seconds"] = round(state.wall_seconds, 2)
        encoder = encoder_state_dict(model.state_dict())
    if cfg.stage in ("both", "finetune", "scratch") and cfg.finetune.enabled:
        for modality in [m.strip() for m in cfg.finetune.modalities.split(",") if m.strip()]:
            classifier, state = _finetune(cfg, ctx, data, modality, encoder)
            steps += state.step
            extra[f"finetune_{modality}_wall_seconds"] = round(state.wall_seconds, 2)
            scores = evaluate_clips(classifier, data.scored, multilabel=data.multilabel,
                                    num_workers=cfg.data.num_workers)  # fmt: skip
            for key, value in scores.items():
                metrics[f"{modality}_{key}"] = value
    extra["scored_split"] = cfg.split if cfg.data.dataset == "av_digits" else "eval"
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=steps, extra=extra)
