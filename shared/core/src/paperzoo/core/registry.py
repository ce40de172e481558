"""Plugin discovery and the lazy registry of specs.

Discovery reads the ``paperzoo`` entry-point group, imports each plugin module (which must be
light), registers it with a pluggy ``PluginManager`` and calls its hooks. Specs are collected
per plugin, so a duplicate name can be blamed on both distributions, and a plugin whose import
or hooks fail is skipped with one warning while every other plugin keeps working.
"""

from __future__ import annotations

import difflib
import fnmatch
import importlib
import os
import threading
import warnings
from collections.abc import Iterable
from dataclasses import dataclass, field
from importlib import metadata
from types import ModuleType
from typing import Any

import pluggy

from paperzoo.core import hookspecs
from paperzoo.core.specs import (
    BackendSpec,
    CommandSpec,
    DatasetSpec,
    MethodSpec,
    MetricSpec,
    ModelSpec,
    PaperSpec,
    RecipeSpec,
    Spec,
)

__all__ = [
    "DISABLE_ENV",
    "ENTRY_POINT_GROUP",
    "KINDS",
    "DuplicateNameError",
    "PluginInfo",
    "PluginLoadWarning",
    "Registry",
    "UnknownNameError",
    "get_registry",
    "reload_plugins",
]

ENTRY_POINT_GROUP = "paperzoo"
DISABLE_ENV = "PAPERZOO_DISABLE_PLUGINS"

# kind -> (hook name, spec class, singular noun for messages)
KINDS: dict[str, tuple[str, type[Spec], str]] = {
    "papers": ("paperzoo_papers", PaperSpec, "paper"),
    "models": ("paperzoo_models", ModelSpec, "model"),
    "methods": ("paperzoo_methods", MethodSpec, "method"),
    "datasets": ("paperzoo_datasets", DatasetSpec, "dataset"),
    "recipes": ("paperzoo_recipes", RecipeSpec, "recipe"),
    "metrics": ("paperzoo_metrics", MetricSpec, "metric"),
    "backends": ("paperzoo_backends", BackendSpec, "backend"),
    "commands": ("paperzoo_commands", CommandSpec, "command"),
}


class PluginLoadWarning(UserWarning):
    """A plugin was skipped because it failed to import or its hooks raised."""


class UnknownNameError(LookupError):
    """No spec of that kind has that name. The message suggests the closest names."""

    def __init__(self, kind: str, name: str, known: Iterable[str]) -> None:
        noun = KINDS[kind][2] if kind in KINDS else kind
        known = sorted(known)
        close = difflib.get_close_matches(name, known, n=3, cutoff=0.5)
        if close:
            hint = "did you mean " + " or ".join(repr(c) for c in close) + "?"
        elif known:
            hint = f"`paperzoo list {kind}` shows the {len(known)} known names"
        else:
            hint = f"no {kind} are registered; is the package that provides it installed?"
        super().__init__(f"unknown {noun} {name!r}; {hint}")
        self.kind, self.name, self.suggestions = kind, name, close

    def __str__(self) -> str:  # KeyError-style quoting would hide the hint
        return str(self.args[0])


class DuplicateNameError(RuntimeError):
    """Two plugins registered the same name for the same kind."""


@dataclass
class PluginInfo:
    """What discovery learnt about one entry point."""

    name: str
    module: str
    dist: str
    version: str
    status: str = "ok"  # ok | failed | disabled
    error: str = ""
    counts: dict[str, int] = field(default_factory=dict)


@dataclass(frozen=True)
class Entry:
    """A registered spec and where it came from."""

    spec: Any
    plugin: str
    dist: str


def _disabled_names() -> set[str]:
    raw = os.environ.get(DISABLE_ENV, "")
    return {part.strip() for part in raw.split(",") if part.strip()}


def _entry_points() -> list[metadata.EntryPoint]:
    seen: set[tuple[str, str]] = set()
    found = []
    for ep in metadata.entry_points(group=ENTRY_POINT_GROUP):
        key = (ep.name, ep.value)
        if key in seen:  # the same distribution visible twice on sys.path
            continue
        seen.add(key)
        found.append(ep)
    return sorted(found, key=lambda ep: ep.name)


def _dist_of(ep: metadata.EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    if dist is None:
        return "<unknown>", "?"
    return dist.metadata["Name"] or "<unknown>", dist.version or "?"


class Registry:
    """All specs from all plugins, discovered once and cached.

    ``Registry()`` discovers installed entry points on first use. Tests and notebooks can add
    plugin objects directly with :meth:`register`.
    """

    def __init__(self, *, discover: bool = True) -> None:
        self._discover = discover
        self._lock = threading.RLock()
        self._loaded = False
        self.pm = pluggy.PluginManager(hookspecs.PROJECT_NAME)
        self.pm.add_hookspecs(hookspecs)
        self._plugins: dict[str, PluginInfo] = {}
        self._entries: dict[str, dict[str, Entry]] = {kind: {} for kind in KINDS}
        self._conflicts: dict[str, list[str]] = {kind: [] for kind in KINDS}

    # -- discovery ---------------------------------------------------------------------------
    def _ensure_loaded(self) -> None:
        if self._loaded:
            return
        with self._lock:
            if self._loaded:
                return
            if self._discover:
                disabled = _disabled_names()
                for ep in _entry_points():
                    dist, version = _dist_of(ep)
                    info = PluginInfo(name=ep.name, module=ep.value, dist=dist, version=version)
                    if ep.name in disabled or dist in disabled:
                        info.status = "disabled"
                        info.error = f"disabled by {DISABLE_ENV}"
                        self._plugins[ep.name] = info
                        continue
                    try:
                        plugin = ep.load()
                    except Exception as exc:  # a broken plugin must not break the others
                        self._fail(info, f"import failed: {type(exc).__name__}: {exc}")
                        continue
                    self._add(plugin, info)
            self._loaded = True

    def _fail(self, info: PluginInfo, reason: str) -> None:
        info.status, info.error = "failed", reason
        self._plugins[info.name] = info
        warnings.warn(
            f"paperzoo: skipping plugin {info.name!r} ({info.dist} {info.version}): {reason}",
            PluginLoadWarning,
            stacklevel=4,
        )

    def _add(self, plugin: Any, info: PluginInfo) -> None:
        """Register one plugin object and collect its specs, all or nothing."""
        if info.name in self._plugins and self._plugins[info.name].status == "ok":
            raise DuplicateNameError(
                f"plugin name {info.name!r} is registered by both "
                f"{self._plugins[info.name].dist} and {info.dist}"
            )
        try:
            self.pm.register(plugin, name=info.name)
        except Exception as exc:  # e.g. a hookimpl with a wrong signature
            self._fail(info, f"registration failed: {type(exc).__name__}: {exc}")
            return
        collected: dict[str, list[Spec]] = {}
        try:
            for kind, (hook_name, spec_cls, _) in KINDS.items():
                caller = getattr(self.pm.hook, hook_name)
                specs: list[Spec] = []
                for impl in caller.get_hookimpls():
                    if impl.plugin is not plugin:
                        continue
                    result = impl.function()
                    for spec in result or ():
                        if not isinstance(spec, spec_cls):
                            raise TypeError(
                                f"{hook_name}() returned {type(spec).__name__}, "
                                f"expected {spec_cls.__name__}"
                            )
                        specs.append(spec)
                collected[kind] = specs
        except Exception as exc:
            self.pm.unregister(plugin)
            self._fail(info, f"hook failed: {type(exc).__name__}: {exc}")
            return
        for kind, specs in collected.items():
            table = self._entries[kind]
            for spec in specs:
                if spec.name in table:
                    other = table[spec.name]
                    self._conflicts[kind].append(
                        f"{KINDS[kind][2]} {spec.name!r} is registered by both "
                        f"{other.dist} (plugin {other.plugin!r}) and "
                        f"{info.dist} (plugin {info.name!r})"
                    )
                    continue
                table[spec.name] = Entry(spec=spec, plugin=info.name, dist=info.dist)
            info.counts[kind] = len(specs)
        self._plugins[info.name] = info

    @property
    def plugins(self) -> dict[str, PluginInfo]:
        """Every discovered entry point by name, with its distribution, version and status."""
        self._ensure_loaded()
        return self._plugins

    def register(
        self, plugin: ModuleType | object, name: str | None = None, dist: str = "<local>"
    ) -> None:
        """Add a plugin object (module or instance with ``@hookimpl`` methods) by hand."""
        self._ensure_loaded()
        with self._lock:
            name = str(name or getattr(plugin, "__name__", type(plugin).__name__))
            version = "local"
            self._add(plugin, PluginInfo(name=name, module=name, dist=dist, version=version))

    # -- queries -----------------------------------------------------------------------------
    def entries(self, kind: str) -> dict[str, Entry]:
        if kind not in KINDS:
            raise UnknownNameError("kinds", kind, KINDS)
        self._ensure_loaded()
        if self._conflicts[kind]:
            raise DuplicateNameError("; ".join(self._conflicts[kind]))
        return self._entries[kind]

    def names(self, kind: str, pattern: str = "*") -> list[str]:
        names = self.entries(kind)
        return sorted(n for n in names if fnmatch.fnmatchcase(n, pattern))

    def get(self, kind: str, name: str) -> Any:
        return self.entry(kind, name).spec

    def entry(self, kind: str, name: str) -> Entry:
        table = self.entries(kind)
        try:
            return table[name]
        except KeyError:
            raise UnknownNameError(kind, name, table) from None

    def conflicts(self) -> list[str]:
        self._ensure_loaded()
        return [c for kind in KINDS for c in self._conflicts[kind]]


_registry: Registry | None = None
_registry_lock = threading.Lock()


def get_registry() -> Registry:
    """The process-wide registry, discovering plugins on first use."""
    global _registry
    if _registry is None:
        with _registry_lock:
            if _registry is None:
                _registry = Registry()
    return _registry


def reload_plugins() -> Registry:
    """Forget everything and rediscover (after installing a package at run time)."""
    global _registry
    with _registry_lock:
        importlib.invalidate_caches()
        _registry = Registry()
    return _registry
