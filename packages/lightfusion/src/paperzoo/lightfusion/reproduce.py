"""The runner of the LightFusion recipes: ``run(cfg, ctx) -> RunResult``, one run (one study
cell).

tiny (bundled MNIST digits, pixel space):

1. Pretrain the towers separately (in a study, once per seed under the shared folder, reused
   by both arms): the Wan DiT class-conditionally (:class:`~.method.ClassConditionalWan`,
   rectified flow with shift 4) for ``dit.max_steps``; for the fused arm, the Qwen2 LM on the
   prompts with their answers (:func:`~.data.lm_corpus`) for ``lm.max_steps``.
2. ``dit_alone``: train the DiT ``fusion.max_steps`` more steps on labels. ``fused``: build
   :class:`~.model.LightFusion` from the LM and the DiT (its learned context starts from the
   DiT's null-class context, as the official one starts from a pre-extracted T5 context),
   freeze the LM and train ``fusion.max_steps`` steps on prompts
   (:class:`~.method.LightFusionFlow`).
3. Sample ``eval.num_samples`` digits from the EMA weights: half from prompts that name the
   digit, half from held-out prompts that need the LM (the DiT alone gets each prompt's label)
   and score ``prompt_acc`` / ``prompt_acc_direct`` / ``prompt_acc_lm`` (the shipped digit
   classifier's argmax equals the prompt's digit, GenEval-style) and ``digit_fd``.

paper: the official stage 1 on an image-caption folder, with the two base models, the VAE and
the tokenizer from local folders (see :mod:`.recipes`).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import random
from pathlib import Path
from typing import Any

import torch
from torch import Tensor, nn

from paperzoo.core.config import to_dict
from paperzoo.core.io import atomic_write_json
from paperzoo.core.run import RunContext, RunResult
from paperzoo.lightfusion.data import (
    NAMES,
    PromptDigits,
    WordTokenizer,
    build_prompt_bank,
    lm_corpus,
)
from paperzoo.lightfusion.method import (
    CausalLMPretraining,
    ClassConditionalWan,
    LightFusionFlow,
    WanFlow,
    sample_class_conditional,
    sample_lightfusion,
)
from paperzoo.lightfusion.model import TINY_CONTEXT_LEN, LightFusion, tiny_dit, tiny_lm
from paperzoo.lightfusion.recipes import LightFusionRecipeConfig
from paperzoo.train import Trainer, seed_everything
from paperzoo.train import distributed as dist_utils

__all__ = ["judge_prompts", "run"]


@dataclasses.dataclass
class _Digits:
    x_train: Tensor
    y_train: Tensor
    scored: Tensor
    description: str


def _resize(x: Tensor, size: int) -> Tensor:
    """(N, 1, H, W) -> (N, 1, size, size): area-averaged down, bilinear up (the classifier and
    the Fréchet features read 28 px; real and generated digits go through the same path)."""
    import torch.nn.functional as F

    if x.shape[-1] == size:
        return x
    if x.shape[-1] > size:
        return F.adaptive_avg_pool2d(x, size)
    return F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)


def _digits(cfg: LightFusionRecipeConfig) -> _Digits:
    from paperzoo.data.images import load_mnist_sample, stratified_split
    from paperzoo.train.digit_features import digit_validation_split

    images, labels = load_mnist_sample()
    x = _resize(images.float().div(127.5).sub(1.0).unsqueeze(1), cfg.data.image_size)
    rest, test = digit_validation_split()  # test: the classifier's own 500 held-out digits
    train_part, val_part = stratified_split(labels[rest], 500 / len(rest), seed=1)
    train, val = rest[train_part], rest[val_part]
    scored = test if cfg.split == "test" else val
    return _Digits(x[train], labels[train], x[scored],
                   f"MNIST sample: {len(train)} train, {len(val)} val, {len(test)} test; "
                   f"scored: {cfg.split}")  # fmt: skip


def _cache_dir(cfg: LightFusionRecipeConfig, ctx: RunContext, what: str, keyed: dict) -> Path:
    """A pretraining's folder: under the study's shared folder keyed by its settings and the
    seed (both arms reuse it), else under OUT."""
    if ctx.shared_dir is None:
        return ctx.out_dir / what
    digest = hashlib.sha256(json.dumps(keyed, sort_keys=True).encode()).hexdigest()[:12]
    return ctx.shared_dir / f"{what}_{digest}" / f"seed{cfg.seed}"


def _fit_once(cfg, ctx, out: Path, method: nn.Module, dataset, stage, **kw) -> nn.Module:
    """Train ``method`` for ``stage`` into ``out`` unless ``out/done.json`` exists; returns the
    EMA (or plain) trainable module, loaded from ``out`` when reused."""
    from safetensors.torch import load_file

    from paperzoo.core.checkpoint import load_state_dict_strict
    from paperzoo.train.checkpointing import list_checkpoints

    module = method.trainable_module()
    done = out / "done.json"
    weights = out / ("model_ema.safetensors" if cfg.trainer.ema_decay > 0 else "model.safetensors")
    if done.exists():
        load_state_dict_strict(module, load_file(str(weights)), source=str(weights))
        return module
    resume = ctx.resume or bool(list_checkpoints(out / "checkpoints"))
    batch = dist_utils.per_process_batch(stage.batch_size, cfg.data.batch_size, ctx.world_size)
    trainer = Trainer(
        method, dataset, dataclasses.replace(ctx, out_dir=out, resume=resume),
        dataclasses.replace(cfg.trainer, max_steps=stage.max_steps, epochs=0), stage.optim,
        batch_size=batch, num_workers=cfg.data.num_workers, seed=cfg.seed, **kw,
    )  # fmt: skip
    state = trainer.fit()
    if ctx.is_main:
        atomic_write_json(done, {"train_seconds": state.wall_seconds, "steps": state.step})
    dist_utils.barrier()
    if trainer.ema is not None:
        module.load_state_dict(trainer.ema.module.state_dict())
    return module


def _pretrained_dit(
    cfg: LightFusionRecipeConfig, ctx: RunContext, data: _Digits
) -> ClassConditionalWan:
    from torch.utils.data import TensorDataset

    keyed = {"dit": to_dict(cfg.dit), "trainer": to_dict(cfg.trainer), "shift": cfg.timestep_shift}
    seed_everything(cfg.seed)
    model = ClassConditionalWan(tiny_dit(), 10, context_len=TINY_CONTEXT_LEN,
                                label_dropout=cfg.text_dropout)  # fmt: skip
    method = WanFlow(model, timestep_shift=cfg.timestep_shift)
    out = _cache_dir(cfg, ctx, "dit_pretrain", keyed)
    return _fit_once(cfg, ctx, out, method, TensorDataset(data.x_train, data.y_train), cfg.dit)


def _lm_texts(tok: WordTokenizer, length: int) -> tuple[Tensor, Tensor]:
    """``<bos> prompt <eos> answer`` for every prompt of the bank, right-padded."""
    corpus = lm_corpus(build_prompt_bank())
    ids = torch.zeros(len(corpus), length + 1, dtype=torch.long)
    mask = torch.zeros_like(ids)
    for i, (prompt, d) in enumerate(corpus):
        enc = [*tok.encode(prompt), tok.vocab[NAMES[d]]]
        ids[i, : len(enc)], mask[i, : len(enc)] = torch.tensor(enc), 1
    return ids, mask


def _pretrained_lm(cfg: LightFusionRecipeConfig, ctx: RunContext, tok: WordTokenizer) -> nn.Module:
    from torch.utils.data import TensorDataset

    keyed = {"lm": to_dict(cfg.lm), "trainer": to_dict(cfg.trainer), "len": cfg.max_text_length}
    seed_everything(cfg.seed + 1000)
    lm = tiny_lm(vocab_size=len(tok))
    ids, mask = _lm_texts(tok, cfg.max_text_length)
    # The corpus is small (~200 texts): repeat it so one epoch holds many batches.
    reps = max(1, (cfg.lm.batch_size * 20) // len(ids))
    dataset = TensorDataset(ids.repeat(reps, 1), mask.repeat(reps, 1))
    out = _cache_dir(cfg, ctx, "lm_pretrain", keyed)
    return _fit_once(cfg, ctx, out, CausalLMPretraining(lm), dataset, cfg.lm)


def _eval_prompts(cfg: LightFusionRecipeConfig) -> tuple[Tensor, list[str], Tensor]:
    """labels (N,) i mod 10, prompts, and which of them need the LM (N,) bool."""
    bank = build_prompt_bank()
    n = cfg.eval.num_samples
    labels = torch.arange(n) % 10
    needs_lm = torch.arange(n) >= n // 2
    rng = random.Random(12_345 + cfg.seed)
    prompts = [rng.choice((bank.test_lm if lm else bank.direct)[int(y)])
               for y, lm in zip(labels, needs_lm)]  # fmt: skip
    return labels, prompts, needs_lm


def judge_prompts(images: Tensor, labels: Tensor) -> Tensor:
    """(N, 1, 28, 28) in [-1, 1], (N,) -> (N,) bool: the shipped digit classifier's argmax is
    the prompt's digit (a GenEval-style judged accuracy)."""
    from paperzoo.train.digit_features import digit_classifier

    clf = digit_classifier()
    with torch.no_grad():
        pred = torch.cat([clf((x.clamp(-1, 1) + 1) / 2).argmax(1) for x in images.split(500)])
    return pred == labels


def _lm_answer_acc(lm: nn.Module, tok: WordTokenizer, prompts: list[str], labels: Tensor,
                   length: int) -> float:  # fmt: skip
    ids, mask = tok.batch(prompts, length)
    with torch.no_grad():
        logits = lm(input_ids=ids, attention_mask=mask).logits
    last = mask.sum(1) - 1  # the <eos> position predicts the answer word
    pred = logits[torch.arange(len(ids)), last].argmax(-1)
    answers = torch.tensor([tok.vocab[NAMES[int(y)]] for y in labels])
    return float((pred == answers).float().mean())


def _run_tiny(cfg: LightFusionRecipeConfig, ctx: RunContext) -> RunResult:
    from paperzoo.gen.grid import save_grid
    from paperzoo.train.digit_features import digit_frechet_distance

    data = _digits(cfg)
    tok = WordTokenizer()
    dit = _pretrained_dit(cfg, ctx, data)
    labels, prompts, needs_lm = _eval_prompts(cfg)
    s = cfg.sample
    gen = torch.Generator().manual_seed(10_000 * (cfg.seed + 1))
    extra: dict[str, Any] = {"data": data.description}
    metrics: dict[str, float] = {}
    size = cfg.data.image_size
    shape = (1, 1, size, size)
    if cfg.arm == "dit_alone":
        from torch.utils.data import TensorDataset

        seed_everything(cfg.seed + 1)
        method = WanFlow(dit, timestep_shift=cfg.timestep_shift)
        model = _fit_once(cfg, ctx, ctx.out_dir / "train", method,
                          TensorDataset(data.x_train, data.y_train), cfg.fusion)  # fmt: skip
        chunks = [sample_class_conditional(model, y, shape=(len(y), *shape), steps=s.steps,
                                           timestep_shift=cfg.timestep_shift,
                                           cfg_scale=s.text_scale, generator=gen)
                  for y in labels.split(cfg.eval.batch_size)]  # fmt: skip
    elif cfg.arm == "fused":
        lm = _pretrained_lm(cfg, ctx, tok)
        seed_everything(cfg.seed + 2)
        fused = LightFusion(lm, dit.dit, fusion_mode=cfg.fusion_mode, context_len=TINY_CONTEXT_LEN)
        with torch.no_grad():
            fused.vgen_model_cross_att_context.copy_(dit.class_context[dit.num_classes])
        null = torch.tensor(tok.encode(""))
        method = LightFusionFlow(fused, null_ids=null, timestep_shift=cfg.timestep_shift,
                                 text_dropout=cfg.text_dropout)  # fmt: skip
        train = PromptDigits(data.x_train, data.y_train, build_prompt_bank().train, tok,
                             max_length=cfg.max_text_length, seed=cfg.seed)  # fmt: skip
        model = _fit_once(cfg, ctx, ctx.out_dir / "train", method, train, cfg.fusion)
        metrics["lm_answer_acc"] = _lm_answer_acc(lm, tok, [p for p, m in zip(prompts, needs_lm) if m],
                                                  labels[needs_lm], cfg.max_text_length)  # fmt: skip
        ids, mask = tok.batch(prompts, cfg.max_text_length)
        chunks = []
        for sl in torch.arange(len(labels)).split(cfg.eval.batch_size):
            n = len(sl)
            null_ids, null_mask = method.drop_text(
                ids[sl], mask[sl], torch.ones(n, dtype=torch.bool)
            )
            chunks.append(sample_lightfusion(
                model, {"input_ids": ids[sl], "attention_mask": mask[sl]},
                {"input_ids": null_ids, "attention_mask": null_mask}, shape=(n, 1, *shape[1:]),
                steps=s.steps, timestep_shift=cfg.timestep_shift, text_scale=s.text_scale,
                cfg_interval=tuple(s.cfg_interval), renorm=s.renorm, renorm_min=s.renorm_min,
                generator=gen,
            ))  # fmt: skip
    else:
        raise ValueError(f"unknown arm {cfg.arm!r}: 'fused' or 'dit_alone'")
    images = _resize(torch.cat(chunks).reshape(len(labels), 1, size, size), 28)
    correct = judge_prompts(images, labels).float()
    metrics.update(
        prompt_acc=float(correct.mean()),
        prompt_acc_direct=float(correct[~needs_lm].mean()),
        prompt_acc_lm=float(correct[needs_lm].mean()),
        digit_fd=digit_frechet_distance(
            images.clamp(-1, 1), _resize(data.scored, 28), value_range=(-1, 1)
        ),
    )
    if ctx.is_main:
        order = torch.cat([torch.nonzero(needs_lm).flatten()[: cfg.eval.grid // 2],
                           torch.nonzero(~needs_lm).flatten()[: cfg.eval.grid // 2]])  # fmt: skip
        save_grid(images[order], ctx.out_dir / "samples.png", nrow=10)
        (ctx.out_dir / "prompts.json").write_text(json.dumps([prompts[i] for i in order]))
    extra["scored_split"] = cfg.split
    return RunResult(metrics=metrics, steps=cfg.dit.max_steps + cfg.fusion.max_steps, extra=extra)


def run(cfg: LightFusionRecipeConfig, ctx: RunContext) -> RunResult:
    """One run: see the module docstring."""
    if cfg.torch_threads > 0:
        torch.set_num_threads(cfg.torch_threads)
    if cfg.model == "tiny":
        return _run_tiny(cfg, ctx)
    if cfg.model == "paper":
        from paperzoo.lightfusion.paper import run_paper

        return run_paper(cfg, ctx)
    raise ValueError(f"unknown model {cfg.model!r}: 'tiny' or 'paper'")
