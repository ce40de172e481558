import time

import pytest
import torch

from paperzoo.slowfast import model as models


@pytest.mark.slow  # inductor's C++ codegen takes minutes on a loaded 2-core machine
def test_torch_compile_matches_eager():
    torch.manual_seed(0)
    net = models.slowfast_tiny(num_classes=6).eval()
    clip = torch.randn(2, 3, 8, 32, 32)
    with torch.no_grad():
        expected = net(clip)
        start = time.perf_counter()
        compiled = torch.compile(net, fullgraph=True)
        got = compiled(clip)
        print(f"compile + first call: {time.perf_counter() - start:.1f} s")
    torch.testing.assert_close(got, expected, rtol=1e-4, atol=1e-5)


def test_torch_compile_traces_the_whole_graph():
    """The forward has no graph breaks: dynamo captures it as one graph (no codegen here)."""
    import torch._dynamo

    net = models.slowfast_tiny(num_classes=6).eval()
    clip = torch.randn(1, 3, 8, 32, 32)
    explanation = torch._dynamo.explain(net)(clip)
    assert explanation.graph_break_count == 0
    assert explanation.graph_count == 1


@pytest.mark.gpu
def test_cuda_forward_backward_matches_cpu(randomize_norms):
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    net = randomize_norms(models.slowfast_tiny(num_classes=6)).eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    # cuDNN convolutions default to TF32 (10-bit mantissa); compare in full fp32.
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        expected = net(clip)
        got = net.cuda()(clip.cuda()).cpu()
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-4)
    net.train()
    loss = net(clip.cuda()).logsumexp(dim=1).mean()
    loss.backward()
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in net.parameters())


@pytest.mark.gpu
def test_cuda_compile_matches_eager():
    if not torch.cuda.is_available():
        pytest.skip("needs CUDA")
    torch.manual_seed(0)
    net = models.slowfast_r50(head_pool_kernel_sizes=None).cuda().eval()
    clip = torch.randn(2, 3, 32, 112, 112, device="cuda")
    with torch.no_grad(), torch.backends.cudnn.flags(enabled=True, allow_tf32=False):
        expected = net(clip)
        got = torch.compile(net)(clip)
    torch.testing.assert_close(got, expected, rtol=1e-3, atol=1e-3)
