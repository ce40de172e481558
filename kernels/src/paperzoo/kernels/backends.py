"""The attention backends paperzoo-kernels registers, and their probes.

Each backend is a factory (zero arguments, returns the attention callable) plus a probe
(``() -> (ok, reason)``) named by import string in :mod:`paperzoo.kernels.plugin`, so
``paperzoo list backends`` and ``paperzoo doctor`` can show them without building anything.

- ``xformers``: ``xformers.ops.memory_efficient_attention`` (Lefaudeux et al., facebookresearch/
  xformers), an optional extra. Inputs are transposed to its (B, N, H, D) layout and masks turned
  into its bias form; whether it really runs for a signature is settled by the dispatcher's trial.
- ``triton``: our flash attention (:mod:`paperzoo.kernels.triton_flash`), CUDA only in auto mode.
- ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``, which runs everywhere.

:func:`make_sdpa_efficient` builds a backend that is *not* registered: torch's memory-efficient
SDPA kernel (the xformers CUTLASS kernel that torch ships) on its own. Like xformers it exists on
every install but has no CPU implementation, so tests register it to exercise "present but
CPU-only", and it serves as a template for third-party backends.
"""

from __future__ import annotations

import importlib.util
import os

import torch
import torch.nn.functional as F

from paperzoo.kernels.dispatch import AttentionBackend, AttentionSignature

__all__ = [
    "TritonBackend",
    "XformersBackend",
    "make_sdpa",
    "make_sdpa_efficient",
    "make_triton",
    "make_xformers",
    "probe_triton",
    "probe_xformers",
]

_HALF_AND_FLOAT = (torch.float16, torch.bfloat16, torch.float32)


# -- torch SDPA ----------------------------------------------------------------------------------


def make_sdpa():
    """torch SDPA itself: no wrapper, so the fallback adds no call overhead."""
    return F.scaled_dot_product_attention


def make_sdpa_efficient() -> AttentionBackend:
    """torch's memory-efficient SDPA kernel alone (CUDA only: on CPU it raises)."""
    return _SdpaEfficient()


class _SdpaEfficient(AttentionBackend):
    def __call__(self, q, k, v, *, attn_mask=None, is_causal=False, scale=None, dropout_p=0.0):
        from torch.nn.attention import SDPBackend, sdpa_kernel

        with sdpa_kernel(SDPBackend.EFFICIENT_ATTENTION):
            return F.scaled_dot_product_attention(
                q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, dropout_p=dropout_p
            )


# -- xformers ------------------------------------------------------------------------------------


def probe_xformers() -> tuple[bool, str]:
    """Whether xformers is installed and imports against this torch."""
    if importlib.util.find_spec("xformers") is None:
        return False, "xformers is not installed (pip install 'paperzoo-kernels[xformers]')"
    try:
        import xformers
        import xformers.ops
    except Exception as exc:  # typically built for another torch version
        return False, f"xformers fails to import: {type(exc).__name__}: {exc}"
    return True, f"xformers {getattr(xformers, '__version__', '?')}"


def make_xformers() -> AttentionBackend:
    return XformersBackend()


class XformersBackend(AttentionBackend):
    """``memory_efficient_attention`` behind torch SDPA's (B, H, N, D) interface."""

    def __init__(self) -> None:
        import xformers.ops as xops

        self._op = xops.memory_efficient_attention
        self._causal = xops.LowerTriangularMask  # top-left aligned, as SDPA's is_causal

    def supports(self, sig: AttentionSignature, *, forced: bool) -> str | None:
        if sig.dtype not in _HALF_AND_FLOAT:
            return f"dtype {sig.dtype} (xformers takes fp16, bf16, fp32)"
        return None

    def __call__(self, q, k, v, *, attn_mask=None, is_causal=False, scale=None, dropout_p=0.0):
        b, h, n_q, _ = q.shape
        n_k = k.shape[2]
        bias = None
        if is_causal:
            bias = self._causal()
        elif attn_mask is not None:
            if attn_mask.dtype == torch.bool:
                bias = torch.zeros(attn_mask.shape, dtype=q.dtype, device=q.device)
                bias = bias.masked_fill(~attn_mask, float("-inf"))
            else:
                bias = attn_mask.to(q.dtype)
            # xformers wants a materialised (B, H, Nq, Nk) bias whose rows start on 8-element
            # boundaries on CUDA: pad the key axis, then slice back (a view, no second copy).
            pad = (-n_k) % 8
            bias = F.pad(bias.expand(b, h, n_q, n_k), (0, pad))[..., :n_k]
        out = self._op(
            q.transpose(1, 2),
            k.transpose(1, 2),
            v.transpose(1, 2),
            attn_bias=bias,
            p=dropout_p,
            scale=scale,
        )
        return out.transpose(1, 2)


# -- Triton --------------------------------------------------------------------------------------


def _interpret_env() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") not in ("", "0")


def probe_triton() -> tuple[bool, str]:
    """Whether Triton is installed and has somewhere to run (a CUDA GPU, or the interpreter)."""
    if importlib.util.find_spec("triton") is None:
        return False, "triton is not installed (it ships with torch on Linux x86-64)"
    if torch.cuda.is_available():
        return True, f"CUDA device {torch.cuda.get_device_name()}"
    if _interpret_env():
        return True, "CPU interpreter (TRITON_INTERPRET=1): for tests, used only when forced"
    return False, "no CUDA device (Triton kernels need a GPU; TRITON_INTERPRET=1 runs them on CPU)"


def make_triton() -> AttentionBackend:
    return TritonBackend()


class TritonBackend(AttentionBackend):
    """Our Triton flash attention. Constraints mirror :mod:`paperzoo.kernels.triton_flash`."""

    def __init__(self) -> None:
        from paperzoo.kernels import triton_flash

        self._flash = triton_flash.flash_attention
        self._interpreting = triton_flash.interpreting

    def supports(self, sig: AttentionSignature, *, forced: bool) -> str | None:
        if sig.device.type == "cpu":
            if not self._interpreting():
                return "CPU tensors: the Triton kernels run on CUDA (or under TRITON_INTERPRET=1)"
            if not forced:
                return "CPU tensors: the Triton interpreter is for tests; force backend='triton'"
        elif sig.device.type != "cuda":
            return f"device {sig.device.type!r}: the Triton kernels run on CUDA"
        if sig.dtype not in _HALF_AND_FLOAT:
            return f"dtype {sig.dtype} (the kernel takes fp16, bf16, fp32)"
        if sig.head_dim != sig.head_dim_v:
            return f"q and v head dims differ ({sig.head_dim} vs {sig.head_dim_v})"
        if not 16 <= sig.head_dim <= 128:
            return f"head dim {sig.head_dim} outside 16..128"
        if sig.dropout:
            return "dropout_p > 0 (the kernel has no dropout)"
        if sig.mask_requires_grad:
            return "attn_mask requires grad (the kernel returns no mask gradient)"
        return None

    def __call__(self, q, k, v, *, attn_mask=None, is_causal=False, scale=None, dropout_p=0.0):
        if dropout_p > 0.0:
            raise ValueError("the Triton attention kernel has no dropout; use backend='sdpa'")
        return self._flash(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale)
