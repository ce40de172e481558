from __future__ import annotations

import types

import pytest

from paperzoo.core import registry as registry_module
from paperzoo.core.registry import Registry


@pytest.fixture
def registry(monkeypatch):
    """A fresh, empty registry installed as the process-wide one (no entry-point discovery)."""
    reg = Registry(discover=False)
    monkeypatch.setattr(registry_module, "_registry", reg)
    return reg


def make_plugin(name: str, **hooks) -> types.ModuleType:
    """A plugin module object whose hooks return the given spec lists."""
    from paperzoo.core import hookimpl

    module = types.ModuleType(name)
    for hook_name, specs in hooks.items():

        def impl(specs=specs):
            return list(specs)

        impl.__name__ = hook_name
        setattr(module, hook_name, hookimpl(impl))
    return module
