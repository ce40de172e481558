"""Architecture: parameter counts vs PyTorchVideo's hub builders and the paper, FLOPs."""

from __future__ import annotations

import pytest
import torch

from paperzoo.core import get_model
from paperzoo.pytorchvideo import (
    count_flops,
    count_params,
    efficient_x3d_xs,
    x3d_l,
    x3d_m,
    x3d_s,
    x3d_xs,
)
from paperzoo.pytorchvideo.x3d import create_x3d, round_width

hub = pytest.importorskip("pytorchvideo.models.hub")

SIZES = {"x3d_xs": x3d_xs, "x3d_s": x3d_s, "x3d_m": x3d_m, "x3d_l": x3d_l}


@pytest.mark.parametrize("name", list(SIZES))
def test_param_count_matches_pytorchvideo_hub(name):
    ours = count_params(SIZES[name]())
    assert ours == count_params(getattr(hub, name)(pretrained=False))
    assert ours == get_model(name).num_params


def test_param_counts_known_values():
    # X3D paper Table 3: 3.8 M (XS/S/M), 6.1 M (L); PyTorchVideo's zoo: 3.79 M / 6.15 M.
    assert count_params(x3d_xs()) == 3_794_274
    assert count_params(x3d_l()) == 6_153_384
    assert count_params(efficient_x3d_xs()) == 3_794_322  # + the BN of res2's shortcut


# Paper Table 3 GFLOPs per view: XS 0.6 and S 2.0 at 160², M 6.2 at 256², L 24.8 at 356².
@pytest.mark.parametrize(
    "name, shape, paper_gflops",
    [
        ("x3d_xs", (1, 3, 4, 160, 160), 0.6),
        ("x3d_s", (1, 3, 13, 160, 160), 2.0),
        ("x3d_m", (1, 3, 16, 256, 256), 6.2),
        ("x3d_l", (1, 3, 16, 356, 356), 24.8),
    ],
)
def test_flops_match_paper(name, shape, paper_gflops):
    model = SIZES[name]().to("meta")  # counted on the meta device: no arithmetic is done
    gflops = count_flops(model, shape) / 1e9
    assert gflops == pytest.approx(paper_gflops, abs=0.05)
    assert gflops == pytest.approx(get_model(name).flops / 1e9, rel=1e-3)


def test_round_width_rule():
    assert [round_width(w, 2.0) for w in (12, 24, 48, 96)] == [24, 48, 96, 192]
    assert round_width(54, 0.0625) == 8  # SE width of res2 (min 8)
    assert round_width(432, 0.0625) == 32


def test_forward_shapes_and_fully_convolutional_head():
    model = x3d_xs(num_classes=5, input_crop_size=64).eval()
    with torch.no_grad():
        assert model(torch.randn(2, 3, 4, 64, 64)).shape == (2, 5)
        # A larger test clip: the 4x2x2 pooling window slides and its grid is averaged.
        assert model(torch.randn(1, 3, 8, 96, 96)).shape == (1, 5)
        feats = model.forward_intermediates(torch.randn(1, 3, 4, 64, 64))
    assert [f.shape[1] for f in feats] == [24, 24, 48, 96, 192]
    assert [f.shape[-1] for f in feats] == [32, 16, 8, 4, 2]


def test_builder_takes_norm_and_activation_callables():
    calls = []

    # Like PyTorchVideo, the shortcut norm is built with num_features only.
    def norm(num_features, eps=1e-5, momentum=0.1):
        calls.append(num_features)
        return torch.nn.GroupNorm(1, num_features, eps=eps)

    model = create_x3d(
        input_clip_length=4, input_crop_size=64, model_num_class=3, norm=norm,
        activation=torch.nn.GELU, inner_act=torch.nn.Hardswish,
    )  # fmt: skip
    assert calls and not any(isinstance(m, torch.nn.BatchNorm3d) for m in model.modules())
    assert any(isinstance(m, torch.nn.GELU) for m in model.modules())
    assert model(torch.randn(1, 3, 4, 64, 64)).shape == (1, 3)


def test_too_small_input_is_a_clear_error():
    with pytest.raises(ValueError, match="smaller than the network's stride"):
        create_x3d(input_clip_length=4, input_crop_size=16)
