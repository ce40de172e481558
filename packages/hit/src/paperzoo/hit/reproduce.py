"""Runner of the HiT recipes: ``paperzoo reproduce hit`` (tiny study) and ``--recipe paper``.

1. Data:
   - tiny: moving digits (:func:`paperzoo.data.synthetic.moving_digits_splits`, real h264 mp4
     files decoded by PyAV) with seeded paraphrase captions
     (:func:`paperzoo.hit.data.moving_digit_captions`), and a WordPiece tokenizer trained on the
     train captions;
   - paper: MSR-VTT 1k-A under ``data.root`` (:class:`~paperzoo.hit.recipes.MSRVTTConfig`),
     the tokenizer and BERT of ``text.bert_path``.
2. HiT (:class:`~paperzoo.hit.model.HiT`) from ``cfg.seed``, trained by
   :class:`~paperzoo.hit.method.HiTMethod` with :class:`paperzoo.train.Trainer` (one process
   or DDP under torchrun; ``--resume`` continues from ``OUT/checkpoints``).
3. Retrieval with the query towers (``hit.retrieval_level``) through
   :mod:`paperzoo.train.retrieval`:
   - paper: each test caption's own video (1k-A: one caption per video), R@1/5/10, MdR, MnR;
   - tiny: a hit is a candidate of the query's class (digit x direction): the similarities are
     reduced to each class's best candidate, so R@1 is "the top-ranked candidate has the
     query's class" and R@K counts classes; the clip-level numbers come as ``clip_*``.

Metrics are percentages (ranks for MdR/MnR); ``mean_R@1`` is the mean of t2v and v2t R@1;
``queue_false_negative`` (HiT) / ``batch_false_negative`` (in-batch arms) is the percentage of
negatives that share the query's class (tiny), at the end of training.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import torch
from torch.utils.data import DataLoader, Dataset

from paperzoo.core import create_model
from paperzoo.core.run import RunContext, RunResult
from paperzoo.hit.data import (
    CaptionedDigits,
    CaptionedVideoDataset,
    TokenizingCollate,
    load_tokenizer,
    moving_digit_captions,
    read_activitynet_captions,
    read_lsmdc,
    read_msrvtt_1ka_test,
    read_msrvtt_train,
    train_wordpiece_tokenizer,
)
from paperzoo.hit.method import HiTMethod
from paperzoo.hit.model import HiT
from paperzoo.hit.recipes import HiTRecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["class_retrieval_metrics", "encode", "run", "similarity"]

_SPLIT_SEED = {"train": 0, "val": 1, "test": 2}


# -- data --------------------------------------------------------------------------------------


def _tiny_data(cfg: HiTRecipeConfig, ctx: RunContext, splits: tuple[str, ...]) -> dict:
    from paperzoo.data.synthetic import moving_digits_splits

    md = cfg.moving_digits
    root = (
        Path(cfg.data.root) if cfg.data.root else (ctx.shared_dir or ctx.out_dir)
    ) / "moving_digits"
    videos = moving_digits_splits(
        root, splits, mean=cfg.video.mean, std=cfg.video.std, **md.write_kwargs()
    )
    classes = {int(k): v for k, v in json.loads((root / "classes.json").read_text()).items()}
    out = {}
    for split, vids in videos.items():
        captions = [
            moving_digit_captions(
                classes[int(label)], speed=md.speed, digit_fraction=28 / md.size,
                num_captions=cfg.eval.captions_per_video,
                seed=md.data_seed * 1_000_003 + _SPLIT_SEED[split] * 100_003 + i,
            )
            for i, label in enumerate(vids.labels.tolist())
        ]  # fmt: skip
        out[split] = (vids, captions)
    return out


def _tiny_sets(cfg: HiTRecipeConfig, data: dict) -> tuple[Dataset, Dataset, Any]:
    v = cfg.video
    clips = dict(num_frames=v.num_frames, stride=v.sampling_rate)
    train_videos, train_caps = data["train"]
    tokenizer = train_wordpiece_tokenizer(
        [c for caps in train_caps for c in caps], cfg.text.vocab_size, cfg.text.max_length
    )
    train = CaptionedDigits(train_videos.sampled(random_start=True, **clips), train_caps)
    eval_videos, eval_caps = data[cfg.eval.split]
    test = CaptionedDigits(eval_videos.sampled(random_start=False, **clips), eval_caps, "first")
    return train, test, tokenizer


def _msrvtt_records(cfg: HiTRecipeConfig) -> tuple[list, list]:
    root, m = Path(cfg.data.root), cfg.msrvtt
    if not cfg.data.root or not (root / m.json).is_file():
        raise FileNotFoundError(
            f"the MSR-VTT recipe needs --data ROOT holding {m.json}, {m.train_list}, "
            f"{m.test_list} and {m.video_dir}/ (got {cfg.data.root!r}); see "
            "paperzoo.hit.recipes.MSRVTTConfig"
        )
    videos = root / m.video_dir
    train_list = root / m.train_list
    train = read_msrvtt_train(
        root / m.json, videos, train_list if train_list.is_file() else None, ext=m.ext
    )
    return train, read_msrvtt_1ka_test(root / m.test_list, videos, ext=m.ext)


def _activitynet_records(cfg: HiTRecipeConfig) -> tuple[list, list]:
    root, a = Path(cfg.data.root), cfg.activitynet
    videos = root / a.video_dir
    return (
        read_activitynet_captions(root / a.train_json, videos, ext=a.ext),
        read_activitynet_captions(root / a.test_json, videos, ext=a.ext),
    )


def _lsmdc_records(cfg: HiTRecipeConfig) -> tuple[list, list]:
    root, m = Path(cfg.data.root), cfg.lsmdc
    videos = root / m.video_dir
    return (
        read_lsmdc(root / m.train_csv, videos, ext=m.ext),
        read_lsmdc(root / m.test_csv, videos, ext=m.ext),
    )


_RECORDS = {"msrvtt": _msrvtt_records, "activitynet": _activitynet_records, "lsmdc": _lsmdc_records}


def _benchmark_sets(cfg: HiTRecipeConfig) -> tuple[Dataset, Dataset, Any]:
    """Train and test sets of a real benchmark (``data.dataset``), and the BERT's tokenizer."""
    from paperzoo.data.samplers import RandomClipSampler
    from paperzoo.data.transforms import video_eval_transform, video_train_transform

    v = cfg.video
    train_records, test_records = _RECORDS[cfg.data.dataset](cfg)
    sampler = RandomClipSampler(v.clip_seconds) if v.clip_seconds > 0 else None
    train = CaptionedVideoDataset(
        train_records, clip_sampler=sampler, num_frames=v.num_frames,
        transform=video_train_transform(
            v.num_frames, v.crop_size, v.short_side, v.short_side, v.mean, v.std
        ),
    )  # fmt: skip
    test = CaptionedVideoDataset(
        test_records, num_frames=v.num_frames, caption_mode="first",
        transform=video_eval_transform(v.num_frames, v.crop_size, v.short_side, v.mean, v.std),
    )  # fmt: skip
    tokenizer = load_tokenizer(cfg.text.tokenizer_path or cfg.text.bert_path)
    return train, test, tokenizer


def _build_model(cfg: HiTRecipeConfig, tokenizer: Any) -> HiT:
    h = cfg.hit
    kwargs: dict[str, Any] = dict(
        dim=h.dim, queue_size=h.queue_size, momentum=h.momentum, temperature=h.temperature,
        video_feature_layer=h.video_feature_layer or None,
        text_feature_layer=h.text_feature_layer or None,
    )  # fmt: skip
    if cfg.model == "hit_tiny":
        kwargs.update(vocab_size=len(tokenizer), max_text_len=cfg.text.max_length)
    else:
        kwargs.update(bert_path=cfg.text.bert_path, input_dim=cfg.video.input_dim)
        if not cfg.text.bert_path:
            kwargs["vocab_size"] = len(tokenizer)
    return create_model(cfg.model, **kwargs)


# -- evaluation --------------------------------------------------------------------------------


@torch.no_grad()
def encode(
    model: HiT, dataset: Dataset, collate: TokenizingCollate, batch_size: int, device: torch.device
) -> tuple[dict, dict, torch.Tensor]:
    """Query-tower embeddings of every item: ``(video {level: (N, C)}, text {...}, labels)``."""
    model.eval()
    video: dict[str, list] = {}
    text: dict[str, list] = {}
    labels = []
    for clips, ids, mask, y in DataLoader(dataset, batch_size=batch_size, collate_fn=collate):
        out = model(clips.to(device), ids.to(device), mask.to(device))
        for store, emb in ((video, out["video"]), (text, out["text"])):
            for lvl, x in emb.items():
                store.setdefault(lvl, []).append(x.float().cpu())
        labels.append(y)
    model.train()
    cat = lambda d: {k: torch.cat(v) for k, v in d.items()}  # noqa: E731
    return cat(video), cat(text), torch.cat(labels)


def similarity(video: dict, text: dict, level: str = "semantic") -> torch.Tensor:
    """(T, V) text-video cosine similarities at ``level`` ("semantic", "feature" or "sum")."""
    if level == "sum":
        return sum(text[lvl] @ video[lvl].T for lvl in text)  # type: ignore[return-value]
    return text[level] @ video[level].T


def class_retrieval_metrics(
    sim: torch.Tensor, text_labels: torch.Tensor, video_labels: torch.Tensor
) -> dict[str, float]:
    """Class-level retrieval from a (T, V) similarity: a hit is a candidate of the query's class.

    Each row (column) is reduced to the best-scoring candidate of every class, then
    :func:`paperzoo.train.retrieval.text_to_video_ranks` ranks the query's class among them
    (ties count against the model). R@1 is the fraction of queries whose top candidate has
    their class; R@K counts classes; MdR/MnR are class ranks.
    """
    from paperzoo.train.retrieval import text_to_video_ranks

    classes = torch.unique(torch.cat([text_labels, video_labels]))
    index = {int(c): i for i, c in enumerate(classes.tolist())}
    col = torch.tensor([index[int(c)] for c in video_labels.tolist()])
    row = torch.tensor([index[int(c)] for c in text_labels.tolist()])
    n = len(classes)

    def per_class_max(s: torch.Tensor, groups: torch.Tensor) -> torch.Tensor:
        out = torch.full((s.shape[0], n), float("-inf"))
        return out.scatter_reduce(1, groups.expand(s.shape[0], -1), s, reduce="amax")

    out: dict[str, float] = {}
    for prefix, s, query_cls, cand_groups in (
        ("t2v_", sim, row, col), ("v2t_", sim.T, col, row),
    ):  # fmt: skip
        ranks = text_to_video_ranks(per_class_max(s.float(), cand_groups), query_cls).double()
        for k in (1, 5, 10):
            out[f"{prefix}R@{k}"] = (ranks <= k).double().mean().item() * 100.0
        out[f"{prefix}MdR"] = ranks.median().item()
        out[f"{prefix}MnR"] = ranks.mean().item()
    return out


def _evaluate(model: HiT, test: Dataset, collate, cfg: HiTRecipeConfig, device, tiny: bool) -> dict:
    from paperzoo.train.retrieval import retrieval_metrics

    video, text, labels = encode(model, test, collate, cfg.eval.batch_size, device)
    sim = similarity(video, text, cfg.hit.retrieval_level)
    clip_level = retrieval_metrics(sim)  # text i's own video is video i
    if not tiny:
        metrics = dict(clip_level)
    else:
        metrics = class_retrieval_metrics(sim, labels, labels)
        metrics.update({f"clip_{k}": v for k, v in clip_level.items()})
    metrics["mean_R@1"] = (metrics["t2v_R@1"] + metrics["v2t_R@1"]) / 2
    return metrics


def _queue_false_negative(model: HiT, train_labels: torch.Tensor) -> float:
    """Percent of the semantic text queue's entries sharing a train query's class, averaged
    over the train videos (each class weighted by its share of them)."""
    labels = model.queues["semantic_text"].labels
    known = labels[labels >= 0]
    if not known.numel():
        return 0.0
    same = (train_labels[:, None] == known[None, :]).float().mean()
    return 100.0 * same.item()


# -- the run -----------------------------------------------------------------------------------


def build_method(cfg: Any, model: Any) -> HiTMethod:
    """The training method of ``cfg``: its levels, queues, and the text tower's lr scale."""
    return HiTMethod(
        model, levels=cfg.hit.levels, momentum_queues=cfg.hit.momentum_queues,
        text_lr_scale=cfg.text.lr_scale,
    )  # fmt: skip


def run(cfg: HiTRecipeConfig, ctx: RunContext) -> RunResult:
    """Train HiT as ``cfg`` says, then evaluate retrieval; see the module docstring."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    tiny = cfg.data.dataset == "moving_digits"
    if tiny:
        data = _tiny_data(cfg, ctx, ("train", cfg.eval.split))
        train, test, tokenizer = _tiny_sets(cfg, data)
    elif cfg.data.dataset in _RECORDS:
        train, test, tokenizer = _benchmark_sets(cfg)
    else:
        raise ValueError(
            f"unknown data.dataset {cfg.data.dataset!r}; use moving_digits or one of "
            f"{sorted(_RECORDS)}"
        )
    collate = TokenizingCollate(tokenizer, cfg.text.max_length)
    batch = dist_utils.per_process_batch(cfg.global_batch_size, cfg.data.batch_size, ctx.world_size)
    seed_everything(cfg.seed)  # the same initial weights (and queues) on every rank
    model = _build_model(cfg, tokenizer)
    if cfg.hit.momentum_queues and cfg.hit.queue_size % (batch * ctx.world_size):
        raise ValueError(
            f"hit.queue_size {cfg.hit.queue_size} is not a multiple of the global batch "
            f"{batch * ctx.world_size} (MoCo's requirement)"
        )
    method = build_method(cfg, model)
    trainer = Trainer(
        method, train, ctx, cfg.trainer, cfg.optim, batch_size=batch,
        num_workers=cfg.data.num_workers, seed=cfg.seed, drop_last=True, collate_fn=collate,
    )  # fmt: skip
    state = trainer.fit()
    extra: dict[str, Any] = {
        "per_process_batch": batch,
        "train_wall_seconds": round(state.wall_seconds, 2),
        "final_train": {k: float(v) for k, v in dict(state.metrics).items()},
        "vocab_size": len(tokenizer),
        "hit_is_class": tiny,
    }
    metrics: dict[str, float] = {}
    start = time.perf_counter()
    if ctx.is_main:
        metrics.update(_evaluate(model, test, collate, cfg, trainer.device, tiny))
        if tiny:
            train_labels = data["train"][0].labels
            if cfg.hit.momentum_queues:
                metrics["queue_false_negative"] = _queue_false_negative(model, train_labels)
            else:
                fn = state.metrics.get("batch_false_negative")
                if fn is not None:
                    metrics["batch_false_negative"] = 100.0 * float(fn)
    extra["eval_wall_seconds"] = round(time.perf_counter() - start, 2)
    dist_utils.barrier()
    return RunResult(metrics=metrics, steps=state.step, extra=extra)
