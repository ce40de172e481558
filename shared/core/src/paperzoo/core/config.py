"""Typed recipe configs: plain (nested) dataclasses, with dotted, type-checked overrides.

Every recipe is a dataclass. ``--set trainer.max_steps=20`` becomes
``apply_overrides(cfg, ["trainer.max_steps=20"])``, which parses the value by the field's
annotation and returns a new config. An unknown key is an error that names the nearby valid
keys; a value of the wrong type is an error that names the field and its type.

The shared sections every training recipe embeds (:class:`TrainerConfig` and friends) live
here too, so recipe modules stay free of torch.
"""

from __future__ import annotations

import dataclasses
import difflib
import json
import types
import typing
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, Union

__all__ = [
    "ConfigError",
    "DataConfig",
    "OptimConfig",
    "TrainerConfig",
    "apply_overrides",
    "config_fields",
    "from_dict",
    "to_dict",
]


class ConfigError(ValueError):
    """A bad override: unknown key, wrong type, or malformed ``key=value``."""


@dataclass
class OptimConfig:
    """Optimizer and learning-rate schedule."""

    name: Literal["sgd", "adamw", "lars"] = "sgd"
    lr: float = 0.03
    # The learning rate is ``lr * global_batch / base_batch`` when base_batch > 0 (linear scaling).
    base_batch: int = 0
    momentum: float = 0.9
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = 1e-4
    eps: float = 1e-8
    schedule: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = 0
    min_lr: float = 0.0
    # For ``step``: multiply by ``gamma`` at each of these fractions of max_steps.
    milestones: tuple[float, ...] = (0.6, 0.8)
    gamma: float = 0.1
    # Added for paperzoo.train (fields are only ever added):
    # warmup given in epochs (converted with the loader's length); used when warmup_steps == 0.
    warmup_epochs: float = 0.0
    nesterov: bool = False
    # LARS trust coefficient (eta), as in MoCo v3 / SimSiam's LARS.
    trust_coefficient: float = 0.001
    # Put biases and norm weights (ndim <= 1) in a group without weight decay. LARS always
    # does this and also leaves that group out of the trust-ratio adaptation.
    exclude_bias_norm: bool = False


@dataclass
class TrainerConfig:
    """The loop owned by ``paperzoo.train.Trainer``; every training recipe has one."""

    max_steps: int = 1000
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    log_every: int = 10
    grad_accum_steps: int = 1
    clip_grad_norm: float = 0.0
    # "auto": bf16 on CUDA, off on CPU. "bf16" / "fp16" force it; "off" disables.
    amp: Literal["auto", "off", "bf16", "fp16"] = "auto"
    compile: bool = False
    ema_decay: float = 0.0
    sync_bn: bool = False
    strategy: Literal["auto", "ddp", "fsdp", "none"] = "auto"
    device: str = "auto"
    progress: bool = True
    tensorboard: bool = True
    # Added for paperzoo.train (fields are only ever added):
    # When > 0, train for this many epochs: max_steps = epochs * optimizer steps per epoch.
    epochs: int = 0
    compile_backend: str = "inductor"
    compile_mode: str = "default"
    find_unused_parameters: bool = False
    # Seed each sample's augmentation from (seed, epoch, position) so that resume is exact
    # whatever num_workers is; costs a few microseconds per sample.
    deterministic_data: bool = True
    # Call the Trainer's eval_fn every this many steps (0: only at the end, if given).
    eval_every: int = 0
    # Copy the EMA weights into the module the EMA averages every this many steps (0: never;
    # needs ema_decay > 0): Adversarial Flow Models' ``ema.autoreload``.
    ema_reload_every: int = 0


@dataclass
class DataConfig:
    """Where the data comes from and how it is batched (per process)."""

    dataset: str = ""
    root: str = ""
    batch_size: int = 32
    num_workers: int = 0
    image_size: int = 224


# -- dict conversion -------------------------------------------------------------------------


def to_dict(cfg: Any) -> dict[str, Any]:
    """A JSON-friendly nested dict of a config dataclass (tuples become lists)."""
    if not dataclasses.is_dataclass(cfg) or isinstance(cfg, type):
        raise TypeError(f"expected a dataclass instance, got {type(cfg).__name__}")
    return json.loads(json.dumps(dataclasses.asdict(cfg), default=str))


def from_dict(cls: type, data: Mapping[str, Any]) -> Any:
    """Build ``cls`` from a nested dict, type-checking every value; unknown keys are errors."""
    overrides = [f"{key}={json.dumps(value)}" for key, value in _flatten(data)]
    return apply_overrides(cls(), overrides)


def _flatten(data: Mapping[str, Any], prefix: str = "") -> Iterable[tuple[str, Any]]:
    for key, value in data.items():
        if isinstance(value, Mapping):
            yield from _flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


# -- fields ----------------------------------------------------------------------------------


def _hints(cls: type) -> dict[str, Any]:
    return typing.get_type_hints(cls)


def config_fields(cfg_or_cls: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """Every leaf field as ``(dotted_key, type, default_or_current_value)``."""
    cls = cfg_or_cls if isinstance(cfg_or_cls, type) else type(cfg_or_cls)
    instance = cfg_or_cls if not isinstance(cfg_or_cls, type) else None
    hints = _hints(cls)
    out: list[tuple[str, Any, Any]] = []
    for f in dataclasses.fields(cls):
        if instance is not None:
            value = getattr(instance, f.name)
        elif f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            value = dataclasses.MISSING
        tp = hints[f.name]
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            out.extend(
                config_fields(
                    value if value is not dataclasses.MISSING else tp, f"{prefix}{f.name}."
                )
            )
        else:
            out.append((f"{prefix}{f.name}", tp, value))
    return out


def _type_name(tp: Any) -> str:
    origin = typing.get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in typing.get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in typing.get_args(tp))
    if origin is not None:
        args = ", ".join(_type_name(a) for a in typing.get_args(tp))
        return f"{getattr(origin, '__name__', str(origin))}[{args}]"
    return getattr(tp, "__name__", str(tp))


# -- parsing ---------------------------------------------------------------------------------


def _parse_scalar(text: str) -> Any:
    try:
        return json.loads(text)
    except (json.JSONDecodeError, ValueError):
        return text


def _coerce(value: Any, tp: Any, key: str) -> Any:
    """Check/convert a parsed value to the annotated type, or raise ConfigError."""
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    bad = ConfigError(f"{key}: expected {_type_name(tp)}, got {value!r}")
    if tp is Any:
        return value
    if origin in (Union, types.UnionType):
        if value is None and type(None) in args:
            return None
        if isinstance(value, str) and value.lower() in ("none", "null") and type(None) in args:
            return None
        for arg in args:
            if arg is type(None):
                continue
            try:
                return _coerce(value, arg, key)
            except ConfigError:
                continue
        raise bad
    if origin is Literal:
        if value in args:
            return value
        raise ConfigError(
            f"{key}: expected one of {', '.join(repr(a) for a in args)}, got {value!r}"
        )
    if origin in (tuple, list):
        if isinstance(value, str):
            value = [_parse_scalar(v.strip()) for v in value.split(",")] if value else []
        elif not isinstance(value, (list, tuple)):
            value = [value]  # `--set seeds=0` is the one-element sequence
        if origin is tuple and args and args[-1] is not Ellipsis:
            if len(args) != len(value):
                raise ConfigError(
                    f"{key}: expected {len(args)} values ({_type_name(tp)}), got {value!r}"
                )
            return tuple(_coerce(v, a, key) for v, a in zip(value, args))
        item = args[0] if args else Any
        items = [_coerce(v, item, key) for v in value]
        return tuple(items) if origin is tuple else items
    if origin in (dict, Mapping) or tp is dict:
        if isinstance(value, dict):
            return value
        raise bad
    if tp is bool:
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in ("true", "yes", "on", "1"):
            return True
        if isinstance(value, str) and value.lower() in ("false", "no", "off", "0"):
            return False
        raise bad
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            if isinstance(value, float) and value.is_integer():
                return int(value)
            raise bad
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise bad
        return float(value)
    if tp is str:
        if isinstance(value, str):
            return value
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            return str(value)  # `--set data.root=2024` is still a string field
        raise bad
    if isinstance(tp, type) and isinstance(value, tp):
        return value
    raise bad


def _split(override: str) -> tuple[str, str]:
    key, sep, raw = override.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError(f"bad override {override!r}: expected dotted.key=value")
    return key, raw.strip()


def apply_overrides(cfg: Any, overrides: Iterable[str]) -> Any:
    """Return a copy of ``cfg`` with each ``dotted.key=value`` applied and type-checked.

    Values are parsed as JSON when they look like JSON (numbers, true/false, null, lists),
    otherwise taken as strings; sequences may also be given as ``a,b,c``.
    """
    for override in overrides:
        key, raw = _split(override)
        cfg = _set(cfg, key.split("."), _parse_scalar(raw), key)
    return cfg


def _set(cfg: Any, path: list[str], value: Any, full_key: str) -> Any:
    cls = type(cfg)
    names = {f.name: f for f in dataclasses.fields(cls)}
    head = path[0]
    if head not in names:
        valid = [k for k, _, _ in config_fields(cfg)]
        close = difflib.get_close_matches(full_key, valid, n=3, cutoff=0.4)
        near = close or [k for k in valid if k.startswith(full_key.rsplit(".", 1)[0] + ".")][:8]
        hint = (
            f"; did you mean {', '.join(near)}?"
            if near
            else f"; valid keys: {', '.join(valid[:12])}"
        )
        raise ConfigError(f"unknown config key {full_key!r}{hint}")
    tp = _hints(cls)[head]
    current = getattr(cfg, head)
    if len(path) > 1:
        if not dataclasses.is_dataclass(current):
            raise ConfigError(f"{full_key}: {head!r} is a {_type_name(tp)} field, not a section")
        try:
            new = _set(current, path[1:], value, full_key)
        except ConfigError as exc:
            if "unknown config key" in str(exc):
                valid = [f"{head}.{k}" for k, _, _ in config_fields(current)]
                close = difflib.get_close_matches(full_key, valid, n=3, cutoff=0.4)
                near = close or valid[:8]
                raise ConfigError(
                    f"unknown config key {full_key!r}; did you mean {', '.join(near)}?"
                ) from None
            raise
        return dataclasses.replace(cfg, **{head: new})
    if dataclasses.is_dataclass(current):
        sub = [k for k, _, _ in config_fields(current)]
        raise ConfigError(
            f"{full_key} is a section; set one of its keys: {', '.join(head + '.' + k for k in sub[:8])}"
        )
    return dataclasses.replace(cfg, **{head: _coerce(value, tp, full_key)})
