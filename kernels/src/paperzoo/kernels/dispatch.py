"""``attention(q, k, v, ...)``: one attention op, dispatched to the best backend that runs here.

Backends come from the plugin registry (hook ``paperzoo_backends``, spec
:class:`paperzoo.core.BackendSpec`), so a third party adds one with an entry point and no edit
here. ``backend="auto"`` tries them in ascending ``priority``. paperzoo-kernels registers
xformers (10), Triton (20) and torch SDPA (1000, the fallback that always runs).

A backend is chosen for an input *signature* (device, dtype, head dims, mask kind, causal,
dropout, whether gradients are needed), not per call. For each signature it must pass, once:

1. its spec's ``probe()`` (installed and importable here; cached per process);
2. its ``supports(signature, forced=...)`` (static constraints: device, dtype, head dim...);
3. a trial run on tiny random inputs of that signature, checked against torch SDPA, with a
   backward pass when gradients are needed. This is what catches "xformers is installed but has
   no kernel for CPU" or "this GPU has no bf16": the error becomes a recorded reason, never a
   crash. The trial uses its own generator and forks the RNG, so callers' random streams are
   untouched.

The winner is cached per signature, so a call costs a few dictionary lookups on top of the
backend itself. The cache is rebuilt when the registry changes (a plugin registered at run time).

Forcing a backend (argument, :func:`use_backend`, or ``PAPERZOO_ATTENTION_BACKEND``) skips the
trial and raises :class:`BackendUnavailableError` with the reason when it cannot run the inputs.

Under ``torch.compile``, ``backend="auto"`` calls torch SDPA directly (inductor lowers it to its
own fused kernels); :func:`use_backend` and the environment variable apply to eager execution.
"""

from __future__ import annotations

import contextlib
import contextvars
import difflib
import os
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from paperzoo.core import get_registry
from paperzoo.core._imports import resolve

__all__ = [
    "ENV_VAR",
    "AttentionBackend",
    "AttentionSignature",
    "BackendUnavailableError",
    "attention",
    "dispatch_info",
    "explain",
    "selected_backend",
    "use_backend",
]

ENV_VAR = "PAPERZOO_ATTENTION_BACKEND"
_FALLBACK = "sdpa"
_TRIAL_LEN = 20  # not a multiple of 8 or 16, so tails and alignment are exercised
# Max |backend - SDPA| on the trial inputs (outputs are O(1)): a few ulps of each dtype's
# accumulation error, far below the garbage a broken kernel produces.
_TRIAL_ATOL = {torch.float32: 1e-3, torch.float16: 1e-2, torch.bfloat16: 6e-2}


class BackendUnavailableError(RuntimeError):
    """A forced attention backend cannot run the given inputs here; the message says why."""


@dataclass(frozen=True)
class AttentionSignature:
    """What a backend's support depends on. Lengths and batch sizes are deliberately absent."""

    device: torch.device
    dtype: torch.dtype
    head_dim: int
    head_dim_v: int
    mask_dtype: torch.dtype | None  # None: no mask; torch.bool: boolean; else additive
    mask_requires_grad: bool
    is_causal: bool
    dropout: bool
    requires_grad: bool

    @property
    def mask(self) -> str:
        """``"none"``, ``"bool"`` or ``"additive"``."""
        if self.mask_dtype is None:
            return "none"
        return "bool" if self.mask_dtype == torch.bool else "additive"


class AttentionBackend:
    """Base for backends with input constraints (plain functions are accepted too).

    A subclass implements ``__call__(q, k, v, *, attn_mask, is_causal, scale, dropout_p)`` with
    torch SDPA's semantics on (B, H, N, D) tensors, and may override :meth:`supports`. Set
    ``trial = False`` only for a backend that runs every input its ``supports`` accepts.
    """

    trial: bool = True

    def supports(self, sig: AttentionSignature, *, forced: bool) -> str | None:
        """``None`` if inputs of this signature can run, else the reason they cannot.

        ``forced`` is True when the user asked for this backend by name; a backend may accept
        inputs then that auto-dispatch should not pick (e.g. the Triton CPU interpreter).
        """
        return None

    def __call__(
        self,
        q: torch.Tensor,
        k: torch.Tensor,
        v: torch.Tensor,
        *,
        attn_mask: torch.Tensor | None = None,
        is_causal: bool = False,
        scale: float | None = None,
        dropout_p: float = 0.0,
    ) -> torch.Tensor:
        raise NotImplementedError


AttentionFn = Callable[..., torch.Tensor]


class _Backend:
    """One registry entry, resolved lazily: probe and factory run at most once."""

    def __init__(self, name: str, spec: Any, dist: str) -> None:
        self.name, self.spec, self.dist = name, spec, dist
        self._probe: tuple[bool, str] | None = None
        self._fn: AttentionFn | None = None
        self._fn_error: str | None = None

    def probe(self) -> tuple[bool, str]:
        if self._probe is None:
            if self.spec.probe is None:
                self._probe = (True, "no probe")
            else:
                try:
                    ok, reason = resolve(self.spec.probe)()
                    self._probe = (bool(ok), str(reason))
                except Exception as exc:  # a broken probe disables its backend, nothing else
                    self._probe = (False, f"probe failed: {type(exc).__name__}: {exc}")
        return self._probe

    def fn(self) -> AttentionFn | None:
        if self._fn is None and self._fn_error is None:
            try:
                self._fn = resolve(self.spec.factory)()
            except Exception as exc:
                self._fn_error = f"factory failed: {type(exc).__name__}: {exc}"
        return self._fn

    def unavailable(self, sig: AttentionSignature, *, forced: bool) -> str | None:
        """Static checks (probe, factory, supports); the reason, or None when they pass."""
        ok, why = self.probe()
        if not ok:
            return why
        fn = self.fn()
        if fn is None:
            return self._fn_error
        supports = getattr(fn, "supports", None)
        if supports is not None:
            try:
                return supports(sig, forced=forced)
            except Exception as exc:
                return f"supports() failed: {type(exc).__name__}: {exc}"
        return None


class _Table:
    """The registry's backends in priority order, plus every decision made so far."""

    def __init__(self, registry: Any, entries: dict[str, Any]) -> None:
        self.registry = registry
        self.size = len(entries)
        self.backends = [
            _Backend(name, e.spec, e.dist)
            for name, e in sorted(entries.items(), key=lambda kv: (kv[1].spec.priority, kv[0]))
        ]
        self.by_name = {b.name: b for b in self.backends}
        self.auto: dict[tuple, tuple[str, AttentionFn]] = {}
        self.forced: dict[tuple, AttentionFn] = {}
        self.outcomes: dict[tuple, str | None] = {}  # (key, backend name) -> reason or None
        self.trials = 0
        self.lock = threading.RLock()  # a backend may call attention() inside its trial

    def evaluate(self, backend: _Backend, key: tuple, sig: AttentionSignature) -> str | None:
        """Full auto-mode check of one backend for one signature, cached."""
        cache_key = (key, backend.name)
        if cache_key in self.outcomes:
            return self.outcomes[cache_key]
        reason = backend.unavailable(sig, forced=False)
        fn = backend.fn()
        # torch SDPA is the reference the trial compares against: nothing to learn from it.
        needs_trial = fn is not F.scaled_dot_product_attention and getattr(fn, "trial", True)
        if reason is None and fn is not None and needs_trial:
            self.trials += 1
            reason = _trial_run(fn, sig)
        self.outcomes[cache_key] = reason
        return reason


_table: _Table | None = None
_table_lock = threading.Lock()
_forced_backend: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "paperzoo_attention_backend", default=None
)


def _current_table() -> _Table:
    """The cached table, rebuilt when the registry object or its backend count changes."""
    global _table
    registry = get_registry()
    entries = registry.entries("backends")
    table = _table
    if table is None or table.registry is not registry or table.size != len(entries):
        with _table_lock:
            table = _table
            if table is None or table.registry is not registry or table.size != len(entries):
                table = _table = _Table(registry, dict(entries))
    return table


def _key(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    attn_mask: torch.Tensor | None,
    is_causal: bool,
    dropout_p: float,
) -> tuple:
    # Field order matches AttentionSignature, so AttentionSignature(*key) rebuilds it.
    if attn_mask is None:
        mask_dtype, mask_grad = None, False
    else:
        mask_dtype, mask_grad = attn_mask.dtype, attn_mask.requires_grad
    grad = torch.is_grad_enabled() and (
        q.requires_grad or k.requires_grad or v.requires_grad or mask_grad
    )
    return (
        q.device,
        q.dtype,
        q.shape[-1],
        v.shape[-1],
        mask_dtype,
        mask_grad and grad,
        bool(is_causal),
        dropout_p > 0.0,
        grad,
    )


def _trial_run(fn: AttentionFn, sig: AttentionSignature) -> str | None:
    """Run ``fn`` on tiny inputs of ``sig``; None if it runs and agrees with SDPA."""
    device = sig.device
    cuda_devices = []
    if device.type == "cuda":
        cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()]
    try:
        with (
            torch.random.fork_rng(devices=cuda_devices),
            torch.autocast(device.type, enabled=False),
            torch.enable_grad() if sig.requires_grad else torch.no_grad(),
        ):
            gen = torch.Generator(device=device)
            gen.manual_seed(0)
            n = _TRIAL_LEN

            def rand(*shape: int) -> torch.Tensor:
                x = torch.randn(*shape, generator=gen, device=device, dtype=torch.float32)
                return x.to(sig.dtype).requires_grad_(sig.requires_grad)

            q, k = rand(1, 2, n, sig.head_dim), rand(1, 2, n, sig.head_dim)
            v = rand(1, 2, n, sig.head_dim_v)
            mask = None
            if sig.mask_dtype == torch.bool:
                mask = torch.rand(1, 1, n, n, generator=gen, device=device) > 0.3
                mask |= torch.eye(n, dtype=torch.bool, device=device)  # no empty rows
            elif sig.mask_dtype is not None:
                mask = torch.randn(1, 1, n, n, generator=gen, device=device).to(sig.mask_dtype)
                mask.requires_grad_(sig.mask_requires_grad)
            dropout_p = 0.1 if sig.dropout else 0.0
            out = fn(q, k, v, attn_mask=mask, is_causal=sig.is_causal, dropout_p=dropout_p)
            if tuple(out.shape) != (1, 2, n, sig.head_dim_v) or out.dtype != sig.dtype:
                return f"trial run returned {tuple(out.shape)} {out.dtype}, expected (B, H, N, Dv)"
            if not torch.isfinite(out).all():
                return "trial run returned non-finite values"
            if not sig.dropout:
                ref_mask = mask if mask is None or mask.dtype == torch.bool else mask.float()
                ref = F.scaled_dot_product_attention(
                    q.float(), k.float(), v.float(), attn_mask=ref_mask, is_causal=sig.is_causal
                )
                err = (out.float() - ref).abs().max().item()
                tol = _TRIAL_ATOL.get(sig.dtype, 1e-3)
                if err > tol:
                    return f"trial run disagrees with SDPA (max error {err:.3g} > {tol:g})"
            if sig.requires_grad:
                out.float().square().sum().backward()
                grads = [t.grad for t in (q, k, v)]
                if any(g is None or not torch.isfinite(g).all() for g in grads):
                    return "trial backward gave missing or non-finite gradients"
    except Exception as exc:  # "no kernel for CPU", "unsupported dtype": all become a reason
        first_line = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        return f"trial run failed: {type(exc).__name__}: {first_line}"[:300]
    return None


def _auto_choice(table: _Table, key: tuple) -> tuple[str, AttentionFn]:
    choice = table.auto.get(key)
    if choice is not None:
        return choice
    with table.lock:
        sig = AttentionSignature(*key)
        choice = (_FALLBACK, F.scaled_dot_product_attention)
        for backend in table.backends:
            if table.evaluate(backend, key, sig) is None:
                fn = backend.fn()
                assert fn is not None
                choice = (backend.name, fn)
                break
        table.auto[key] = choice
    return choice


def _unknown_backend(name: str, known: list[str], where: str) -> BackendUnavailableError:
    close = difflib.get_close_matches(name, known, n=2, cutoff=0.5)
    hint = f"did you mean {' or '.join(map(repr, close))}?" if close else f"known: {known}"
    return BackendUnavailableError(f"unknown attention backend {name!r} ({where}); {hint}")


def _forced_choice(table: _Table, name: str, key: tuple, where: str) -> AttentionFn:
    fn = table.forced.get((name, key))
    if fn is not None:
        return fn
    backend = table.by_name.get(name)
    if backend is None:
        if name == _FALLBACK:  # the kernels plugin is disabled; SDPA still works
            return F.scaled_dot_product_attention
        raise _unknown_backend(name, ["auto", *table.by_name], where)
    reason = backend.unavailable(AttentionSignature(*key), forced=True)
    if reason is not None:
        raise BackendUnavailableError(
            f"attention backend {name!r} ({where}) cannot run these inputs here: {reason}"
        )
    fn = backend.fn()
    assert fn is not None
    table.forced[(name, key)] = fn
    return fn


def _requested() -> tuple[str, str]:
    """The backend forced by context manager or environment, and where it came from."""
    name = _forced_backend.get()
    if name is not None:
        return name, "use_backend()"
    env = os.environ.get(ENV_VAR)
    if env:
        return env.strip(), f"${ENV_VAR}"
    return "auto", "auto"


def _check(q: torch.Tensor, k: torch.Tensor, v: torch.Tensor, attn_mask, is_causal) -> None:
    if q.dim() != 4 or k.dim() != 4 or v.dim() != 4:
        raise ValueError(
            "attention expects q, k, v of shape (B, H, N, D); got "
            f"{tuple(q.shape)}, {tuple(k.shape)}, {tuple(v.shape)}"
        )
    if attn_mask is not None and is_causal:
        raise ValueError("pass either attn_mask or is_causal=True, not both (as torch SDPA)")


def attention(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    scale: float | None = None,
    dropout_p: float = 0.0,
    backend: str = "auto",
) -> torch.Tensor:
    """softmax(q kᵀ · scale + mask) v, with torch SDPA's semantics, on the best backend here.

    Args:
        q: (B, H, Nq, D) queries.
        k: (B, H, Nk, D) keys.
        v: (B, H, Nk, Dv) values.
        attn_mask: bool (True = attend) or additive float mask, broadcastable to (B, H, Nq, Nk).
        is_causal: top-left causal mask (query i sees keys j <= i); exclusive with attn_mask.
        scale: logit scale, default 1/sqrt(D).
        dropout_p: dropout on the attention weights, applied whenever > 0 (pass 0 in eval).
        backend: ``"auto"`` (see module docs), or a registered backend name to force it
            (``"sdpa"``, ``"triton"``, ``"xformers"``, ...). With ``"auto"``, :func:`use_backend`
            and ``$PAPERZOO_ATTENTION_BACKEND`` can still force one.

    Returns:
        (B, H, Nq, Dv), differentiable on every backend.

    Raises:
        BackendUnavailableError: a forced backend cannot run these inputs here.
    """
    if backend == "auto" and torch.compiler.is_compiling():
        # Inside torch.compile the graph is the unit: SDPA is what inductor pattern-matches and
        # lowers to its own flash/efficient kernels, and dispatch (context vars, environment,
        # registry) would only cause graph breaks. An explicit backend= is still honoured.
        return F.scaled_dot_product_attention(
            q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, dropout_p=dropout_p
        )
    fn = _resolve(q, k, v, attn_mask, is_causal, dropout_p, backend)
    return fn(q, k, v, attn_mask=attn_mask, is_causal=is_causal, scale=scale, dropout_p=dropout_p)


def _resolve(q, k, v, attn_mask, is_causal, dropout_p, backend) -> AttentionFn:
    """Everything :func:`attention` does besides the kernel call (the dispatch overhead)."""
    _check(q, k, v, attn_mask, is_causal)
    key = _key(q, k, v, attn_mask, is_causal, dropout_p)
    table = _current_table()
    if backend == "auto":
        backend, where = _requested()
        if backend == "auto":
            return _auto_choice(table, key)[1]
    else:
        where = "backend= argument"
    return _forced_choice(table, backend, key, where)


@contextlib.contextmanager
def use_backend(name: str) -> Iterator[None]:
    """Force ``attention(..., backend="auto")`` calls in this block (and thread/task) to ``name``.

    ``use_backend("auto")`` restores automatic dispatch inside an outer forcing block. The name
    is checked on entry against the registry.
    """
    if not isinstance(name, str) or not name:
        raise TypeError(f"use_backend() takes a backend name, got {name!r}")
    if name != "auto":
        table = _current_table()
        if name not in table.by_name and name != _FALLBACK:
            raise _unknown_backend(name, ["auto", *table.by_name], "use_backend()")
    token = _forced_backend.set(name)
    try:
        yield
    finally:
        _forced_backend.reset(token)


def selected_backend(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> str:
    """Name of the backend ``attention(q, k, v, ...)`` would run (forcing included)."""
    _check(q, k, v, attn_mask, is_causal)
    key = _key(q, k, v, attn_mask, is_causal, dropout_p)
    table = _current_table()
    name, where = _requested()
    if name == "auto":
        return _auto_choice(table, key)[0]
    _forced_choice(table, name, key, where)
    return name


def explain(
    q: torch.Tensor,
    k: torch.Tensor,
    v: torch.Tensor,
    *,
    attn_mask: torch.Tensor | None = None,
    is_causal: bool = False,
    dropout_p: float = 0.0,
) -> list[tuple[str, str]]:
    """Every registered backend, in auto order, with ``"ok"`` or the reason it cannot run these
    inputs in auto mode. The first ``"ok"`` is the one ``backend="auto"`` picks."""
    _check(q, k, v, attn_mask, is_causal)
    key = _key(q, k, v, attn_mask, is_causal, dropout_p)
    table = _current_table()
    sig = AttentionSignature(*key)
    with table.lock:
        return [(b.name, table.evaluate(b, key, sig) or "ok") for b in table.backends]


def dispatch_info() -> dict[str, Any]:
    """Counters for tests and debugging: registered backends (in order), trial runs so far,
    and the cached auto choices as {signature: backend name}."""
    table = _current_table()
    return {
        "backends": [b.name for b in table.backends],
        "trials": table.trials,
        "choices": {AttentionSignature(*key): name for key, (name, _) in table.auto.items()},
    }
