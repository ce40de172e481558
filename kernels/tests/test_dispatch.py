"""Backend dispatch of paperzoo.kernels.attention: auto order, forcing, the registry, probes."""

from __future__ import annotations

import importlib.util

import pytest
import torch
import torch.nn.functional as F

from paperzoo.core import BackendSpec
from paperzoo.kernels import (
    ENV_VAR,
    BackendUnavailableError,
    attention,
    dispatch_info,
    explain,
    reference_attention,
    selected_backend,
    use_backend,
)
from paperzoo.kernels.backends import probe_triton, probe_xformers

# tests/third_party_backend.py: importable because pytest puts tests/ on sys.path
_TP = "third_party_backend"


def _qkv(b=2, h=3, n=33, d=32, dtype=torch.float32, grad=False, n_k=None):
    g = torch.Generator().manual_seed(n * 7 + d)
    n_k = n if n_k is None else n_k

    def make(m):
        return torch.randn(b, h, m, d, generator=g, dtype=dtype).requires_grad_(grad)

    return make(n), make(n_k), make(n_k)


def _register(registry, name, *specs):
    import third_party_backend as tp

    registry.register(tp.Plugin(*specs), name=name, dist="third-party-dist")


@pytest.fixture(autouse=True)
def _no_env_forcing(monkeypatch):
    monkeypatch.delenv(ENV_VAR, raising=False)


# -- auto on this (CPU) machine ------------------------------------------------------------------


@pytest.mark.parametrize(
    "mask_kind, causal, n_k",
    [(None, False, 33), ("bool", False, 20), ("float", False, 41), (None, True, 33)],
)
def test_auto_on_cpu_is_sdpa_with_identical_values_and_grads(mask_kind, causal, n_k):
    q, k, v = _qkv(grad=True, n_k=n_k)
    mask = None
    if mask_kind == "bool":
        mask = torch.rand(1, 1, q.shape[2], n_k) > 0.4
        mask[..., 0] = True
    elif mask_kind == "float":
        mask = torch.randn(2, 1, q.shape[2], n_k)
    assert selected_backend(q, k, v, attn_mask=mask, is_causal=causal) == "sdpa"
    out = attention(q, k, v, attn_mask=mask, is_causal=causal)
    grads = torch.autograd.grad(out.square().sum(), (q, k, v))
    ref = F.scaled_dot_product_attention(q, k, v, attn_mask=mask, is_causal=causal)
    ref_grads = torch.autograd.grad(ref.square().sum(), (q, k, v))
    torch.testing.assert_close(out, ref, rtol=0, atol=0)
    for g, rg in zip(grads, ref_grads):
        torch.testing.assert_close(g, rg, rtol=0, atol=0)
    expected = reference_attention(q, k, v, attn_mask=mask, is_causal=causal)
    torch.testing.assert_close(out.double(), expected, rtol=1e-5, atol=1e-5)


def test_explain_gives_reasons_for_the_backends_that_cannot_run_here():
    q, k, v = _qkv()
    reasons = dict(explain(q, k, v))
    assert list(reasons) == ["xformers", "triton", "sdpa"]  # priority order
    assert reasons["sdpa"] == "ok"
    if importlib.util.find_spec("xformers") is None:
        assert "not installed" in reasons["xformers"]
        assert "paperzoo-kernels[xformers]" in reasons["xformers"]
    if not torch.cuda.is_available():
        assert "CPU" in reasons["triton"]


def test_dropout_runs_and_differs_from_no_dropout():
    q, k, v = _qkv(n=64, grad=True)
    torch.manual_seed(0)
    dropped = attention(q, k, v, dropout_p=0.5)
    plain = attention(q, k, v)
    assert not torch.allclose(dropped, plain)
    dropped.sum().backward()
    assert q.grad is not None and torch.isfinite(q.grad).all()


def test_bad_inputs_name_the_problem():
    q, k, v = _qkv()
    with pytest.raises(ValueError, match=r"\(B, H, N, D\)"):
        attention(q[0], k[0], v[0])
    with pytest.raises(ValueError, match="not both"):
        attention(q, k, v, attn_mask=torch.ones(33, 33, dtype=torch.bool), is_causal=True)


# -- xformers absent (this environment) ------------------------------------------------------------


@pytest.mark.skipif(importlib.util.find_spec("xformers") is not None, reason="xformers installed")
def test_xformers_absent_never_crashes_and_forcing_it_says_how_to_install():
    ok, reason = probe_xformers()
    assert not ok and "pip install 'paperzoo-kernels[xformers]'" in reason
    q, k, v = _qkv()
    assert selected_backend(q, k, v) != "xformers"
    torch.testing.assert_close(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    with pytest.raises(BackendUnavailableError, match=r"xformers.*not installed"):
        attention(q, k, v, backend="xformers")


def test_triton_probe_reports_where_it_can_run():
    ok, reason = probe_triton()
    if torch.cuda.is_available():
        assert ok and "CUDA" in reason
    else:  # the test session runs the interpreter (conftest)
        assert ok and "interpreter" in reason


# -- forcing -------------------------------------------------------------------------------------


def test_forcing_by_argument_context_and_env_with_precedence(monkeypatch, restore_registry):
    _register(
        restore_registry,
        "tp_forcing",
        BackendSpec(name="explicit", factory=f"{_TP}:make_explicit", priority=5000),
    )
    import third_party_backend as tp

    q, k, v = _qkv()
    assert selected_backend(q, k, v) == "sdpa"  # lower priority than sdpa: auto never gets there

    before = tp.ExplicitSoftmaxBackend.calls
    out = attention(q, k, v, backend="explicit")
    assert tp.ExplicitSoftmaxBackend.calls == before + 1
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v), rtol=1e-5, atol=1e-5)

    with use_backend("explicit"):
        assert selected_backend(q, k, v) == "explicit"
        attention(q, k, v)
        assert tp.ExplicitSoftmaxBackend.calls == before + 2
        with use_backend("auto"):  # nested blocks restore auto dispatch
            assert selected_backend(q, k, v) == "sdpa"
        assert selected_backend(q, k, v) == "explicit"
        attention(q, k, v, backend="sdpa")  # the argument beats the context
        assert tp.ExplicitSoftmaxBackend.calls == before + 2
    assert selected_backend(q, k, v) == "sdpa"

    monkeypatch.setenv(ENV_VAR, "explicit")
    assert selected_backend(q, k, v) == "explicit"
    with use_backend("sdpa"):  # the context beats the environment
        assert selected_backend(q, k, v) == "sdpa"
    monkeypatch.setenv(ENV_VAR, "sdpx")
    with pytest.raises(BackendUnavailableError, match=r"PAPERZOO_ATTENTION_BACKEND.*'sdpa'"):
        attention(q, k, v)


def test_unknown_names_suggest_the_close_one():
    q, k, v = _qkv()
    with pytest.raises(BackendUnavailableError, match="did you mean 'triton'"):
        attention(q, k, v, backend="trition")
    with pytest.raises(BackendUnavailableError, match="did you mean 'sdpa'"), use_backend("spda"):
        pass


def test_forced_backend_that_cannot_take_the_inputs_raises_with_reason():
    q, k, v = _qkv(d=8)
    if torch.cuda.is_available():
        q, k, v = (t.cuda() for t in (q, k, v))
    with pytest.raises(BackendUnavailableError, match="head dim 8"):
        attention(q, k, v, backend="triton")


# -- the registry: third-party backends, present-but-CPU-only, caching ---------------------------


def test_a_third_party_backend_with_higher_priority_wins_auto(restore_registry):
    import third_party_backend as tp

    q, k, v = _qkv(grad=True)
    assert selected_backend(q, k, v) == "sdpa"
    _register(
        restore_registry,
        "tp_first",
        BackendSpec(name="explicit_first", factory=f"{_TP}:make_explicit", priority=0),
    )
    assert dispatch_info()["backends"][0] == "explicit_first"  # the cache saw the new entry
    before = tp.ExplicitSoftmaxBackend.calls
    attention(q, k, v)
    assert tp.ExplicitSoftmaxBackend.calls == before + 2  # its trial run, then the call
    out = attention(q, k, v)
    assert tp.ExplicitSoftmaxBackend.calls == before + 3  # cached: no second trial
    out.sum().backward()
    assert q.grad is not None
    # its supports() refuses dropout, so those calls still reach sdpa
    assert selected_backend(q, k, v, dropout_p=0.1) == "sdpa"


def test_present_but_cpu_only_backend_is_probed_once_per_signature(restore_registry):
    """torch's memory-efficient SDPA kernel is installed everywhere but has no CPU kernel, the
    situation of xformers on a CPU box. Registered ahead of everything, it must be tried once
    per signature, recorded with its real error, and skipped without a crash."""
    _register(
        restore_registry,
        "tp_cuda_only",
        BackendSpec(
            name="mem_efficient",
            factory="paperzoo.kernels.backends:make_sdpa_efficient",
            priority=0,
        ),
    )
    q, k, v = _qkv()
    start = dispatch_info()["trials"]
    for _ in range(3):
        out = attention(q, k, v)
    torch.testing.assert_close(out, F.scaled_dot_product_attention(q, k, v))
    info = dispatch_info()
    if torch.cuda.is_available():
        pytest.skip("on a GPU the kernel exists; the CPU-only path is what this test is for")
    assert info["trials"] == start + 1  # one trial for three calls
    assert list(info["choices"].values()) == ["sdpa"]
    reason = dict(explain(q, k, v))["mem_efficient"]
    assert reason.startswith("trial run failed: RuntimeError")
    # a new signature (bf16, causal) gets its own trial, once
    qb, kb, vb = (t.bfloat16() for t in (q, k, v))
    attention(qb, kb, vb, is_causal=True)
    attention(qb, kb, vb, is_causal=True)
    assert dispatch_info()["trials"] == start + 2
    # forcing skips the trial, so the backend's own error surfaces
    with pytest.raises(RuntimeError):
        attention(q, k, v, backend="mem_efficient")


def test_a_backend_returning_wrong_dtype_is_rejected_by_the_trial(restore_registry):
    # reference_attention computes in float64: correct values, wrong contract for fp32 inputs
    _register(
        restore_registry,
        "tp_wrong_dtype",
        BackendSpec(
            name="float64_ref",
            factory=f"{_TP}:make_float64_reference",
            priority=0,
        ),
    )
    q, k, v = _qkv()
    assert selected_backend(q, k, v) == "sdpa"
    assert "expected (B, H, N, Dv)" in dict(explain(q, k, v))["float64_ref"]


def test_trial_runs_leave_the_callers_rng_untouched(restore_registry):
    _register(
        restore_registry,
        "tp_rng",
        BackendSpec(name="explicit_rng", factory=f"{_TP}:make_explicit", priority=0),
    )
    q, k, v = _qkv(n=17, d=48)  # a fresh signature, so a trial runs below
    torch.manual_seed(123)
    expected = torch.rand(4)
    torch.manual_seed(123)
    trials = dispatch_info()["trials"]
    attention(q, k, v, dropout_p=0.0)
    assert dispatch_info()["trials"] == trials + 1
    torch.testing.assert_close(torch.rand(4), expected)


def test_broken_probe_and_factory_disable_only_their_backend(restore_registry):
    _register(
        restore_registry,
        "tp_broken",
        BackendSpec(
            name="broken_probe",
            factory=f"{_TP}:make_explicit",
            probe=f"{_TP}:does_not_exist",
            priority=0,
        ),
        BackendSpec(name="broken_factory", factory=f"{_TP}:missing_factory", priority=1),
    )
    q, k, v = _qkv()
    reasons = dict(explain(q, k, v))
    assert reasons["broken_probe"].startswith("probe failed: ImportError")
    assert reasons["broken_factory"].startswith("factory failed: ImportError")
    assert selected_backend(q, k, v) == "sdpa"


def test_attention_works_with_the_kernels_plugin_disabled(monkeypatch, restore_registry):
    from paperzoo.core import reload_plugins

    monkeypatch.setenv("PAPERZOO_DISABLE_PLUGINS", "kernels")
    reload_plugins()
    q, k, v = _qkv()
    assert dispatch_info()["backends"] == []
    torch.testing.assert_close(attention(q, k, v), F.scaled_dot_product_attention(q, k, v))
    torch.testing.assert_close(
        attention(q, k, v, backend="sdpa"), F.scaled_dot_product_attention(q, k, v)
    )


def test_torch_compile_traces_auto_attention_without_graph_breaks():
    def block(q, k, v):
        return attention(q, k, v, is_causal=True) * 2

    q, k, v = _qkv(n=16)
    report = torch._dynamo.explain(block)(q, k, v)
    assert report.graph_count == 1 and report.graph_break_count == 0
    torch._dynamo.reset()
