"""The one training loop every paperzoo paper uses.

A *method* is an ``nn.Module`` with::

    training_step(self, batch, step: int) -> dict[str, Tensor]   # must hold "loss"
    on_after_optimizer_step(self, step: int)      # optional: momentum encoders, queues, ...
    param_groups(self) -> list[dict]              # optional: custom optimizer groups
    trainable_module(self) -> nn.Module           # optional: what model.safetensors holds
    fsdp_modules(self) -> list[nn.Module]         # optional: FSDP2 units (e.g. the blocks)
    ema_module(self) -> nn.Module                 # optional: what the EMA averages (default:
                                                  # trainable_module())

``step`` is the 0-based index of the optimizer step being taken; ``on_after_optimizer_step``
receives the same index once that step has been applied. Everything a method must carry across
a resume has to live in its parameters or buffers (or ``get_extra_state``), because the
checkpoint stores ``method.state_dict()``.

A method with *several optimizers* (a GAN's generator and discriminator) opts in with::

    optimizer_param_groups(self) -> dict[str, list[dict]]   # {"discriminator": [...], ...}
    training_step(self, batch, step: int, optimizer: str) -> dict[str, Tensor]
    on_after_optimizer_step(self, step: int, optimizer: str)  # optional

and the Trainer then takes ``optim_cfg={name: OptimConfig}`` (each its own lr, betas, weight
decay, schedule and warm-up), optional per-name ``clip_grad_norm`` and a ``step_plan``
(:mod:`paperzoo.train.gan`; default ``GanStepPlan()`` for the names ``discriminator`` and
``generator``) that picks the optimizer of each trainer step. ``training_step`` returns the
loss of that optimizer; only that optimizer steps (the others' gradients are discarded), its
scheduler counts its own steps, and the EMA (of ``ema_module()``, e.g. the generator) is
updated only after steps of an optimizer that holds some of its parameters.
``trainer.max_steps`` counts trainer steps, all optimizers together.

The :class:`Trainer` owns the rest: the (distributed) sampler and DataLoader, the optimizer and
per-step LR schedule, AMP, gradient accumulation and clipping, EMA, ``torch.compile``, DDP /
FSDP2 / SyncBN under torchrun, logging, and atomic checkpoints from which ``resume``
continues bit for bit (see :mod:`paperzoo.train.checkpointing`, :mod:`paperzoo.train.sampling`).
"""

from __future__ import annotations

import contextlib
import itertools
import math
import os
import sys
import time
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from paperzoo.core.checkpoint import CheckpointMismatchError, load_state_dict_strict
from paperzoo.core.config import OptimConfig, TrainerConfig
from paperzoo.core.run import RunContext
from paperzoo.train import distributed as dist_utils
from paperzoo.train.checkpointing import (
    CHECKPOINT_FORMAT,
    CheckpointSaveError,
    checkpoint_path,
    list_checkpoints,
    load_training_checkpoint,
    prune_checkpoints,
    save_model_safetensors,
    save_training_checkpoint,
)
from paperzoo.train.gan import GanStepPlan, StepPlan
from paperzoo.train.metrics_log import MetricsWriter, plot_loss_curve
from paperzoo.train.optim import build_optimizer, build_scheduler, scaled_lr
from paperzoo.train.sampling import ResumableDistributedSampler, SeededDataset
from paperzoo.train.seeding import derive_seed, get_rng_state, seed_everything, set_rng_state

__all__ = ["TrainState", "Trainer"]


@dataclass
class TrainState:
    """Where training stands. ``step`` counts trainer steps done (one optimizer step each)."""

    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0  # micro-batches of ``epoch`` already consumed (this rank)
    max_steps: int = 0
    steps_per_epoch: int = 0  # optimizer steps per epoch
    resumed_from: str | None = None
    last_checkpoint: str | None = None
    metrics: dict[str, float] = field(default_factory=dict)  # last logged training scalars
    eval_metrics: dict[str, float] = field(default_factory=dict)  # last eval_fn result
    wall_seconds: float = 0.0


class _StepAdapter(nn.Module):
    """Routes ``forward`` to ``method.training_step`` so DDP/FSDP/compile hooks see the step."""

    def __init__(self, method: nn.Module) -> None:
        super().__init__()
        self.method = method

    def forward(self, batch: Any, step: int, optimizer: str | None = None) -> Any:
        if optimizer is None:
            return self.method.training_step(batch, step)
        return self.method.training_step(batch, step, optimizer=optimizer)


@dataclass
class _OptimSlot:
    """One optimizer with what belongs to it: schedule, grad scaler, clipping, its own counts."""

    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LambdaLR
    scaler: torch.amp.GradScaler
    params: list[torch.Tensor]
    peak_lr: float
    warmup_steps: int
    max_steps: int  # this optimizer's own steps in the run
    clip_grad_norm: float
    updates_ema: bool = True


_SINGLE = "default"  # the key of a single-optimizer method's optimizer in ``Trainer.optimizers``


def _to_device(batch: Any, device: torch.device) -> Any:
    if isinstance(batch, torch.Tensor):
        return batch.to(device, non_blocking=True)
    if isinstance(batch, Mapping):
        return type(batch)({k: _to_device(v, device) for k, v in batch.items()})  # type: ignore[call-arg]
    if isinstance(batch, tuple) and hasattr(batch, "_fields"):  # namedtuple
        return type(batch)(*(_to_device(v, device) for v in batch))
    if isinstance(batch, (list, tuple)):
        return type(batch)(_to_device(v, device) for v in batch)
    return batch


def _module_prefix(root: nn.Module, target: nn.Module, what: str = "trainable_module") -> str:
    if target is root:
        return ""
    for name, mod in root.named_modules():
        if mod is target:
            return name + "."
    raise ValueError(
        f"{type(root).__name__}.{what}() returned a module that is not a submodule of it"
    )


class Trainer:
    """Train ``method`` on ``train_dataset`` for ``trainer_cfg.max_steps`` optimizer steps.

    Args:
        method: the method module (see the module docstring).
        train_dataset: a map-style dataset; items are collated by ``collate_fn`` (default
            torch's) into the ``batch`` passed to ``training_step`` (moved to the device).
        ctx: the run's context; outputs go under ``ctx.out_dir``, ``ctx.resume`` resumes from the
            newest checkpoint in ``ctx.checkpoint_dir``.
        trainer_cfg, optim_cfg: the recipe's sections; for a method with
            ``optimizer_param_groups()``, ``optim_cfg`` maps each of its names to an
            ``OptimConfig``.
        batch_size: per process and per micro-batch; the global batch is
            ``batch_size * world_size * grad_accum_steps``.
        seed: seeds data order, augmentation and the training RNG (offset per rank).
        eval_fn: optional ``fn(trainer) -> dict[str, float]``, called on every rank every
            ``trainer_cfg.eval_every`` steps and at the end; results are logged as ``eval/*``.
        step_plan: several optimizers only: which one steps at each trainer step (default
            ``GanStepPlan()`` when the names are ``discriminator`` and ``generator``).
        clip_grad_norm: several optimizers only: per-name max gradient norm (0: no clipping);
            names left out use ``trainer_cfg.clip_grad_norm``.

    Metrics of a several-optimizer method are logged per optimizer as ``NAME/KEY`` (its
    ``training_step`` outputs, averaged over its steps in the window) with ``NAME/lr``,
    ``NAME/grad_norm`` and ``NAME/steps``.
    """

    def __init__(
        self,
        method: nn.Module,
        train_dataset: Any,
        ctx: RunContext,
        trainer_cfg: TrainerConfig,
        optim_cfg: OptimConfig | Mapping[str, OptimConfig],
        *,
        batch_size: int,
        num_workers: int = 0,
        collate_fn: Callable[[list[Any]], Any] | None = None,
        seed: int = 0,
        drop_last: bool = True,
        eval_fn: Callable[[Trainer], Mapping[str, float]] | None = None,
        step_plan: StepPlan | None = None,
        clip_grad_norm: Mapping[str, float] | None = None,
    ) -> None:
        if not callable(getattr(method, "training_step", None)):
            raise TypeError(
                f"{type(method).__name__} is not a paperzoo method: it needs "
                "training_step(batch, step) -> dict with a 'loss' tensor"
            )
        if batch_size < 1:
            raise ValueError(f"batch_size must be >= 1, got {batch_size}")
        if trainer_cfg.grad_accum_steps < 1:
            raise ValueError(
                f"trainer.grad_accum_steps must be >= 1, got {trainer_cfg.grad_accum_steps}"
            )
        try:
            n = len(train_dataset)
        except TypeError:
            raise TypeError(
                f"train_dataset must be a map-style dataset with __len__, got {type(train_dataset).__name__}"
            ) from None
        if n == 0:
            raise ValueError(
                "the training dataset is empty: check the data path / filters before training"
            )
        named_groups = getattr(method, "optimizer_param_groups", None)
        self.multi_optimizer = callable(named_groups)
        if not self.multi_optimizer:
            if isinstance(optim_cfg, Mapping):
                raise TypeError(
                    f"optim_cfg maps optimizer names {sorted(optim_cfg)} but "
                    f"{type(method).__name__} has one optimizer (it defines no "
                    "optimizer_param_groups()); pass a single OptimConfig"
                )
            if step_plan is not None or clip_grad_norm is not None:
                raise TypeError(
                    f"step_plan and clip_grad_norm= are for methods with several optimizers; "
                    f"{type(method).__name__} defines no optimizer_param_groups() (use "
                    "trainer.clip_grad_norm)"
                )
        self.cfg = trainer_cfg
        self.optim_cfg = optim_cfg
        self.ctx = ctx
        self.seed = seed
        self.batch_size = batch_size
        self.eval_fn = eval_fn
        self.out_dir = Path(ctx.out_dir)

        info = dist_utils.init_distributed(trainer_cfg.device)
        self.rank, self.world_size, self.device = info.rank, info.world_size, info.device
        self.is_main = self.rank == 0
        self.amp_dtype = self._resolve_amp(trainer_cfg.amp)

        # -- data -----------------------------------------------------------------------------
        self.sampler = ResumableDistributedSampler(
            train_dataset,
            num_replicas=self.world_size,
            rank=self.rank,
            shuffle=True,
            seed=seed,
            per_sample_seeds=trainer_cfg.deterministic_data,
        )
        dataset = SeededDataset(train_dataset) if trainer_cfg.deterministic_data else train_dataset
        self._loader_generator = torch.Generator()
        self.loader = DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=self.sampler,
            num_workers=num_workers,
            collate_fn=collate_fn,
            drop_last=drop_last,
            pin_memory=self.device.type == "cuda",
            generator=self._loader_generator,
        )
        per_rank = self.sampler.num_samples
        self.batches_per_epoch = (
            per_rank // batch_size if drop_last else math.ceil(per_rank / batch_size)
        )
        if self.batches_per_epoch == 0:
            raise ValueError(
                f"the dataset has {n} samples, {per_rank} per process, fewer than one batch of "
                f"{batch_size}; lower batch_size or pass drop_last=False"
            )
        accum = trainer_cfg.grad_accum_steps
        self.steps_per_epoch = max(1, self.batches_per_epoch // accum)
        self.max_steps = (
            trainer_cfg.epochs * self.steps_per_epoch
            if trainer_cfg.epochs > 0
            else trainer_cfg.max_steps
        )
        if self.max_steps < 1:
            raise ValueError("nothing to train: set trainer.max_steps or trainer.epochs to >= 1")
        self.global_batch = batch_size * self.world_size * accum

        # -- model and wrapping ---------------------------------------------------------------
        method = method.to(self.device)
        self.strategy = self._resolve_strategy(trainer_cfg.strategy)
        if trainer_cfg.sync_bn and self.world_size > 1:
            if self.device.type == "cuda":  # torch's fused CUDA kernels
                method = nn.SyncBatchNorm.convert_sync_batchnorm(method)
            else:  # torch's has no CPU kernel; ours runs on gloo (paperzoo.train.sync_bn)
                from paperzoo.train.sync_bn import convert_sync_batchnorm

                method = convert_sync_batchnorm(method)
        self.model = method  # the unwrapped method; checkpoints and model.safetensors come from it
        adapter = _StepAdapter(method)
        if self.strategy == "ddp":
            from torch.nn.parallel import DistributedDataParallel

            self._step_module: nn.Module = DistributedDataParallel(
                adapter,
                device_ids=[self.device.index] if self.device.type == "cuda" else None,
                # With several optimizers a step leaves some parameters without a gradient
                # (the generator's on a discriminator step), which plain DDP rejects.
                find_unused_parameters=trainer_cfg.find_unused_parameters or self.multi_optimizer,
            )
        elif self.strategy == "fsdp":
            self._step_module = self._apply_fsdp(adapter)
        else:
            self._step_module = adapter
        if trainer_cfg.compile:
            self._step_module = torch.compile(  # type: ignore[assignment]
                self._step_module,
                backend=trainer_cfg.compile_backend,
                mode=trainer_cfg.compile_mode,
            )

        # -- optimization ---------------------------------------------------------------------
        self.step_plan: StepPlan | None = None
        if self.multi_optimizer:
            assert callable(named_groups)
            self._slots = self._build_named_optimizers(
                named_groups(), optim_cfg, step_plan, clip_grad_norm
            )
        else:
            assert isinstance(optim_cfg, OptimConfig)
            self.peak_lr = scaled_lr(optim_cfg, self.global_batch)
            self.optimizer = build_optimizer(self.model, optim_cfg, lr=self.peak_lr)
            warmup = optim_cfg.warmup_steps or round(optim_cfg.warmup_epochs * self.steps_per_epoch)
            self.warmup_steps = int(warmup)
            self.scheduler = build_scheduler(
                self.optimizer, optim_cfg, max_steps=self.max_steps,
                warmup_steps=self.warmup_steps, peak_lr=self.peak_lr,
            )  # fmt: skip
            self.scaler = torch.amp.GradScaler(
                self.device.type, enabled=self.amp_dtype == torch.float16
            )
            self._params = [p for g in self.optimizer.param_groups for p in g["params"]]
            self._slots = {
                _SINGLE: _OptimSlot(
                    self.optimizer,
                    self.scheduler,
                    self.scaler,
                    self._params,
                    self.peak_lr,
                    self.warmup_steps,
                    self.max_steps,
                    trainer_cfg.clip_grad_norm,
                )
            }
        # name -> optimizer / scheduler / grad scaler ({"default": ...} with one optimizer)
        self.optimizers = {n: slot.optimizer for n, slot in self._slots.items()}
        self.schedulers = {n: slot.scheduler for n, slot in self._slots.items()}
        self.scalers = {n: slot.scaler for n, slot in self._slots.items()}
        self.ema: torch.optim.swa_utils.AveragedModel | None = None
        if trainer_cfg.ema_reload_every < 0:
            raise ValueError(
                f"trainer.ema_reload_every must be >= 0, got {trainer_cfg.ema_reload_every}"
            )
        if trainer_cfg.ema_reload_every > 0 and trainer_cfg.ema_decay <= 0:
            raise ValueError("trainer.ema_reload_every > 0 needs an EMA: set trainer.ema_decay > 0")
        if trainer_cfg.ema_decay > 0:
            if self.strategy == "fsdp":
                raise ValueError("trainer.ema_decay > 0 is not supported with strategy='fsdp'")
            from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn

            target = self.ema_module()
            if callable(getattr(self.model, "ema_module", None)):
                _module_prefix(self.model, target, "ema_module")
            self.ema = AveragedModel(
                target,
                multi_avg_fn=get_ema_multi_avg_fn(trainer_cfg.ema_decay),
                use_buffers=True,
            )
            if self.multi_optimizer:  # average after the steps that change the EMA target only
                averaged = {id(p) for p in target.parameters()}
                for slot in self._slots.values():
                    slot.updates_ema = any(id(p) in averaged for p in slot.params)
        self.state = TrainState(max_steps=self.max_steps, steps_per_epoch=self.steps_per_epoch)

    # -- configuration helpers -------------------------------------------------------------------

    def _resolve_amp(self, amp: str) -> torch.dtype | None:
        if amp == "auto":
            return torch.bfloat16 if self.device.type == "cuda" else None
        if amp == "off":
            return None
        if amp == "bf16":
            return torch.bfloat16
        if amp == "fp16":
            return torch.float16
        raise ValueError(f"trainer.amp must be 'auto', 'off', 'bf16' or 'fp16', got {amp!r}")

    def _resolve_strategy(self, strategy: str) -> str:
        if strategy == "auto":
            return "ddp" if self.world_size > 1 else "none"
        if strategy in ("ddp", "fsdp"):
            # Alone there is nothing to replicate or shard (and FSDP would need a process group).
            return strategy if self.world_size > 1 else "none"
        if strategy == "none":
            if self.world_size > 1:
                warnings.warn(
                    "trainer.strategy='none' under torchrun: ranks train independently",
                    stacklevel=3,
                )
            return "none"
        raise ValueError(
            f"trainer.strategy must be 'auto', 'ddp', 'fsdp' or 'none', got {strategy!r}"
        )

    def _apply_fsdp(self, adapter: _StepAdapter) -> nn.Module:
        from torch.distributed.device_mesh import init_device_mesh
        from torch.distributed.fsdp import MixedPrecisionPolicy, fully_shard

        mesh = init_device_mesh(self.device.type, (self.world_size,))
        kwargs: dict[str, Any] = {"mesh": mesh}
        if self.amp_dtype is not None:
            kwargs["mp_policy"] = MixedPrecisionPolicy(
                param_dtype=self.amp_dtype, reduce_dtype=torch.float32
            )
        units = getattr(self.model, "fsdp_modules", None)
        for unit in units() if callable(units) else []:
            fully_shard(unit, **kwargs)
        fully_shard(adapter, **kwargs)
        return adapter

    def _build_named_optimizers(
        self,
        groups_by_name: Mapping[str, Any],
        optim_cfg: OptimConfig | Mapping[str, OptimConfig],
        step_plan: StepPlan | None,
        clip_grad_norm: Mapping[str, float] | None,
    ) -> dict[str, _OptimSlot]:
        """One optimizer, schedule and grad scaler per name of ``optimizer_param_groups()``."""
        method = type(self.model).__name__
        if not isinstance(groups_by_name, Mapping) or not groups_by_name:
            raise TypeError(
                f"{method}.optimizer_param_groups() must return a non-empty dict "
                "{name: [param group dicts]}"
            )
        names = sorted(groups_by_name)
        if not isinstance(optim_cfg, Mapping):
            raise TypeError(
                f"{method}.optimizer_param_groups() names the optimizers {names}: pass optim_cfg "
                "as a mapping {name: OptimConfig} with those names"
            )
        if sorted(optim_cfg) != names:
            raise ValueError(
                f"the optimizer configs are named {sorted(optim_cfg)} but "
                f"{method}.optimizer_param_groups() names {names}; give one OptimConfig per name"
            )
        if step_plan is None:
            if names != ["discriminator", "generator"]:
                raise ValueError(
                    f"{method} has the optimizers {names}: pass step_plan= (a "
                    "paperzoo.train.gan.StepPlan) to say which one steps when"
                )
            step_plan = GanStepPlan()
        if sorted(step_plan.names) != names:
            raise ValueError(
                f"the step plan {step_plan!r} steps the optimizers {sorted(step_plan.names)} but "
                f"{method}.optimizer_param_groups() names {names}"
            )
        clip = dict(clip_grad_norm or {})
        if unknown := sorted(set(clip) - set(names)):
            raise ValueError(
                f"clip_grad_norm names {unknown}, not optimizers of {method} (those are {names})"
            )
        self.step_plan = step_plan
        slots: dict[str, _OptimSlot] = {}
        owner: dict[int, str] = {}
        for name in names:
            cfg = optim_cfg[name]
            peak = scaled_lr(cfg, self.global_batch)
            optimizer = build_optimizer(
                self.model, cfg, lr=peak, param_groups=groups_by_name[name],
                source=f"optimizer_param_groups()[{name!r}]",
            )  # fmt: skip
            params = [p for g in optimizer.param_groups for p in g["params"]]
            for p in params:
                if owner.setdefault(id(p), name) != name:
                    raise ValueError(
                        f"{method}.optimizer_param_groups(): a parameter of shape "
                        f"{tuple(p.shape)} is in both {owner[id(p)]!r} and {name!r}; each "
                        "parameter belongs to one optimizer"
                    )
            # Each schedule runs over that optimizer's own steps (warm-up included).
            own_steps = step_plan.steps_of(name, self.max_steps)
            warmup = cfg.warmup_steps or round(
                cfg.warmup_epochs * self.steps_per_epoch * own_steps / self.max_steps
            )
            scheduler = build_scheduler(
                optimizer, cfg, max_steps=own_steps, warmup_steps=int(warmup), peak_lr=peak
            )
            scaler = torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16)
            slots[name] = _OptimSlot(
                optimizer, scheduler, scaler, params, peak, int(warmup), own_steps,
                float(clip.get(name, self.cfg.clip_grad_norm)),
            )  # fmt: skip
        return slots

    def trainable_module(self) -> nn.Module:
        """What ``model.safetensors`` holds: ``method.trainable_module()`` or the method."""
        fn = getattr(self.model, "trainable_module", None)
        return fn() if callable(fn) else self.model

    def ema_module(self) -> nn.Module:
        """What the EMA averages: ``method.ema_module()`` or :meth:`trainable_module`."""
        fn = getattr(self.model, "ema_module", None)
        return fn() if callable(fn) else self.trainable_module()

    # -- state dicts (full, also under FSDP) -----------------------------------------------------

    def _model_state(self) -> dict[str, Any]:
        if self.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_model_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_model_state_dict(self.model, options=opts)
        return {k: v.detach().cpu().clone() for k, v in self.model.state_dict().items()}

    def _optim_state(self, optimizer: torch.optim.Optimizer) -> dict[str, Any]:
        if self.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                get_optimizer_state_dict,
            )

            opts = StateDictOptions(full_state_dict=True, cpu_offload=True)
            return get_optimizer_state_dict(self.model, optimizer, options=opts)
        return optimizer.state_dict()

    def _load_model_state(self, state: Mapping[str, Any], source: str) -> None:
        if self.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_model_state_dict,
            )

            own = set(self.model.state_dict())
            if own != set(state):
                # Reuse the core's message listing missing/unexpected keys.
                load_state_dict_strict(_KeysOnly(own), state, source=source)
            set_model_state_dict(
                self.model, dict(state), options=StateDictOptions(full_state_dict=True)
            )
            return
        load_state_dict_strict(self.model, state, source=source)

    def _load_optim_state(self, optimizer: torch.optim.Optimizer, state: Mapping[str, Any]) -> None:
        if self.strategy == "fsdp":
            from torch.distributed.checkpoint.state_dict import (
                StateDictOptions,
                set_optimizer_state_dict,
            )

            set_optimizer_state_dict(
                self.model,
                optimizer,
                dict(state),
                options=StateDictOptions(full_state_dict=True),
            )
            return
        optimizer.load_state_dict(dict(state))

    # -- checkpoints -------------------------------------------------------------------------------

    def save_checkpoint(self) -> Path:
        """Write ``checkpoints/step_XXXXXXX.pt`` atomically (rank 0) and prune old ones.

        Every rank must call it (RNG states and FSDP shards are gathered). Raises
        :class:`CheckpointSaveError` on every rank if the write failed.
        """
        s = self.state
        rng = dist_utils.all_gather_object(get_rng_state())
        model_state = self._model_state()
        optim_states = {n: self._optim_state(slot.optimizer) for n, slot in self._slots.items()}
        path = checkpoint_path(self.ctx.checkpoint_dir, s.step)
        error: str | None = None
        if self.is_main:
            optim_part: dict[str, Any]
            if self.step_plan is None:
                optim_part = {
                    "optimizer": optim_states[_SINGLE],
                    "scheduler": self.scheduler.state_dict(),
                    "scaler": self.scaler.state_dict() if self.scaler.is_enabled() else {},
                }
            else:
                # Per optimizer name. The plan's position is a function of the step; its
                # description is kept to warn when a resume changes it.
                optim_part = {
                    "optimizer_names": list(self._slots),
                    "step_plan": self.step_plan.describe(),
                    "optimizer": optim_states,
                    "scheduler": {n: v.scheduler.state_dict() for n, v in self._slots.items()},
                    "scaler": {
                        n: v.scaler.state_dict() if v.scaler.is_enabled() else {}
                        for n, v in self._slots.items()
                    },
                }
            payload = {
                "format": CHECKPOINT_FORMAT,
                "step": s.step,
                "epoch": s.epoch,
                "batch_in_epoch": s.batch_in_epoch,
                "world_size": self.world_size,
                "batch_size": self.batch_size,
                "seed": self.seed,
                "method": type(self.model).__name__,
                "model": model_state,
                **optim_part,
                "ema": self.ema.state_dict() if self.ema is not None else {},
                "rng": rng,
            }
            try:
                save_training_checkpoint(path, payload)
                prune_checkpoints(self.ctx.checkpoint_dir, self.cfg.keep_checkpoints)
            except CheckpointSaveError as exc:
                error = str(exc)
        error = dist_utils.broadcast_object(error)  # type: ignore[assignment]
        if error is not None:
            raise CheckpointSaveError(error)
        s.last_checkpoint = str(path)
        return path

    def load_checkpoint(self, path: str | os.PathLike[str]) -> None:
        """Restore everything :meth:`save_checkpoint` wrote; the next step continues exactly."""
        payload = load_training_checkpoint(path)
        self._load_model_state(
            payload["model"], source=f"checkpoint {path} ({payload.get('method')})"
        )
        self._load_optim_states(payload, path)
        if self.ema is not None:
            if not payload["ema"]:
                raise CheckpointMismatchError(
                    f"{path} holds no EMA weights but trainer.ema_decay > 0; resume with "
                    "ema_decay=0 or start a new run"
                )
            load_state_dict_strict(self.ema, payload["ema"], source=f"EMA in {path}")
        exact = (
            payload["world_size"] == self.world_size and payload["batch_size"] == self.batch_size
        )
        if exact:
            set_rng_state(payload["rng"][self.rank])
        else:
            warnings.warn(
                f"resuming {path} (world_size {payload['world_size']}, batch {payload['batch_size']}) "
                f"with world_size {self.world_size}, batch {self.batch_size}: the data order and RNG "
                "streams differ from the original run, so resume is not bit-exact",
                stacklevel=2,
            )
            seed_everything(derive_seed(self.seed, self.rank, payload["step"]))
        self.state.step = int(payload["step"])
        self.state.epoch = int(payload["epoch"])
        self.state.batch_in_epoch = int(payload["batch_in_epoch"]) if exact else 0
        if not exact:
            self.state.epoch += 1
        self.state.resumed_from = str(path)

    def _load_optim_states(self, payload: Mapping[str, Any], path: str | os.PathLike[str]) -> None:
        names = payload.get("optimizer_names")
        if self.step_plan is None:
            if names is not None:
                raise CheckpointMismatchError(
                    f"{path} was written by a method with the optimizers {list(names)}, but "
                    f"{type(self.model).__name__} has one optimizer"
                )
            self._load_optim_state(self.optimizer, payload["optimizer"])
            self.scheduler.load_state_dict(payload["scheduler"])
            if self.scaler.is_enabled() and payload["scaler"]:
                self.scaler.load_state_dict(payload["scaler"])
            return
        if names is None or sorted(names) != sorted(self._slots):
            found = "one optimizer" if names is None else f"the optimizers {sorted(names)}"
            raise CheckpointMismatchError(
                f"{path} was written by a method with {found}, but "
                f"{type(self.model).__name__} has the optimizers {sorted(self._slots)}"
            )
        for name, slot in self._slots.items():
            self._load_optim_state(slot.optimizer, payload["optimizer"][name])
            slot.scheduler.load_state_dict(payload["scheduler"][name])
            if slot.scaler.is_enabled() and payload["scaler"][name]:
                slot.scaler.load_state_dict(payload["scaler"][name])
        if payload.get("step_plan") != self.step_plan.describe():
            warnings.warn(
                f"{path} was trained with the step plan {payload.get('step_plan')}, resuming "
                f"with {self.step_plan.describe()}: the run differs from either plan alone",
                stacklevel=3,
            )

    def _resume_if_asked(self) -> bool:
        if not self.ctx.resume:
            return False
        found = list_checkpoints(self.ctx.checkpoint_dir)
        if not found:
            if self.is_main:
                warnings.warn(
                    f"resume requested but {self.ctx.checkpoint_dir} holds no checkpoint; "
                    "starting from step 0",
                    stacklevel=3,
                )
            return False
        # Atomic writes mean the newest should always be complete; fall back anyway in case a
        # file was damaged after it was written.
        for path in reversed(found):
            try:
                load_training_checkpoint(path)
            except CheckpointMismatchError as exc:
                warnings.warn(f"skipping unreadable checkpoint: {exc}", stacklevel=3)
                continue
            self.load_checkpoint(path)
            return True
        raise CheckpointMismatchError(f"no readable checkpoint in {self.ctx.checkpoint_dir}")

    # -- the loop ----------------------------------------------------------------------------------

    def _batches(self) -> Any:
        """Yield micro-batches forever, tracking epoch / position and reseeding per epoch."""
        s = self.state
        while True:
            if s.batch_in_epoch >= self.batches_per_epoch:
                s.epoch += 1
                s.batch_in_epoch = 0
            self.sampler.set_epoch(s.epoch, start=s.batch_in_epoch * self.batch_size)
            # The DataLoader draws its workers' base seed from this generator, so worker RNG
            # depends only on (seed, epoch, rank), never on the global RNG.
            self._loader_generator.manual_seed(derive_seed(self.seed, s.epoch, self.rank))
            for batch in self.loader:
                s.batch_in_epoch += 1
                yield batch
            s.batch_in_epoch = self.batches_per_epoch

    def _autocast(self) -> contextlib.AbstractContextManager[Any]:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.amp_dtype)

    def _no_sync(self, last_micro: bool) -> contextlib.AbstractContextManager[Any]:
        if last_micro or self.strategy != "ddp":
            return contextlib.nullcontext()
        ddp = getattr(self._step_module, "_orig_mod", self._step_module)
        return ddp.no_sync()

    def fit(self) -> TrainState:
        """Train to ``max_steps`` (resuming first if ``ctx.resume``); return the final state.

        A fresh run seeds python/numpy/torch from (seed, rank) here; a resumed run restores the
        generators from the checkpoint instead.
        """
        start_time = time.perf_counter()
        cfg, s = self.cfg, self.state
        resumed = self._resume_if_asked()
        if not resumed:
            seed_everything(derive_seed(self.seed, self.rank, 1))
        writer = None
        if self.is_main:
            writer = MetricsWriter(
                self.out_dir, tensorboard=cfg.tensorboard, resume_step=s.step if resumed else None
            )
        bar = self._progress_bar()
        self.model.train()
        accum = cfg.grad_accum_steps
        plan = self.step_plan
        sums: dict[str, torch.Tensor] = {}
        counts: dict[str, int] = {}  # micro-batches summed, per key prefix ("" with one optimizer)
        lrs: dict[str, float] = {}
        grad_norms: dict[str, torch.Tensor] = {}
        bad = torch.zeros((), dtype=torch.bool, device=self.device)
        # samples/s covers training only: time spent in eval_fn and checkpoints is subtracted.
        window_start, window_samples, paused = time.perf_counter(), 0, 0.0
        batches = self._batches()
        on_after = getattr(self.model, "on_after_optimizer_step", None)
        try:
            while s.step < self.max_steps:
                step = s.step
                name = plan.optimizer_at(step) if plan is not None else None
                slot = self._slots[_SINGLE if name is None else name]
                prefix = "" if name is None else name + "/"
                for micro in range(accum):
                    batch = _to_device(next(batches), self.device)
                    with self._no_sync(micro == accum - 1), self._autocast():
                        if name is None:
                            out = self._step_module(batch, step)
                        else:
                            out = self._step_module(batch, step, name)
                    loss = self._check_output(out, step)
                    slot.scaler.scale(loss / accum).backward()
                    bad |= ~torch.isfinite(loss.detach())
                    for key, value in out.items():
                        if isinstance(value, torch.Tensor) and value.numel() == 1:
                            v = value.detach().float().reshape(())
                            key = prefix + key
                            sums[key] = sums[key] + v if key in sums else v
                    counts[prefix] = counts.get(prefix, 0) + 1
                if slot.clip_grad_norm > 0:
                    slot.scaler.unscale_(slot.optimizer)
                    grad_norms[prefix] = torch.nn.utils.clip_grad_norm_(
                        slot.params, slot.clip_grad_norm
                    )
                lrs[prefix] = slot.optimizer.param_groups[0]["lr"]
                slot.scaler.step(slot.optimizer)
                slot.scaler.update()
                if name is None:
                    slot.optimizer.zero_grad(set_to_none=True)
                else:  # discard what the step's backward left in the other optimizers' grads
                    for other in self._slots.values():
                        other.optimizer.zero_grad(set_to_none=True)
                slot.scheduler.step()
                if callable(on_after):
                    if name is None:
                        on_after(step)
                    else:
                        on_after(step, optimizer=name)
                if self.ema is not None and slot.updates_ema:
                    self.ema.update_parameters(self.ema_module())
                s.step += 1
                if cfg.ema_reload_every > 0 and s.step % cfg.ema_reload_every == 0:
                    self._reload_from_ema()
                window_samples += self.global_batch
                if bar is not None:
                    bar.update(1)
                last = s.step == self.max_steps
                if s.step % max(1, cfg.log_every) == 0 or last:
                    self._raise_if_nonfinite(bad)
                    elapsed = time.perf_counter() - window_start - paused
                    record = self._log_record(
                        sums, counts, lrs, grad_norms, elapsed, window_samples
                    )
                    s.metrics = {k: v for k, v in record.items() if k != "step"}
                    if writer is not None:
                        writer.write(record)
                    self._report(bar, record)
                    sums, counts, lrs, grad_norms = {}, {}, {}, {}
                    window_start, window_samples, paused = time.perf_counter(), 0, 0.0
                if self.eval_fn is not None and (
                    (cfg.eval_every > 0 and s.step % cfg.eval_every == 0) or last
                ):
                    t0 = time.perf_counter()
                    self._run_eval(writer)
                    paused += time.perf_counter() - t0
                if (cfg.checkpoint_every > 0 and s.step % cfg.checkpoint_every == 0) or last:
                    t0 = time.perf_counter()
                    self._raise_if_nonfinite(bad)
                    self.save_checkpoint()
                    paused += time.perf_counter() - t0
        finally:
            if bar is not None:
                bar.close()
            if writer is not None:
                writer.close()
        self._finish()
        s.wall_seconds = time.perf_counter() - start_time
        return s

    @torch.no_grad()
    def _reload_from_ema(self) -> None:
        """Copy the EMA's parameters and buffers into :meth:`ema_module` in place (the optimizer
        keeps its moments, as in the official ``ema.autoreload``). Runs before the step's
        checkpoint, so a resumed run continues from the reloaded weights."""
        assert self.ema is not None
        live = itertools.chain(self.ema_module().parameters(), self.ema_module().buffers())
        averaged = itertools.chain(self.ema.module.parameters(), self.ema.module.buffers())
        for target, source in zip(live, averaged, strict=True):
            target.copy_(source)

    def _check_output(self, out: Any, step: int) -> torch.Tensor:
        if not isinstance(out, Mapping) or "loss" not in out:
            raise TypeError(
                f"{type(self.model).__name__}.training_step must return a dict with a 'loss' "
                f"tensor; got {type(out).__name__}"
                + (f" with keys {sorted(out)}" if isinstance(out, Mapping) else "")
            )
        loss = out["loss"]
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
            raise TypeError(
                f"{type(self.model).__name__}.training_step: 'loss' must be a scalar tensor that "
                f"requires grad (step {step})"
            )
        return loss.reshape(())

    def _raise_if_nonfinite(self, bad: torch.Tensor) -> None:
        if bool(dist_utils.all_reduce_mean(bad.float()) > 0):
            raise FloatingPointError(
                f"non-finite loss before step {self.state.step}; lower the learning rate, enable "
                "gradient clipping (trainer.clip_grad_norm) or check the data. The last good "
                f"checkpoint is {self.state.last_checkpoint or 'none'}."
            )

    def _log_record(
        self,
        sums: Mapping[str, torch.Tensor],
        counts: Mapping[str, int],
        lrs: Mapping[str, float],
        grad_norms: Mapping[str, torch.Tensor],
        elapsed: float,
        window_samples: int,
    ) -> dict[str, Any]:
        """One metrics.jsonl line; keys of optimizer ``NAME`` (several optimizers) are ``NAME/*``."""
        keys = sorted(sums)
        values: list[float] = []
        if keys:
            if self.step_plan is None:
                stacked = torch.stack([sums[k] for k in keys]) / max(1, counts.get("", 0))
            else:
                divisors = [max(1, counts[k.split("/", 1)[0] + "/"]) for k in keys]
                stacked = torch.stack([sums[k] for k in keys]) / torch.tensor(
                    divisors, dtype=torch.float32, device=self.device
                )
            values = dist_utils.all_reduce_mean(stacked).tolist()
        record: dict[str, Any] = {"step": self.state.step, "epoch": self.state.epoch}
        if self.step_plan is None:
            record["lr"] = lrs[""]
        else:
            for prefix in sorted(lrs):
                record[prefix + "lr"] = lrs[prefix]
                record[prefix + "steps"] = counts[prefix] // self.cfg.grad_accum_steps
        record.update(zip(keys, values))
        for prefix in sorted(grad_norms):
            record[prefix + "grad_norm"] = float(grad_norms[prefix])
        record["samples_per_sec"] = window_samples / max(elapsed, 1e-9)
        return record

    def _run_eval(self, writer: MetricsWriter | None) -> None:
        assert self.eval_fn is not None
        was_training = self.model.training
        self.model.eval()
        try:
            metrics = {k: float(v) for k, v in dict(self.eval_fn(self)).items()}
        finally:
            self.model.train(was_training)
        self.state.eval_metrics = metrics
        if writer is not None and metrics:
            writer.write({"step": self.state.step, **{f"eval/{k}": v for k, v in metrics.items()}})

    @property
    def _progress(self) -> bool:
        # A study turns the per-run progress off and shows one line over its cells.
        return bool(self.cfg.progress and getattr(self.ctx, "progress", True))

    def _progress_bar(self) -> Any:
        if not (self.is_main and self._progress and sys.stderr.isatty()):
            return None
        from tqdm.auto import tqdm

        return tqdm(total=self.max_steps, initial=self.state.step, unit="step", dynamic_ncols=True)

    def _report(self, bar: Any, record: Mapping[str, Any]) -> None:
        if not self.is_main or not self._progress:
            return
        if bar is not None:
            if self.step_plan is None:
                shown = {
                    "loss": f"{record.get('loss', float('nan')):.4g}",
                    "lr": f"{record['lr']:.3g}",
                }
            else:
                shown = {k: f"{v:.4g}" for k, v in record.items() if k.endswith("/loss")}
            bar.set_postfix(**shown, img_s=f"{record['samples_per_sec']:.0f}", refresh=False)
            return
        # Not a TTY (CI, a log file): one plain line per log step instead of a bar.
        done = self.state.step
        rate = record["samples_per_sec"] / self.global_batch
        eta = (self.max_steps - done) / rate if rate > 0 else float("nan")
        extras = " ".join(
            f"{k} {v:.4g}"
            for k, v in record.items()
            if k not in ("step", "epoch", "lr", "samples_per_sec")
        )
        lr = f" lr {record['lr']:.4g}" if "lr" in record else ""
        print(
            f"step {done}/{self.max_steps} epoch {record['epoch']}{lr} {extras} "
            f"{record['samples_per_sec']:.0f} samples/s eta {eta:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    def _finish(self) -> None:
        """Final weights (rank 0): model.safetensors (+ model_ema.safetensors) and loss.png."""
        state = self._model_state()
        prefix = _module_prefix(self.model, self.trainable_module())
        weights = {k[len(prefix) :]: v for k, v in state.items() if k.startswith(prefix)}
        if self.is_main:
            meta = {"step": str(self.state.step), "method": type(self.model).__name__}
            save_model_safetensors(weights, self.out_dir / "model.safetensors", metadata=meta)
            if self.ema is not None:
                save_model_safetensors(
                    self.ema.module, self.out_dir / "model_ema.safetensors", metadata=meta
                )
            plot_loss_curve(self.out_dir / "metrics.jsonl", self.out_dir / "loss.png")
        dist_utils.barrier()


class _KeysOnly:
    """Stands in for a module in ``load_state_dict_strict`` when only the key check is wanted."""

    def __init__(self, keys: set[str]) -> None:
        self._keys = keys

    def state_dict(self) -> dict[str, Any]:
        return dict.fromkeys(self._keys)

    def load_state_dict(self, *args: Any, **kwargs: Any) -> None:
        pass
