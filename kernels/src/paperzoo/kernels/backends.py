"""The attention backends paperzoo-kernels registers, and their probes.

Each backend is a factory (zero arguments, returns the attention callable) plus a probe
(``() -> (ok, reason)``) named by import string in :mod:`paperzoo.kernels.plugin`, so
``paperzoo list backends`` and ``paperzoo doctor`` can show them without building anything.

- ``xformers``: ``xformers.ops.memory_efficient_attention`` (Lefaudeux et al., facebookresearch/
  xformers), an optional extra. Inputs are transposed to its (B, N, H, D) layout and masks turned
  into its bias form. Its probe checks that xformers' C++/CUDA extensions loaded (they do only
  under the torch the wheel was built for) and runs the op once on CUDA; whether it runs for a
  signature is settled by the dispatcher's trial.
- ``triton``: our flash attention (:mod:`paperzoo.kernels.triton_flash`), CUDA only in auto mode.
- ``sdpa``: ``torch.nn.functional.scaled_dot_product_attention``, which runs everywhere.

:func:`make_sdpa_efficient` builds a backend that is *not* registered: torch's memory-efficient
SDPA kernel (the xformers CUTLASS kernel that torch ships) on its own. Like xformers it exists on
every install but has no CPU implementation, so tests register it to exercise "present but
CPU-only", and it serves as a template for third-party backends.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
from typing import Any

import torch
import torch.nn.functional as F

from paperzoo.kernels.dispatch import AttentionBackend, AttentionSignature

__all__ = [
    "TritonBackend",
    "XformersBackend",
    "describe_xformers_mismatch",
    "make_sdpa",
    "make_sdpa_efficient",
    "make_triton",
    "make_xformers",
    "parse_xformers_warning",
    "probe_triton",
    "probe_xformers",
    "read_xformers_build_record",
    "xformers_build_mismatch",
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
    """Whether ``xformers.ops.memory_efficient_attention`` really runs here.

    Installed and importable is not enough. Each xformers wheel is compiled against one torch
    release (its ``cpp_lib.json`` says which); under another torch its C++/CUDA extensions do not
    load, xformers logs a warning and imports anyway, and its own kernels are missing. So the
    probe reads xformers' record of its build, and on CUDA it runs the op once on tiny inputs.
    xformers has no CPU kernel, so without a CUDA device it is never usable.
    """
    if importlib.util.find_spec("xformers") is None:
        return False, "xformers is not installed (pip install 'paperzoo-kernels[xformers]')"
    try:
        xformers, import_log = _import_xformers()
    except Exception as exc:  # typically built for another torch version
        return False, f"xformers fails to import: {type(exc).__name__}: {exc}"
    name = f"xformers {getattr(xformers, '__version__', '?')}"
    mismatch = xformers_build_mismatch(xformers, import_log)
    if mismatch is not None:
        return False, f"{name}: {mismatch}"
    if not torch.cuda.is_available():
        return False, f"{name}: no CUDA device (memory_efficient_attention has no CPU kernel)"
    try:
        q = torch.randn(1, 16, 2, 64, device="cuda", dtype=torch.float16)  # (B, N, H, D)
        xformers.ops.memory_efficient_attention(q, q, q)
        torch.cuda.synchronize()
    except Exception as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return (
            False,
            f"{name}: memory_efficient_attention fails on CUDA: {type(exc).__name__}: {first}",
        )
    return True, f"{name} (built for torch {_xformers_build_info(xformers).get('torch', '?')})"


def _import_xformers() -> tuple[Any, str]:
    """Import xformers and xformers.ops, keeping what xformers logs meanwhile (its import-time
    warning about extensions) out of the terminal and returning it."""
    import logging

    records: list[str] = []

    class _Keep(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            records.append(record.getMessage())

    logger = logging.getLogger("xformers")
    handler, propagate = _Keep(logging.WARNING), logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        import xformers
        import xformers.ops
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate
    return xformers, "\n".join(records)


def _xformers_build_info(xformers: Any) -> dict[str, Any]:
    """xformers' record of its build: ``{"torch": "2.10.0+cu128", "cuda": 1208, ...}`` from the
    ``cpp_lib.json`` that ships in the wheel (also what its load error quotes)."""
    exc = getattr(getattr(xformers, "_cpp_lib", None), "_cpp_library_load_exception", None)
    for info in (
        getattr(exc, "build_info", None),
        getattr(getattr(xformers, "_cpp_lib", None), "_build_metadata", None),
    ):
        metadata = getattr(info, "metadata", None)
        if isinstance(metadata, dict) and isinstance(metadata.get("version"), dict):
            return dict(metadata["version"])
    return read_xformers_build_record(
        os.path.join(os.path.dirname(getattr(xformers, "__file__", "") or ""), "cpp_lib.json")
    )


def read_xformers_build_record(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The ``"version"`` part of an xformers ``cpp_lib.json`` (``{}`` if unreadable)."""
    try:
        with open(path) as fh:
            version = json.load(fh).get("version", {})
    except (OSError, ValueError, AttributeError):
        return {}
    return dict(version) if isinstance(version, dict) else {}


_XFORMERS_BUILT_FOR = re.compile(r"PyTorch (\S+) with CUDA (\S+) \(you have (\S+)\)")


def parse_xformers_warning(text: str) -> tuple[str, str, str] | None:
    """(torch it was built for, its CUDA, the torch installed) from xformers' load warning
    ("xFormers was built for: PyTorch 2.10.0+cu128 with CUDA 1208 (you have 2.15.0+cu132)"),
    or None when the text does not say."""
    match = _XFORMERS_BUILT_FOR.search(text)
    return (match.group(1), match.group(2), match.group(3)) if match else None


def _cuda_version(code: Any) -> str:
    """xformers writes CUDA 12.8 as 1208."""
    try:
        n = int(code)
    except (TypeError, ValueError):
        return str(code)
    return f"{n // 100}.{n % 100}"


def describe_xformers_mismatch(built_torch: str, built_cuda: Any, installed_torch: str) -> str:
    """The mismatch in one plain sentence, with the fix."""
    release = built_torch.split("+")[0]
    cuda = f", CUDA {_cuda_version(built_cuda)}" if built_cuda not in (None, "None") else ""
    return (
        f"built for torch {built_torch}{cuda}, but torch {installed_torch} is installed, so its "
        f"C++/CUDA extensions do not load; install torch=={release} (with its CUDA build) or an "
        f"xformers wheel built for torch {installed_torch.split('+')[0]}"
    )


def xformers_build_mismatch(xformers: Any, import_log: str = "") -> str | None:
    """Why the imported ``xformers`` module's C++/CUDA extensions did not load, or None when
    they did. Reads xformers' own ``_has_cpp_library`` and its build record; falls back on its
    import-time warning text."""
    if getattr(xformers, "_has_cpp_library", True):
        return None
    info = _xformers_build_info(xformers)
    exc = getattr(getattr(xformers, "_cpp_lib", None), "_cpp_library_load_exception", None)
    built = str(info.get("torch") or "")
    if built and built.split("+")[0] != torch.__version__.split("+")[0]:
        return describe_xformers_mismatch(built, info.get("cuda"), torch.__version__)
    parsed = parse_xformers_warning(f"{import_log}\n{exc or ''}")
    if parsed is not None and parsed[0].split("+")[0] != parsed[2].split("+")[0]:
        return describe_xformers_mismatch(*parsed)
    reason = (str(exc) or import_log).strip().splitlines()
    return "its C++/CUDA extensions do not load" + (f" ({reason[0]})" if reason else "")


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
