"""Specs: the small frozen records that plugins return from their hooks.

A spec describes a thing a paper contributes (a model, a recipe, a dataset, ...) without
building it. Anything heavy is named by an *import string* (``"pkg.module:attr"``), which is
resolved only when the thing is actually built. Listing and searching specs therefore never
imports torch or a paper's model code.

Only ``name`` and the factory/import string are required for each kind; everything else is
optional metadata. These classes are part of the plugin-authoring surface: third parties write
against them, so fields are only ever added (with defaults), never renamed.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

__all__ = [
    "BackendSpec",
    "CommandSpec",
    "DatasetSpec",
    "MethodSpec",
    "MetricSpec",
    "ModelSpec",
    "PaperSpec",
    "RecipeSpec",
    "Spec",
]


def _frozen_mapping(value: Mapping[str, Any] | None) -> Mapping[str, Any]:
    return MappingProxyType(dict(value or {}))


@dataclass(frozen=True)
class Spec:
    """Base of every spec: a unique ``name`` within its kind, and free-form metadata."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(
                f"{type(self).__name__}.name must be a non-empty string, got {self.name!r}"
            )
        for f in ("factory", "config", "runner", "command"):
            value = getattr(self, f, None)
            if value is not None and (not isinstance(value, str) or ":" not in value):
                raise ValueError(
                    f"{type(self).__name__}({self.name!r}).{f} must be an import string "
                    f"'package.module:attribute', got {value!r}"
                )
        for f in ("tags", "authors"):
            if isinstance(getattr(self, f, None), list):
                object.__setattr__(self, f, tuple(getattr(self, f)))
        for f in ("pretrained", "reference", "headline_results", "default_args"):
            value = getattr(self, f, None)
            if value is not None and not isinstance(value, MappingProxyType):
                object.__setattr__(self, f, _frozen_mapping(value))


@dataclass(frozen=True)
class PaperSpec(Spec):
    """A paper: bibliographic facts and the headline results its ``paper`` recipes target.

    ``headline_results`` maps a readable key (``"IN-1K linear top-1, R50 800ep"``) to the
    number reported in the paper.
    """

    title: str = ""
    authors: tuple[str, ...] = ()
    year: int | None = None
    arxiv: str | None = None
    venue: str | None = None
    official_code: str | None = None
    headline_results: Mapping[str, float] = field(default_factory=dict)
    description: str = ""


@dataclass(frozen=True)
class ModelSpec(Spec):
    """A model architecture. ``factory`` returns an ``nn.Module``; keyword overrides go to it.

    ``checkpoint_loader`` (optional import string) is ``fn(model, path) -> model`` that reads an
    official checkpoint layout. Without it, ``create_model(checkpoint_path=...)`` uses the core
    loader (safetensors, or ``torch.load(weights_only=True)`` with a strict key check).
    ``pretrained`` maps a tag (``"in1k"``) to a URL of released weights.
    """

    factory: str = ""
    paper: str | None = None
    description: str = ""
    num_params: int | None = None
    flops: float | None = None
    checkpoint_loader: str | None = None
    pretrained: Mapping[str, str] = field(default_factory=dict)
    default_args: Mapping[str, Any] = field(default_factory=dict)
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.factory:
            raise ValueError(f"ModelSpec({self.name!r}) needs factory='package.module:callable'")
        super().__post_init__()
        if self.checkpoint_loader is not None and ":" not in self.checkpoint_loader:
            raise ValueError(f"ModelSpec({self.name!r}).checkpoint_loader must be an import string")


@dataclass(frozen=True)
class MethodSpec(Spec):
    """A training objective (MoCo, MAE, ...). ``factory`` builds the method module."""

    factory: str = ""
    paper: str | None = None
    description: str = ""

    def __post_init__(self) -> None:
        if not self.factory:
            raise ValueError(f"MethodSpec({self.name!r}) needs factory='package.module:callable'")
        super().__post_init__()


@dataclass(frozen=True)
class DatasetSpec(Spec):
    """A dataset. ``factory(**kwargs)`` returns a dataset object (map-style or iterable)."""

    factory: str = ""
    description: str = ""
    modality: str = "image"
    num_classes: int | None = None
    bundled: bool = False
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.factory:
            raise ValueError(f"DatasetSpec({self.name!r}) needs factory='package.module:callable'")
        super().__post_init__()


@dataclass(frozen=True)
class RecipeSpec(Spec):
    """A runnable recipe: a typed config plus the function that runs it.

    - ``config``: import string of a zero-argument callable (usually a dataclass class) that
      returns the recipe's config dataclass with its defaults. Importing it must stay light
      (dataclasses only), because ``paperzoo info`` imports it to print the fields.
    - ``runner``: import string of ``run(config, ctx: RunContext) -> RunResult``.
    - ``paper`` and ``variant`` (``"tiny"``, ``"paper"``, ...) are how
      ``paperzoo reproduce PAPER --recipe VARIANT`` finds the recipe.
    - ``reference``: metric name -> expected value, printed next to the measured metrics.
    - ``study``: import string of a zero-argument callable returning a
      :class:`paperzoo.train.study.Study` (arms x seeds and the declared claims). When set,
      ``paperzoo reproduce`` runs the study, one cell (an arm with a seed) per runner call.
    """

    config: str = ""
    runner: str = ""
    paper: str | None = None
    variant: str = "tiny"
    description: str = ""
    reference: Mapping[str, float] = field(default_factory=dict)
    study: str = ""

    def __post_init__(self) -> None:
        if not self.config or not self.runner:
            raise ValueError(
                f"RecipeSpec({self.name!r}) needs config='pkg.mod:ConfigClass' and "
                "runner='pkg.mod:run'"
            )
        super().__post_init__()


@dataclass(frozen=True)
class MetricSpec(Spec):
    """A metric or benchmark. ``factory`` returns a callable or an evaluator object."""

    factory: str = ""
    description: str = ""
    higher_is_better: bool = True
    tags: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if not self.factory:
            raise ValueError(f"MetricSpec({self.name!r}) needs factory='package.module:callable'")
        super().__post_init__()


@dataclass(frozen=True)
class BackendSpec(Spec):
    """An attention backend.

    ``factory`` returns the attention callable with the signature of
    ``paperzoo.kernels.attention`` minus ``backend``. ``probe`` (optional import string) is
    ``fn() -> (ok: bool, reason: str)`` and says whether the backend can run here at all.
    Lower ``priority`` is tried first by ``backend="auto"``.
    """

    factory: str = ""
    probe: str | None = None
    priority: int = 100
    description: str = ""

    def __post_init__(self) -> None:
        if not self.factory:
            raise ValueError(f"BackendSpec({self.name!r}) needs factory='package.module:callable'")
        super().__post_init__()
        if self.probe is not None and ":" not in self.probe:
            raise ValueError(f"BackendSpec({self.name!r}).probe must be an import string")


@dataclass(frozen=True)
class CommandSpec(Spec):
    """A ``paperzoo`` sub-command contributed by a plugin.

    ``command`` is the import string of ``fn(argv: list[str]) -> int``; the function parses its
    own arguments, so adding a command never imports it until it is run.
    """

    command: str = ""
    help: str = ""

    def __post_init__(self) -> None:
        if not self.command:
            raise ValueError(f"CommandSpec({self.name!r}) needs command='pkg.mod:main'")
        super().__post_init__()
