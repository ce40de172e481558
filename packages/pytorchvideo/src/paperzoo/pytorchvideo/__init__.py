"""paperzoo.pytorchvideo: the PyTorchVideo paper (Fan et al. 2021, arXiv 2111.09887).

X3D-XS/S/M/L as built by PyTorchVideo, the Accelerator's efficient mobile X3D, a converter for
PyTorchVideo checkpoints, and the deployment path (block fusion, torch.export/ONNX, int8).

Importing this package stays light: the torch-based names load on first use, so the plugin
(``paperzoo.pytorchvideo.plugin``) can be imported without torch.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "X3D",
    "EfficientX3D",
    "convert_efficient_x3d_state_dict",
    "convert_to_deployable_form",
    "convert_x3d_state_dict",
    "count_flops",
    "count_params",
    "create_efficient_x3d",
    "create_x3d",
    "efficient_x3d_s",
    "efficient_x3d_xs",
    "export_onnx",
    "export_program",
    "load_pytorchvideo_checkpoint",
    "quantize_int8",
    "x3d_l",
    "x3d_m",
    "x3d_s",
    "x3d_xs",
]

_LAZY = {
    "X3D": "x3d",
    "create_x3d": "x3d",
    "x3d_xs": "x3d",
    "x3d_s": "x3d",
    "x3d_m": "x3d",
    "x3d_l": "x3d",
    "EfficientX3D": "efficient_x3d",
    "create_efficient_x3d": "efficient_x3d",
    "efficient_x3d_xs": "efficient_x3d",
    "efficient_x3d_s": "efficient_x3d",
    "convert_x3d_state_dict": "convert",
    "convert_efficient_x3d_state_dict": "convert",
    "load_pytorchvideo_checkpoint": "convert",
    "convert_to_deployable_form": "deploy",
    "export_program": "deploy",
    "export_onnx": "deploy",
    "quantize_int8": "deploy",
    "count_params": "complexity",
    "count_flops": "complexity",
}


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        return getattr(importlib.import_module(f"paperzoo.pytorchvideo.{_LAZY[name]}"), name)
    raise AttributeError(f"module 'paperzoo.pytorchvideo' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
