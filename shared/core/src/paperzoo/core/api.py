"""The public, pluggy-free API that host applications use.

Listing functions return sorted names and never import torch or plugin code; ``get_*``
returns a spec; ``create_*`` imports the factory and builds the thing.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import Any

from paperzoo.core._imports import resolve
from paperzoo.core.registry import get_registry
from paperzoo.core.specs import (
    BackendSpec,
    CommandSpec,
    DatasetSpec,
    MethodSpec,
    MetricSpec,
    ModelSpec,
    PaperSpec,
    RecipeSpec,
)

__all__ = [
    "create_dataset",
    "create_method",
    "create_metric",
    "create_model",
    "get_backend",
    "get_command",
    "get_dataset",
    "get_method",
    "get_metric",
    "get_model",
    "get_paper",
    "get_recipe",
    "list_backends",
    "list_commands",
    "list_datasets",
    "list_methods",
    "list_metrics",
    "list_models",
    "list_papers",
    "list_recipes",
]


def list_models(pattern: str = "*", *, paper: str | None = None) -> list[str]:
    """Names of all registered models matching the shell-style ``pattern``."""
    names = get_registry().names("models", pattern)
    if paper is not None:
        names = [n for n in names if get_model(n).paper == paper]
    return names


def list_papers(pattern: str = "*") -> list[str]:
    """Sorted names of the registered papers matching the shell-style ``pattern``."""
    return get_registry().names("papers", pattern)


def list_recipes(paper: str | None = None, pattern: str = "*") -> list[str]:
    """Recipe names, optionally only those of one paper."""
    names = get_registry().names("recipes", pattern)
    if paper is not None:
        names = [n for n in names if get_recipe(n).paper == paper]
    return names


def list_datasets(pattern: str = "*") -> list[str]:
    """Sorted names of the registered datasets matching the shell-style ``pattern``."""
    return get_registry().names("datasets", pattern)


def list_methods(pattern: str = "*") -> list[str]:
    """Sorted names of the registered methods matching the shell-style ``pattern``."""
    return get_registry().names("methods", pattern)


def list_metrics(pattern: str = "*") -> list[str]:
    """Sorted names of the registered metrics matching the shell-style ``pattern``."""
    return get_registry().names("metrics", pattern)


def list_backends(pattern: str = "*") -> list[str]:
    """Sorted names of the registered attention backends matching the shell-style ``pattern``."""
    return get_registry().names("backends", pattern)


def list_commands(pattern: str = "*") -> list[str]:
    """Sorted names of the registered CLI commands matching the shell-style ``pattern``."""
    return get_registry().names("commands", pattern)


def get_model(name: str) -> ModelSpec:
    """The :class:`ModelSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("models", name)


def get_paper(name: str) -> PaperSpec:
    """The :class:`PaperSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("papers", name)


def get_recipe(name: str) -> RecipeSpec:
    """The :class:`RecipeSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("recipes", name)


def get_dataset(name: str) -> DatasetSpec:
    """The :class:`DatasetSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("datasets", name)


def get_method(name: str) -> MethodSpec:
    """The :class:`MethodSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("methods", name)


def get_metric(name: str) -> MetricSpec:
    """The :class:`MetricSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("metrics", name)


def get_backend(name: str) -> BackendSpec:
    """The :class:`BackendSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("backends", name)


def get_command(name: str) -> CommandSpec:
    """The :class:`CommandSpec` registered as ``name`` (no import of its code); an unknown name
    raises :class:`UnknownNameError` with the closest names."""
    return get_registry().get("commands", name)


def create_model(
    name: str,
    *,
    pretrained: bool | str | None = None,
    checkpoint_path: str | os.PathLike[str] | None = None,
    **overrides: Any,
) -> Any:
    """Build a registered model by name.

    ``overrides`` go to the model factory (``num_classes=10``...). ``pretrained`` (``True`` or
    a tag of ``spec.pretrained``) loads released weights through torch.hub's cache;
    ``checkpoint_path`` loads a local file, in the paper's official layout when the spec has a
    ``checkpoint_loader``, otherwise a plain state dict (safetensors or ``weights_only`` torch).
    """
    spec = get_model(name)
    factory = resolve(spec.factory)
    model = factory(**{**spec.default_args, **overrides})
    if pretrained:
        model = _load_pretrained(spec, model, pretrained)
    if checkpoint_path is not None:
        if spec.checkpoint_loader:
            loaded = resolve(spec.checkpoint_loader)(model, checkpoint_path)
            model = loaded if loaded is not None else model
        else:
            from paperzoo.core.checkpoint import load_weights

            load_weights(model, checkpoint_path)
    return model


def _load_pretrained(spec: ModelSpec, model: Any, pretrained: bool | str) -> Any:
    tags: Mapping[str, str] = spec.pretrained
    if not tags:
        raise ValueError(f"model {spec.name!r} has no released weights; use checkpoint_path=")
    tag = next(iter(tags)) if pretrained is True else str(pretrained)
    if tag not in tags:
        raise ValueError(
            f"model {spec.name!r} has no weights tagged {tag!r}; known: {sorted(tags)}"
        )
    import torch

    from paperzoo.core.checkpoint import unwrap_state_dict

    try:
        state = torch.hub.load_state_dict_from_url(tags[tag], map_location="cpu", weights_only=True)
    except Exception as exc:
        raise RuntimeError(
            f"could not fetch weights {tags[tag]} for {spec.name!r} ({exc}); download the file "
            "yourself and pass checkpoint_path="
        ) from exc
    if spec.checkpoint_loader:
        # Official loaders read files; hand them the cached file instead of the dict.
        import pathlib

        cached = pathlib.Path(torch.hub.get_dir()) / "checkpoints" / os.path.basename(tags[tag])
        loaded = resolve(spec.checkpoint_loader)(model, cached)
        return loaded if loaded is not None else model
    from paperzoo.core.checkpoint import load_state_dict_strict

    load_state_dict_strict(model, unwrap_state_dict(state), source=tags[tag])
    return model


def _create(kind_getter: Any, name: str, kwargs: dict[str, Any]) -> Any:
    return resolve(kind_getter(name).factory)(**kwargs)


def create_dataset(name: str, **kwargs: Any) -> Any:
    """Build a registered dataset by name; ``kwargs`` go to its factory."""
    return _create(get_dataset, name, kwargs)


def create_method(name: str, **kwargs: Any) -> Any:
    """Build a registered training method (objective) by name."""
    return _create(get_method, name, kwargs)


def create_metric(name: str, **kwargs: Any) -> Any:
    """Build a registered metric or benchmark by name."""
    return _create(get_metric, name, kwargs)
