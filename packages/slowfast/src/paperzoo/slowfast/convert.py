"""Official SlowFast checkpoints -> paperzoo state dicts (and back).

Two official layouts exist, both saved as ``.pyth`` files holding ``{"model_state": ...}``:

- PyTorchVideo (``pytorchvideo.models.hub``; model zoo at dl.fbaipublicfiles.com/pytorchvideo):
  ``blocks.0.multipathway_blocks.0.conv.weight``, ``blocks.0.multipathway_fusion.
  conv_fast_to_slow.weight``, ``blocks.1.multipathway_blocks.0.res_blocks.0.branch2.conv_a.
  weight``, ``blocks.6.proj.weight``. Slow-only (``create_resnet``) has no
  ``multipathway_blocks`` level; the detectors prefix the backbone with ``model.`` and name
  the head ``detection_head``.
- PySlowFast (facebookresearch/SlowFast, ``video_model_builder.py``): ``s1.pathway0_stem.
  conv.weight``, ``s1_fuse.conv_f2s.weight``, ``s2.pathway0_res0.branch1.weight``,
  ``s2.pathway0_res0.branch2.a_bn.weight``, ``head.projection.weight``.

Our names (:mod:`paperzoo.slowfast.model`): ``stem.{p}.{conv,norm}``, ``fusions.{i}.{conv,norm}``,
``stages.{s}.{p}.{b}.shortcut.{conv,norm}``, ``stages.{s}.{p}.{b}.residual.{conv,norm}_{a,b,c}``,
``head.proj``. Every rule below is a regular expression over whole keys; a key that no rule
matches is an error naming it (non-local blocks, for instance, are not implemented).
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from typing import Any

from torch import nn

from paperzoo.core.checkpoint import describe_keys

__all__ = [
    "detect_layout",
    "from_pyslowfast",
    "from_pytorchvideo",
    "load_checkpoint",
    "to_pyslowfast",
    "to_pytorchvideo",
]

_BRANCH2 = {
    "a": "conv_a",
    "a_bn": "norm_a",
    "b": "conv_b",
    "b_bn": "norm_b",
    "c": "conv_c",
    "c_bn": "norm_c",
}
_BRANCH2_BACK = {v: k for k, v in _BRANCH2.items()}


class UnknownKeyError(KeyError):
    """A checkpoint key that no conversion rule covers."""

    def __str__(self) -> str:
        return str(self.args[0])


def _convert(
    state: Mapping[str, Any], rules: list[tuple[re.Pattern[str], Any]], source: str
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    unknown = []
    for key, value in state.items():
        for pattern, rename in rules:
            m = pattern.fullmatch(key)
            if m:
                out[rename(m)] = value
                break
        else:
            unknown.append(key)
    if unknown:
        raise UnknownKeyError(f"{source}: no conversion rule for keys {describe_keys(unknown, 8)}")
    return out


def _rule(pattern: str, rename: Any) -> tuple[re.Pattern[str], Any]:
    return re.compile(pattern), rename


# -- PySlowFast ----------------------------------------------------------------------------------

_PYSLOWFAST_RULES = [
    # conv1: s1.pathway{p}_stem.{conv,bn}
    _rule(
        r"s1\.(?:pathway|s)(\d+)_stem\.(conv|bn)\.(.+)",
        lambda m: f"stem.{m[1]}.{'norm' if m[2] == 'bn' else 'conv'}.{m[3]}",
    ),
    # lateral connections after s1..s4
    _rule(
        r"s(\d+)_fuse\.(conv_f2s|bn)\.(.+)",
        lambda m: f"fusions.{int(m[1]) - 1}.{'conv' if m[2] == 'conv_f2s' else 'norm'}.{m[3]}",
    ),
    # res blocks: s{2..5}.pathway{p}_res{b}
    _rule(
        r"s(\d+)\.pathway(\d+)_res(\d+)\.branch1(_bn)?\.(.+)",
        lambda m: (
            f"stages.{int(m[1]) - 2}.{m[2]}.{m[3]}.shortcut.{'norm' if m[4] else 'conv'}.{m[5]}"
        ),
    ),
    _rule(
        r"s(\d+)\.pathway(\d+)_res(\d+)\.branch2\.(a|a_bn|b|b_bn|c|c_bn)\.(.+)",
        lambda m: f"stages.{int(m[1]) - 2}.{m[2]}.{m[3]}.residual.{_BRANCH2[m[4]]}.{m[5]}",
    ),
    _rule(r"head\.projection\.(weight|bias)", lambda m: f"head.proj.{m[1]}"),
]

_TO_PYSLOWFAST_RULES = [
    _rule(
        r"stem\.(\d+)\.(conv|norm)\.(.+)",
        lambda m: f"s1.pathway{m[1]}_stem.{'bn' if m[2] == 'norm' else 'conv'}.{m[3]}",
    ),
    _rule(
        r"fusions\.(\d+)\.(conv|norm)\.(.+)",
        lambda m: f"s{int(m[1]) + 1}_fuse.{'conv_f2s' if m[2] == 'conv' else 'bn'}.{m[3]}",
    ),
    _rule(
        r"stages\.(\d+)\.(\d+)\.(\d+)\.shortcut\.(conv|norm)\.(.+)",
        lambda m: (
            f"s{int(m[1]) + 2}.pathway{m[2]}_res{m[3]}.branch1{'_bn' if m[4] == 'norm' else ''}.{m[5]}"
        ),
    ),
    _rule(
        r"stages\.(\d+)\.(\d+)\.(\d+)\.residual\.((?:conv|norm)_[abc])\.(.+)",
        lambda m: f"s{int(m[1]) + 2}.pathway{m[2]}_res{m[3]}.branch2.{_BRANCH2_BACK[m[4]]}.{m[5]}",
    ),
    _rule(r"head\.proj\.(weight|bias)", lambda m: f"head.projection.{m[1]}"),
]


def from_pyslowfast(state: Mapping[str, Any]) -> dict[str, Any]:
    """PySlowFast ``model_state`` (SlowFast, Slow-only, their AVA detectors) -> ours."""
    return _convert(state, _PYSLOWFAST_RULES, "PySlowFast checkpoint")


def to_pyslowfast(state: Mapping[str, Any]) -> dict[str, Any]:
    """Our state dict -> PySlowFast key names (for PySlowFast's ``TEST.CHECKPOINT_FILE_PATH``)."""
    return _convert(state, _TO_PYSLOWFAST_RULES, "paperzoo SlowFast state dict")


# -- PyTorchVideo --------------------------------------------------------------------------------

_PTV_RES = r"res_blocks\.(\d+)\.(branch1_conv|branch1_norm|branch2\.(?:conv|norm)_[abc])\.(.+)"


def _ptv_res(stage: str, pathway: str, m: re.Match[str], first: int) -> str:
    block, part, rest = m[first], m[first + 1], m[first + 2]
    if part.startswith("branch1"):
        part = "shortcut." + ("conv" if part == "branch1_conv" else "norm")
    else:
        part = "residual." + part[len("branch2.") :]
    return f"stages.{int(stage) - 1}.{pathway}.{block}.{part}.{rest}"


_PYTORCHVIDEO_RULES = [
    # SlowFast (create_slowfast): blocks.0 = stems + fusion, blocks.1-4 = stages + fusions.
    _rule(
        r"blocks\.0\.multipathway_blocks\.(\d+)\.(conv|norm)\.(.+)",
        lambda m: f"stem.{m[1]}.{m[2]}.{m[3]}",
    ),
    _rule(
        r"blocks\.(\d+)\.multipathway_fusion\.(conv_fast_to_slow|norm)\.(.+)",
        lambda m: f"fusions.{m[1]}.{'conv' if m[2] == 'conv_fast_to_slow' else 'norm'}.{m[3]}",
    ),
    _rule(
        r"blocks\.(\d+)\.multipathway_blocks\.(\d+)\." + _PTV_RES,
        lambda m: _ptv_res(m[1], m[2], m, 3),
    ),
    # Slow-only (create_resnet): blocks.0 = stem, blocks.1-4 = stages.
    _rule(r"blocks\.0\.(conv|norm)\.(.+)", lambda m: f"stem.0.{m[1]}.{m[2]}"),
    _rule(r"blocks\.(\d+)\." + _PTV_RES, lambda m: _ptv_res(m[1], "0", m, 2)),
    # Heads: the classifier is the last block; the detectors' is detection_head.
    _rule(r"(?:blocks\.\d+|detection_head)\.proj\.(weight|bias)", lambda m: f"head.proj.{m[1]}"),
]


def from_pytorchvideo(state: Mapping[str, Any]) -> dict[str, Any]:
    """PyTorchVideo ``create_slowfast`` / ``create_resnet`` (and their ``*_with_roi_head``
    detectors) state dict -> ours."""
    state = {
        k[len("model.") :] if k.startswith("model.blocks.") else k: v for k, v in state.items()
    }
    return _convert(state, _PYTORCHVIDEO_RULES, "PyTorchVideo checkpoint")


def to_pytorchvideo(state: Mapping[str, Any], *, detection: bool = False) -> dict[str, Any]:
    """Our state dict -> PyTorchVideo key names (``detection=True`` for the RoI-head models)."""
    two_pathways = any(k.startswith("fusions.") for k in state)
    num_stages = 1 + max(int(k.split(".")[1]) for k in state if k.startswith("stages."))
    # The classifier follows the stages and, for SlowFast, the pooling/concat block.
    head = "detection_head" if detection else f"blocks.{num_stages + (2 if two_pathways else 1)}"
    prefix = "model." if detection else ""
    mp = "multipathway_blocks.{p}." if two_pathways else ""

    def res(m: re.Match[str]) -> str:
        stage, pathway, block, kind, part, rest = m[1], m[2], m[3], m[4], m[5], m[6]
        inner = f"branch1_{part}" if kind == "shortcut" else f"branch2.{part}"
        return f"{prefix}blocks.{int(stage) + 1}.{mp.format(p=pathway)}res_blocks.{block}.{inner}.{rest}"

    rules = [
        _rule(
            r"stem\.(\d+)\.(conv|norm)\.(.+)",
            lambda m: f"{prefix}blocks.0.{mp.format(p=m[1])}{m[2]}.{m[3]}",
        ),
        _rule(
            r"fusions\.(\d+)\.(conv|norm)\.(.+)",
            lambda m: (
                f"{prefix}blocks.{m[1]}.multipathway_fusion."
                f"{'conv_fast_to_slow' if m[2] == 'conv' else 'norm'}.{m[3]}"
            ),
        ),
        _rule(r"stages\.(\d+)\.(\d+)\.(\d+)\.(shortcut|residual)\.(\w+)\.(.+)", res),
        _rule(r"head\.proj\.(weight|bias)", lambda m: f"{head}.proj.{m[1]}"),
    ]
    return _convert(state, rules, "paperzoo SlowFast state dict")


# -- loading -------------------------------------------------------------------------------------


def detect_layout(state: Mapping[str, Any]) -> str:
    """``"pytorchvideo"``, ``"pyslowfast"`` or ``"paperzoo"``, from the key names."""
    keys = list(state)
    if any(k.startswith(("blocks.", "model.blocks.", "detection_head.")) for k in keys):
        return "pytorchvideo"
    if any(k.startswith("s1.") for k in keys):
        return "pyslowfast"
    return "paperzoo"


def load_checkpoint(
    model: nn.Module, path: str | os.PathLike[str], *, ignore_head: bool = False
) -> nn.Module:
    """Load a SlowFast checkpoint in any of the three layouts into ``model``, strictly.

    Reads ``.safetensors`` or ``torch.load(weights_only=True)`` files (``.pyth`` from either
    official model zoo included), unwraps ``model_state`` / ``state_dict``, converts the keys,
    and requires every key and shape to match. BatchNorm ``num_batches_tracked`` counters
    missing from older checkpoints are taken from the model. ``ignore_head=True`` skips the
    classifier, to fine-tune on another label set.
    """
    from paperzoo.core.checkpoint import load_state_dict_strict, read_state_dict, unwrap_state_dict

    raw = unwrap_state_dict(read_state_dict(path))
    layout = detect_layout(raw)
    state = {"pytorchvideo": from_pytorchvideo, "pyslowfast": from_pyslowfast}.get(layout, dict)(
        raw
    )
    own = model.state_dict()
    for key, value in own.items():
        if key.endswith("num_batches_tracked") and key not in state:
            state[key] = value
    if ignore_head:
        state = {k: v for k, v in state.items() if not k.startswith("head.")}
        state.update({k: v for k, v in own.items() if k.startswith("head.")})
    load_state_dict_strict(model, state, source=f"{path} ({layout} layout)")
    return model
