"""paperzoo.mvpl: Multiview Pseudo-Labeling (Xiong, Fan, Grauman, Feichtenhofer, ICCV 2021,
arXiv 2104.00682).

One video model shared across RGB, temporal-gradient and optical-flow views, trained with
FixMatch-style pseudo-labels aggregated over the weak views. Importing this package stays
light: the torch-based names load on first use, so the plugin (``paperzoo.mvpl.plugin``) can
be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "VIEW_CHANNELS",
    "FlowCache",
    "FlowSettings",
    "MultiviewNet",
    "MvPL",
    "SemiSupervisedClips",
    "aggregate_pseudo_labels",
    "farneback_flow",
    "masked_cross_entropy",
    "mvpl_r3d_18",
    "mvpl_r3d_tiny",
    "mvpl_slow_r50",
    "narrow_r3d",
    "precompute_flow",
    "strong_augment",
    "temporal_gradient",
]

_LAZY = {
    "VIEW_CHANNELS": "model",
    "MultiviewNet": "model",
    "mvpl_r3d_18": "model",
    "mvpl_r3d_tiny": "model",
    "mvpl_slow_r50": "model",
    "narrow_r3d": "model",
    "MvPL": "method",
    "aggregate_pseudo_labels": "method",
    "masked_cross_entropy": "method",
    "strong_augment": "method",
    "SemiSupervisedClips": "data",
    "FlowCache": "views",
    "FlowSettings": "views",
    "farneback_flow": "views",
    "precompute_flow": "views",
    "temporal_gradient": "views",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"paperzoo.mvpl.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'paperzoo.mvpl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
