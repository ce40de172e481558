# mypy: disable-error-code="empty-body"
"""Every hook of the ``paperzoo`` plugin system, declared in one place.

Hooks are named by the noun they contribute, like pytest's. Each takes no arguments and
returns a list of specs (see :mod:`paperzoo.core.specs`). A package implements the ones it
needs in its ``plugin.py`` and registers that module with one entry-point line::

    [project.entry-points.paperzoo]
    hiera = "paperzoo.hiera.plugin"

``plugin.py`` must stay light: it imports ``paperzoo.core`` and nothing heavy, because every
``paperzoo list`` imports it.
"""

from __future__ import annotations

import pluggy

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

PROJECT_NAME = "paperzoo"

hookspec = pluggy.HookspecMarker(PROJECT_NAME)
"""Marks the hook specifications below (the core declares them; plugins never need it)."""
hookimpl = pluggy.HookimplMarker(PROJECT_NAME)
"""Decorates a plugin's hook implementations: ``@hookimpl`` over ``def paperzoo_models()``."""


@hookspec
def paperzoo_papers() -> list[PaperSpec]:
    """Return the papers this plugin implements: title, authors, arXiv id, official code and
    the headline results that the ``paper`` recipes target."""


@hookspec
def paperzoo_models() -> list[ModelSpec]:
    """Return the model architectures this plugin provides, one spec per named size."""


@hookspec
def paperzoo_methods() -> list[MethodSpec]:
    """Return the training objectives (self-supervised or supervised methods) it provides."""


@hookspec
def paperzoo_datasets() -> list[DatasetSpec]:
    """Return the datasets it provides, bundled sample data and loaders for the full sets."""


@hookspec
def paperzoo_recipes() -> list[RecipeSpec]:
    """Return its runnable recipes (``tiny``, ``paper``, ...), each a typed config plus runner."""


@hookspec
def paperzoo_metrics() -> list[MetricSpec]:
    """Return its metrics and benchmarks (evaluation protocols, scorers, benchmark suites)."""


@hookspec
def paperzoo_backends() -> list[BackendSpec]:
    """Return attention backends that ``paperzoo.kernels.attention`` can dispatch to."""


@hookspec
def paperzoo_commands() -> list[CommandSpec]:
    """Return extra ``paperzoo`` sub-commands."""
