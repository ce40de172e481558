"""paperzoo.taco: TaCo (Bai et al., arXiv:2011.13046), temporal transformations as augmentation
and as prediction tasks on video MoCo (paperzoo-mocov2).

    from paperzoo.core import create_model
    model = create_model("taco_r3d_18")          # MoCo v2 + R3D-18 + four transformation heads

Models are in :mod:`paperzoo.taco.model`, the transformations and views in
:mod:`paperzoo.taco.transforms`, the objective in :mod:`paperzoo.taco.method`, recipes in
:mod:`paperzoo.taco.recipes`. Importing this package does not import torch; the names below
load their module on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "TRANSFORMATIONS",
    "SlowEncoder",
    "TaCo",
    "TaCoClips",
    "TaCoMethod",
    "TaCoViews",
    "TemporalTransforms",
    "VideoResNetEncoder",
    "apply_temporal",
    "sample_temporal",
]

_WHERE = {name: "model" for name in ("SlowEncoder", "TaCo", "VideoResNetEncoder")}
_WHERE.update(TaCoMethod="method")
_WHERE.update({name: "transforms" for name in __all__ if name not in _WHERE})


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.taco' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperzoo.taco.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
