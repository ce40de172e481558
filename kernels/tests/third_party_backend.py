"""A third-party attention plugin, as another distribution would ship it (used by the tests).

``ExplicitSoftmaxBackend`` is a real backend: softmax(q kᵀ) v computed with explicit matmuls in
the input dtype. It counts its calls so tests can see when dispatch routes to it.
"""

from __future__ import annotations

import math

import torch

from paperzoo.core import BackendSpec, hookimpl
from paperzoo.kernels import AttentionBackend


class ExplicitSoftmaxBackend(AttentionBackend):
    calls = 0

    def supports(self, sig, *, forced):
        if sig.dropout:
            return "no dropout"
        return None

    def __call__(self, q, k, v, *, attn_mask=None, is_causal=False, scale=None, dropout_p=0.0):
        type(self).calls += 1
        scale = 1.0 / math.sqrt(q.shape[-1]) if scale is None else scale
        scores = (q @ k.transpose(-2, -1)) * scale
        if is_causal:
            keep = torch.ones(scores.shape[-2:], dtype=torch.bool, device=q.device).tril()
            scores = scores.masked_fill(~keep, float("-inf"))
        if attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                scores = scores.masked_fill(~attn_mask, float("-inf"))
            else:
                scores = scores + attn_mask
        return scores.softmax(-1) @ v


def make_explicit() -> ExplicitSoftmaxBackend:
    return ExplicitSoftmaxBackend()


class Plugin:
    """Hook implementations registering ``spec``; registered with the registry API."""

    def __init__(self, *specs: BackendSpec) -> None:
        self.specs = list(specs)

    @hookimpl
    def paperzoo_backends(self):
        return self.specs


def make_float64_reference():
    """A backend that breaks the dtype contract: correct values, but always float64."""
    from paperzoo.kernels import reference_attention

    def float64_attention(q, k, v, *, attn_mask=None, is_causal=False, scale=None, dropout_p=0.0):
        return reference_attention(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)

    return float64_attention
