"""Parity with the reference implementations, through our converter.

The official ``hiera`` package (pip hiera-transformer, whose ``model_state`` checkpoints are the
official format) and timm's ``hiera_*`` are built with their own random initialisation, saved
to a file in their layout, loaded with ``create_model(name, checkpoint_path=...)`` and run on
the same input in eval mode.

The official ``Head`` applies softmax when not training; ours always returns logits. Both are
compared: our ``softmax(logits)`` against the official eval output, and the logits against the
official model with its eval activation replaced by the identity. The classifier weights are
re-drawn (std 0.02) before saving so that logits are O(1) and the check has teeth (the
references start it at 0.001x or zero).
"""

from __future__ import annotations

import hiera
import pytest
import timm
import torch
from hiera.hiera import Hiera as OfficialHiera

from paperzoo.core import create_model
from paperzoo.hiera.convert import detect_format

ATOL = 1e-5


def _official_video(**overrides):
    args = dict(
        input_size=(8, 64, 64), q_stride=(1, 2, 2), mask_unit_size=(1, 8, 8),
        patch_kernel=(3, 7, 7), patch_stride=(2, 4, 4), patch_padding=(1, 3, 3),
        sep_pos_embed=True, num_classes=400,
    )  # fmt: skip
    return OfficialHiera(**{**args, **overrides})


def _save(tmp_path, state, name="ckpt.pth"):
    path = tmp_path / name
    torch.save(state, path)
    return path


def _compare_to_official(ref, name, x, tmp_path, **overrides):
    with torch.no_grad():
        ref.head.projection.weight.normal_(0.0, 0.02)
        ref.head.projection.bias.normal_(0.0, 0.02)
    ref.eval()
    path = _save(tmp_path, {"model_state": ref.state_dict()})
    ours = create_model(name, checkpoint_path=path, **overrides).eval()
    with torch.no_grad():
        probs_ref = ref(x)  # official eval mode: softmax
        ref.head.act_func = lambda t: t
        logits_ref, inter_ref = ref(x, return_intermediates=True)
        logits = ours(x)
        inter = ours.forward_intermediates(x, output_fmt="NHWC", intermediates_only=True)
    assert logits.abs().max() > 0.1  # O(1) logits: the comparison is not vacuous
    diffs = {"logits": (logits - logits_ref).abs().max().item()}
    diffs["softmax"] = (logits.softmax(-1) - probs_ref).abs().max().item()
    for i, (a, b) in enumerate(zip(inter, inter_ref)):
        assert a.shape == b.shape
        diffs[f"stage{i + 1}"] = (a - b).abs().max().item()
    print(name, diffs)
    assert max(diffs.values()) < ATOL, diffs
    return ours


def test_official_tiny_image(tmp_path):
    torch.manual_seed(0)
    ref = hiera.hiera_tiny_224()
    _compare_to_official(ref, "hiera_tiny_224", torch.randn(1, 3, 224, 224), tmp_path)


def test_official_base_image(tmp_path):
    torch.manual_seed(1)
    ref = hiera.hiera_base_224()
    assert detect_format({"model_state": ref.state_dict()}) == "official"
    _compare_to_official(ref, "hiera_base_224", torch.randn(1, 3, 224, 224), tmp_path)


def test_official_base_video_small_input(tmp_path):
    """Hiera-B 16x224's architecture on 8x64x64 clips (same layers, smaller token grid)."""
    torch.manual_seed(2)
    ref = _official_video(embed_dim=96, num_heads=1, stages=(2, 3, 16, 3))
    ours = _compare_to_official(
        ref, "hiera_base_16x224", torch.randn(2, 3, 8, 64, 64), tmp_path, input_size=(8, 64, 64)
    )
    with torch.device("meta"):
        full = create_model("hiera_base_16x224")
    # Same parameters as the official full-size model apart from the position embeddings.
    n_pos = lambda m: sum(  # noqa: E731
        p.numel() for k, p in m.named_parameters() if k.startswith("pos_embed")
    )
    n_all = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    assert n_all(ours) - n_pos(ours) == n_all(ref) - n_pos(ref)
    assert n_all(full) == 51_092_560


@pytest.mark.parametrize("name", ["hiera_tiny_224", "hiera_base_224"])
def test_timm(name, tmp_path):
    torch.manual_seed(3)
    ref = timm.create_model(name).eval()
    with torch.no_grad():
        ref.head.fc.weight.normal_(0.0, 0.02)  # timm initialises the classifier to zero
        ref.head.fc.bias.normal_(0.0, 0.02)
    path = tmp_path / "timm.safetensors"
    from safetensors.torch import save_file

    save_file(ref.state_dict(), str(path))
    ours = create_model(name, checkpoint_path=path).eval()
    x = torch.randn(1, 3, 224, 224)
    with torch.no_grad():
        logits_ref = ref(x)
        inter_ref = ref.forward_intermediates(x, intermediates_only=True)
        logits = ours(x)
        inter = ours.forward_intermediates(x, intermediates_only=True)
    assert logits.abs().max() > 0.1
    diffs = {"logits": (logits - logits_ref).abs().max().item()}
    for i, (a, b) in enumerate(zip(inter, inter_ref)):
        diffs[f"stage{i + 1}"] = (a - b).abs().max().item()
    print(name, "timm", diffs)
    assert max(diffs.values()) < ATOL, diffs
