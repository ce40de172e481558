"""paperzoo.kernels: attention with backend dispatch, Triton flash attention, and the papers'
special attentions (Castling-ViT linear-angular, MViT pooling, Hiera mask-unit).

Importing this package is light: names resolve on first access (PEP 562), so that
``paperzoo.kernels.plugin`` (imported by every ``paperzoo list``) never pulls in torch.

    from paperzoo.kernels import attention, use_backend
    out = attention(q, k, v, is_causal=True)          # (B, H, N, D), like torch SDPA
    with use_backend("sdpa"):
        out = attention(q, k, v)
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "ENV_VAR",
    "AttentionBackend",
    "AttentionSignature",
    "BackendUnavailableError",
    "LinearAngularAttention",
    "MaskUnitAttention",
    "MultiScaleAttention",
    "attention",
    "attention_pool",
    "dispatch_info",
    "explain",
    "linear_angular_attention",
    "linear_angular_attention_reference",
    "reference_attention",
    "selected_backend",
    "use_backend",
]

_WHERE = {
    "ENV_VAR": "dispatch",
    "AttentionBackend": "dispatch",
    "AttentionSignature": "dispatch",
    "BackendUnavailableError": "dispatch",
    "attention": "dispatch",
    "dispatch_info": "dispatch",
    "explain": "dispatch",
    "selected_backend": "dispatch",
    "use_backend": "dispatch",
    "reference_attention": "reference",
    "LinearAngularAttention": "castling",
    "linear_angular_attention": "castling",
    "linear_angular_attention_reference": "castling",
    "MultiScaleAttention": "pooling_attention",
    "attention_pool": "pooling_attention",
    "MaskUnitAttention": "mask_unit_attention",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.kernels' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"paperzoo.kernels.{module}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])
