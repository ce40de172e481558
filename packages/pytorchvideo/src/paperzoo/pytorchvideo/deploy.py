"""Deployment path of the PyTorchVideo Accelerator, for x86 CPUs: fuse, export, int8.

Paper: Fan et al., "PyTorchVideo: A Deep Learning Library for Video Understanding", ACM MM
2021, arXiv 2111.09887, Section 4 ("Accelerator"): efficient X3D-XS on a Samsung S8 runs in
233 ms (fp32) and 165 ms (int8) vs 1067 ms for the vanilla model (4.6x and 6.5x).
Follows ``pytorchvideo/accelerator/deployment/mobile_cpu/utils/model_conversion.py``
(``convert_to_deployable_form``) and the Accelerator tutorial (fuse, quantize, script).

What differs from the mobile recipe, and why:

- The Accelerator's ``convert()`` also rewrites every Conv3d as Conv2d ops, because QNNPACK
  on phones had no (int8) Conv3d. x86 backends (oneDNN, FBGEMM) run Conv3d natively in fp32
  and int8, so :func:`convert_to_deployable_form` only folds BatchNorm into the convs, turns
  the squeeze-excitation 1x1x1 convs into linear layers and writes Swish as ``x * sigmoid(x)``.
- int8 uses FX graph-mode post-training static quantization (``torch.ao.quantization``,
  x86 backend: per-channel weights, histogram-observed activations), with the depthwise
  Conv3d layers kept in fp32 by default (x86's int8 depthwise Conv3d is slow; see
  :func:`quantize_int8`). The PT2E flow
  (``X86InductorQuantizer``) has moved out of torch into torchao, which is not a dependency.
- Export uses ``torch.export`` (TorchScript, which the tutorial used, is deprecated) and,
  when ``onnxscript`` is installed, the dynamo-based ONNX exporter.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Iterable
from pathlib import Path

import torch
from torch import nn

from paperzoo.pytorchvideo.efficient_x3d import EfficientX3D

__all__ = [
    "convert_to_deployable_form",
    "export_onnx",
    "export_program",
    "quantize_int8",
]


def convert_to_deployable_form(
    model: EfficientX3D, example_input: torch.Tensor | None = None
) -> EfficientX3D:
    """A converted copy of ``model`` in eval mode (the original is left as it is).

    With ``example_input`` (B, 3, T, H, W), also checks that the converted model reproduces the
    original's outputs (fp32 rounding only; raises ``AssertionError`` otherwise).
    """
    if not isinstance(model, EfficientX3D):
        raise TypeError(
            f"convert_to_deployable_form needs an EfficientX3D (efficient_x3d_xs/s), got "
            f"{type(model).__name__}"
        )
    deployable = copy.deepcopy(model).eval()
    if not deployable.is_converted:
        deployable.convert_()
    if example_input is not None:
        with torch.no_grad():
            expected = copy.deepcopy(model).eval()(example_input)
            got = deployable(example_input)
        torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-4)
    return deployable


def export_program(
    model: nn.Module, example_input: torch.Tensor, *, dynamic_batch: bool = False
) -> torch.export.ExportedProgram:
    """``torch.export`` the model in eval mode for ``example_input`` (B, 3, T, H, W).

    ``dynamic_batch`` makes the batch dimension symbolic (size >= 1).
    """
    model = model.eval()
    dynamic_shapes = None
    if dynamic_batch:
        dynamic_shapes = ({0: torch.export.Dim("batch", min=1, max=1024)},)
    with torch.no_grad():
        return torch.export.export(model, (example_input,), dynamic_shapes=dynamic_shapes)


def export_onnx(
    model: nn.Module, example_input: torch.Tensor, path: str | os.PathLike[str]
) -> Path:
    """Export to ONNX with torch's dynamo exporter (needs the ``onnxscript`` package)."""
    try:
        import onnxscript  # noqa: F401
    except ImportError as exc:
        raise ImportError(
            "ONNX export needs onnx and onnxscript: pip install onnx onnxscript"
        ) from exc
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    with torch.no_grad():
        program = torch.onnx.export(model, (example_input,), dynamo=True, verbose=False)
    program.save(str(path))
    return path


def quantize_int8(
    model: nn.Module,
    calibration_inputs: Iterable[torch.Tensor],
    *,
    backend: str = "x86",
    keep_depthwise_fp32: bool = True,
) -> torch.fx.GraphModule:
    """Post-training static int8 quantization for CPU (FX graph mode).

    ``model``: an :class:`EfficientX3D` (converted to deployable form first if it is not) or
    any FX-traceable eval-mode model. ``calibration_inputs``: batches (B, 3, T, H, W) drawn
    like real inputs (normalised video clips), used to set activation ranges; a few dozen
    clips are enough. ``backend``: ``"x86"`` (default; FBGEMM + oneDNN), ``"fbgemm"`` or
    ``"qnnpack"`` (ARM phones). Returns a GraphModule taking and returning float tensors.

    ``keep_depthwise_fp32``: leave depthwise Conv3d layers in fp32 (all other convs, linear
    layers, adds and muls run in int8). In torch 2.15 the x86 int8 depthwise Conv3d takes a
    slow path (measured ~7 ms per 3x3x3 layer of efficient X3D-XS at 4x160², 95 % of the int8
    model's time, which made it 7x slower than fp32), while oneDNN's fp32 depthwise Conv3d is
    fast; mixed, the int8 model is faster than fp32 (46.9 vs 57.9 ms with ``bench/bench_x3d.py
    --threads 1``; all-int8 took 397 ms).
    """
    from torch.ao.quantization import get_default_qconfig_mapping
    from torch.ao.quantization.quantize_fx import convert_fx, prepare_fx

    if backend not in torch.backends.quantized.supported_engines:
        raise ValueError(
            f"quantized engine {backend!r} is not available in this torch build; "
            f"available: {torch.backends.quantized.supported_engines}"
        )
    torch.backends.quantized.engine = backend
    if isinstance(model, EfficientX3D):
        model = convert_to_deployable_form(model)
    model = copy.deepcopy(model).eval()
    batches = iter(calibration_inputs)
    try:
        first = next(batches)
    except StopIteration:
        raise ValueError("quantize_int8 needs at least one calibration batch") from None
    qconfig_mapping = get_default_qconfig_mapping(backend)
    if keep_depthwise_fp32:
        for name, module in model.named_modules():
            if (
                isinstance(module, nn.Conv3d)
                and module.groups > 1
                and module.groups == module.in_channels
            ):
                qconfig_mapping.set_module_name(name, None)
    prepared = prepare_fx(model, qconfig_mapping, example_inputs=(first,))
    with torch.no_grad():
        prepared(first)
        for batch in batches:
            prepared(batch)
    return convert_fx(prepared)
