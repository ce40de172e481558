"""Resolving ``"package.module:attribute"`` import strings."""

from __future__ import annotations

import importlib
from typing import Any


def resolve(target: str) -> Any:
    """Import ``"package.module:attr.sub"`` and return the attribute.

    Raises ``ImportError`` naming the string when the module or attribute is missing.
    """
    module_name, sep, attr_path = target.partition(":")
    if not sep or not module_name or not attr_path:
        raise ImportError(f"bad import string {target!r}: expected 'package.module:attribute'")
    module = importlib.import_module(module_name)
    obj: Any = module
    for part in attr_path.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError:
            raise ImportError(
                f"{target!r}: module {module_name!r} has no attribute {attr_path!r}"
            ) from None
    return obj
