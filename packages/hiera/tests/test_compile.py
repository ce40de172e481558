"""torch.compile (inductor) on a small Hiera: same outputs and gradients as eager."""

from __future__ import annotations

import pytest
import torch

from paperzoo.hiera.model import hiera_toy_8x64


@pytest.mark.slow  # inductor's C++ compilation takes about a minute on 2 CPU cores
def test_compiled_matches_eager():
    torch.manual_seed(0)
    model = hiera_toy_8x64(num_classes=5)
    x = torch.randn(2, 3, 8, 64, 64)
    eager = model(x)
    eager.sum().backward()
    grads = {k: p.grad.clone() for k, p in model.named_parameters()}
    model.zero_grad()
    compiled = torch.compile(model, fullgraph=True)
    out = compiled(x)
    out.sum().backward()
    torch.testing.assert_close(out, eager, rtol=1e-4, atol=1e-5)
    for k, p in model.named_parameters():
        torch.testing.assert_close(p.grad, grads[k], rtol=1e-3, atol=1e-5, msg=k)
