"""Hook implementations for paperzoo-kernels. Light by contract: imports only paperzoo.core.

Factories and probes are import strings; nothing here imports torch, triton or xformers.
"""

from __future__ import annotations

from paperzoo.core import BackendSpec, hookimpl

__all__ = ["paperzoo_backends"]

_BACKENDS = "paperzoo.kernels.backends"


@hookimpl
def paperzoo_backends() -> list[BackendSpec]:
    return [
        BackendSpec(
            name="xformers",
            factory=f"{_BACKENDS}:make_xformers",
            probe=f"{_BACKENDS}:probe_xformers",
            priority=10,
            description="xformers memory_efficient_attention (extra: paperzoo-kernels[xformers])",
        ),
        BackendSpec(
            name="triton",
            factory=f"{_BACKENDS}:make_triton",
            probe=f"{_BACKENDS}:probe_triton",
            priority=20,
            description="paperzoo Triton flash attention, forward and backward (CUDA)",
        ),
        BackendSpec(
            name="sdpa",
            factory=f"{_BACKENDS}:make_sdpa",
            priority=1000,
            description="torch.nn.functional.scaled_dot_product_attention (always available)",
        ),
    ]
