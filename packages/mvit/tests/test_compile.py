"""torch.compile runs the model (one small config) and gives the eager outputs and gradients."""

from __future__ import annotations

import pytest
import torch

from paperzoo.mvit.model import mvit_tiny_video


@pytest.mark.slow
def test_compile_matches_eager():
    torch.manual_seed(0)
    model = mvit_tiny_video(num_classes=10).eval()
    x = torch.randn(2, 3, 8, 32, 32)
    compiled = torch.compile(model)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), model(x), atol=1e-4, rtol=1e-4)
    model.train()
    grads = []
    for fn in (model, compiled):
        model.zero_grad()
        torch.manual_seed(1)  # same drop-path draws
        fn(x).square().mean().backward()
        grads.append(model.patch_embed.proj.weight.grad.clone())
    torch.testing.assert_close(grads[1], grads[0], atol=1e-4, rtol=1e-3)
