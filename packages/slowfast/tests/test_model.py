import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

from paperzoo.slowfast import model as models
from paperzoo.slowfast.model import pack_pathways


def _count(net):
    return sum(p.numel() for p in net.parameters())


# Ours vs PyTorchVideo 0.1.5's hub models, built on the meta device (no memory, no init cost).
HUB_PAIRS = [
    ("slowfast_r50", "slowfast_r50", 34_566_488),
    ("slowfast_r101", "slowfast_r101", 62_826_968),
    ("slowfast_16x8_r101_50_50", "slowfast_16x8_r101_50_50", 53_774_808),
    ("slow_r50", "slow_r50", 32_454_096),
    ("slowfast_r50_detection", "slowfast_r50_detection", 33_828_888),
    ("slow_r50_detection", "slow_r50_detection", 31_798_416),
]


@pytest.mark.parametrize(("ours", "hub", "expected"), HUB_PAIRS)
def test_param_count_equals_pytorchvideo(ours, hub, expected):
    import pytorchvideo.models.hub as ptv_hub

    with torch.device("meta"):
        ref = getattr(ptv_hub, hub)()
        net = getattr(models, ours)()
    assert _count(net) == _count(ref) == expected


def test_param_count_4x16_and_r101_50_50():
    # No hub model: PySlowFast's configs differ from R50 8x8 / R101 only in the fusion kernel
    # (5 vs 7: 4 laterals x (7 - 5) x C_f x 2 C_f) and in temporal kernels (the 50_50 R101
    # keeps 3x1x1 in 6 of 23 res4 blocks: 17 blocks x 2 pathways lose 2/3 of conv_a).
    with torch.device("meta"):
        r50, r50_4x16 = models.slowfast_r50(), models.slowfast_4x16_r50()
        r101, r101_50_50 = models.slowfast_r101(), models.slowfast_8x8_r101_50_50()
    fast = [8, 32, 64, 128]  # Fast-pathway widths entering the four laterals
    assert _count(r50) - _count(r50_4x16) == sum(2 * 2 * c * c for c in fast)
    # res4 conv_a: slow 1024 + 2*128 -> 256 for block 0, 1024 -> 256 after; fast 128 -> 32.
    removed = 17 * (2 * 1024 * 256 + 2 * 128 * 32)
    assert _count(r101) - _count(r101_50_50) == removed


def _gmacs(net, inputs):
    with FlopCounterMode(display=False) as counter:
        net(inputs)
    return counter.get_total_flops() / 2e9  # torch counts 2 FLOPs per multiply-add


@pytest.mark.parametrize(
    ("name", "frames", "expected"),
    [
        ("slowfast_r50", 32, 65.7),  # paper Table 2, 8x8 R50
        ("slowfast_4x16_r50", 32, 36.1),  # 4x16 R50
        ("slowfast_8x8_r101_50_50", 32, 106.0),  # 8x8 R101
        ("slowfast_16x8_r101_50_50", 64, 213.0),  # 16x8 R101
    ],
)
def test_flops_match_paper(name, frames, expected):
    # One 256² test view; the head pools globally there (fully convolutional testing).
    with torch.device("meta"):
        net = getattr(models, name)(head_pool_kernel_sizes=None).eval()
        clip = torch.empty(1, 3, frames, 256, 256)
        gmacs = _gmacs(net, clip)
    assert gmacs == pytest.approx(expected, rel=0.005)


def test_pack_pathways_takes_linspace_frames():
    clip = torch.arange(32.0).view(1, 1, 32, 1, 1).expand(2, 3, 32, 4, 4)
    slow, fast = pack_pathways(clip, alpha=4)
    assert fast is clip
    assert slow.shape == (2, 3, 8, 4, 4)
    # PySlowFast PackPathway: linspace(0, T - 1, T // alpha).long()
    assert slow[0, 0, :, 0, 0].tolist() == [0, 4, 8, 13, 17, 22, 26, 31]
    single, _ = pack_pathways(clip[0], alpha=8)
    assert single.shape == (3, 4, 4, 4)
    with pytest.raises(ValueError, match="too short"):
        pack_pathways(clip[:, :, :2], alpha=4)


def test_forward_shapes_and_pathway_inputs():
    torch.manual_seed(0)
    net = models.slowfast_tiny(num_classes=7).eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    feats = net.forward_features(clip)
    assert [f.shape for f in feats] == [(2, 256, 4, 2, 2), (2, 64, 16, 2, 2)]
    with torch.no_grad():
        logits = net(clip)
        same = net(pack_pathways(clip, 4))
    assert logits.shape == (2, 7)
    torch.testing.assert_close(logits, same)
    with pytest.raises(ValueError, match="alpha=4"):
        net([clip[:, :, :8], clip])  # Slow clip with too many frames


def test_slow_only_keeps_slow_frames():
    torch.manual_seed(0)
    net = models.slow_tiny(num_classes=5).eval()
    clip = torch.randn(1, 3, 16, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(net(clip), net([pack_pathways(clip, 4)[0]]))
    assert len(net.fusions) == 0 and net.num_pathways == 1


def test_init_zeroes_last_norm_of_each_branch():
    net = models.slowfast_tiny()
    finals = [m for m in net.modules() if getattr(m, "final_norm", False)]
    assert len(finals) == 8  # one bottleneck per stage, two pathways
    assert all(torch.count_nonzero(m.weight) == 0 for m in finals)
    others = [m for m in net.modules() if isinstance(m, torch.nn.BatchNorm3d) and m not in finals]
    assert all(torch.all(m.weight == 1) for m in others)
    assert net.head.proj.weight.std().item() == pytest.approx(0.01, rel=0.3)


def test_head_pool_kernel_sizes_validated():
    with pytest.raises(ValueError, match="one \\(t, h, w\\) per pathway"):
        models.slowfast_tiny(head_pool_kernel_sizes=((1, 2, 2),))
    with pytest.raises(ValueError, match="one temporal kernel per block"):
        models.slowfast_tiny(stage_temporal_kernels=((1, 1, (3, 3), 3), (3, 3, 3, 3)))


def test_detector_needs_boxes():
    net = models.slowfast_tiny(head="roi", num_classes=3).eval()
    clip = torch.randn(1, 3, 8, 64, 64)
    with pytest.raises(ValueError, match="needs boxes"):
        net(clip)
    with pytest.raises(ValueError, match=r"\(K, 5\)"):
        net(clip, torch.zeros(2, 4))
    out = net(clip, torch.tensor([[0.0, 0.0, 0.0, 32.0, 32.0], [0.0, 8.0, 8.0, 60.0, 50.0]]))
    assert out.shape == (2, 3)
