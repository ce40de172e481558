"""paperzoo.slowfast: SlowFast Networks for Video Recognition (Feichtenhofer et al., ICCV 2019).

Models in :mod:`paperzoo.slowfast.model`, checkpoint converters in
:mod:`paperzoo.slowfast.convert`, the detection objective in :mod:`paperzoo.slowfast.method`,
recipes in :mod:`paperzoo.slowfast.recipes` / :mod:`paperzoo.slowfast.reproduce`. The names
below load on first use, so importing this package stays cheap.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.2.0"

_LAZY = {
    "SlowFast": "paperzoo.slowfast.model",
    "create_slow": "paperzoo.slowfast.model",
    "create_slowfast": "paperzoo.slowfast.model",
    "pack_pathways": "paperzoo.slowfast.model",
    "slow_r50": "paperzoo.slowfast.model",
    "slow_r50_detection": "paperzoo.slowfast.model",
    "slow_tiny": "paperzoo.slowfast.model",
    "slowfast_16x8_r101_50_50": "paperzoo.slowfast.model",
    "slowfast_4x16_r50": "paperzoo.slowfast.model",
    "slowfast_8x8_r101_50_50": "paperzoo.slowfast.model",
    "slowfast_r101": "paperzoo.slowfast.model",
    "slowfast_r50": "paperzoo.slowfast.model",
    "slowfast_r50_detection": "paperzoo.slowfast.model",
    "slowfast_tiny": "paperzoo.slowfast.model",
    "load_checkpoint": "paperzoo.slowfast.convert",
    "ActionDetection": "paperzoo.slowfast.method",
    "ava_collate": "paperzoo.slowfast.method",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.slowfast' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
