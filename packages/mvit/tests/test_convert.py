"""The official PySlowFast / facebookresearch-mvit checkpoint layouts, written by the tests.

Each test writes a checkpoint the way the official code saves it (``{"model_state": ...,
"epoch": ...}`` in a ``.pyth`` file, PySlowFast's key names) from a reference implementation's
random weights, renaming keys with tables written here, independently of ``convert.py``. The
model loaded from that file must then match the reference's outputs.
"""

from __future__ import annotations

import re

import pytest
import torch

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.mvit import model as M
from paperzoo.mvit.convert import convert_state_dict, detect_format, load_checkpoint, to_pyslowfast

ATOL = 1e-5


def _pyslowfast_from_pytorchvideo(state: dict, *, merged_qkv: bool) -> dict:
    """pytorchvideo keys -> PySlowFast ``MViT`` keys. The MViT v1 release used separate
    ``attn.q/k/v`` projections; later PySlowFast merges them into ``attn.qkv``."""
    renames = {
        "patch_embed.patch_model.": "patch_embed.proj.",
        "cls_positional_encoding.": "",
        "norm_embed.": "norm.",
        "head.proj.": "head.projection.",
    }
    out = {}
    for key, value in state.items():
        for old, new in renames.items():
            if key.startswith(old):
                key = new + key[len(old) :]
        out[key] = value
    if merged_qkv:
        for key in [k for k in out if re.search(r"\.attn\.q\.(weight|bias)$", k)]:
            prefix, kind = key.rsplit(".q.", 1)
            parts = [out.pop(f"{prefix}.{p}.{kind}") for p in "qkv"]
            out[f"{prefix}.qkv.{kind}"] = torch.cat(parts)
    return out


def _write_pyth(path, model_state: dict) -> None:
    torch.save({"epoch": 200, "model_state": model_state, "optimizer_state": {}}, path)


def test_pyslowfast_mvit_b_checkpoints(tmp_path):
    """Both PySlowFast layouts of MViT-B: the v1 release's separate q/k/v, and merged qkv."""
    from pytorchvideo.models.hub import vision_transformers as ptv

    torch.manual_seed(0)
    reference = ptv.mvit_base_16x4(spatial_size=32, temporal_size=4).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        expected = reference(x)
    for merged_qkv in (False, True):
        path = tmp_path / f"MVIT_B_16x4_merged{int(merged_qkv)}.pyth"
        state = _pyslowfast_from_pytorchvideo(reference.state_dict(), merged_qkv=merged_qkv)
        assert ("blocks.0.attn.qkv.weight" in state) is merged_qkv
        _write_pyth(path, state)
        ours = create_model(
            "mvit_base_16x4", checkpoint_path=path, spatial_size=32, temporal_size=4
        ).eval()
        with torch.no_grad():
            torch.testing.assert_close(ours(x), expected, atol=ATOL, rtol=0)


def test_pyslowfast_mvitv2_s_checkpoint(tmp_path, small_torchvision_mvit):
    """MViTv2-S 16x4 (PySlowFast ``configs/Kinetics/MVITv2_S_16x4.yaml``) from torchvision's
    weights: torchvision's names mapped to PySlowFast's here."""
    tv = small_torchvision_mvit(32, 4)
    torch.manual_seed(1)
    reference = tv.mvit_v2_s().eval()
    state = {}
    for key, value in reference.state_dict().items():
        key = key.replace("conv_proj.", "patch_embed.proj.").replace("head.1.", "head.projection.")
        key = key.replace("attn.project.0.", "attn.proj.").replace(".mlp.0.", ".mlp.fc1.")
        key = key.replace(".mlp.3.", ".mlp.fc2.").replace(".project.", ".proj.")
        for p in "qkv":
            key = key.replace(f"pool_{p}.pool.", f"pool_{p}.").replace(
                f"pool_{p}.norm_act.0.", f"norm_{p}."
            )
        if key == "pos_encoding.class_token":
            key, value = "cls_token", value.reshape(1, 1, -1)
        state[key] = value
    path = tmp_path / "MViTv2_S_16x4_k400.pyth"
    _write_pyth(path, state)
    ours = create_model(
        "mvitv2_small_16x4", checkpoint_path=path, spatial_size=32, temporal_size=4
    ).eval()
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=ATOL, rtol=0)


def test_official_mvitv2_image_checkpoint(tmp_path):
    """facebookresearch/mvit image checkpoints: flat ``blocks.N``, ``proj`` shortcut, Conv2d
    pooling weights, ``head.projection``. timm's own ``checkpoint_filter_fn`` reads that layout,
    which checks the file written here really is the official one."""
    import timm
    from timm.models.mvitv2 import checkpoint_filter_fn

    torch.manual_seed(2)
    reference = timm.create_model("mvitv2_tiny", img_size=32).eval()
    depths = reference.depths
    starts = [sum(depths[:i]) for i in range(len(depths))]
    official = {}
    for key, value in reference.state_dict().items():
        m = re.match(r"stages\.(\d+)\.blocks\.(\d+)\.(.*)", key)
        if m:
            rest = m.group(3).replace("shortcut_proj_attn.", "proj.")
            key = f"blocks.{starts[int(m.group(1))] + int(m.group(2))}.{rest}"
        official[key.replace("head.fc.", "head.projection.")] = value
    assert (
        checkpoint_filter_fn({"model_state": official}, reference).keys()
        == reference.state_dict().keys()
    )
    path = tmp_path / "MViTv2_T_in1k.pyth"
    _write_pyth(path, official)
    ours = create_model("mvitv2_tiny", checkpoint_path=path, spatial_size=32).eval()
    x = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), reference(x), atol=ATOL, rtol=0)


def test_to_pyslowfast_round_trip():
    torch.manual_seed(3)
    model = M.mvit_tiny_video()
    state = model.state_dict()
    for separate in (False, True):
        official = to_pyslowfast(state, separate_qkv=separate)
        assert ("blocks.0.attn.q.weight" in official) is separate
        assert detect_format(official) == "pyslowfast"
        back = convert_state_dict({"model_state": official})
        assert back.keys() == state.keys()
        for key in state:
            torch.testing.assert_close(back[key], state[key], atol=0, rtol=0)


def test_unknown_layout_is_named(tmp_path):
    path = tmp_path / "resnet.pt"
    torch.save({"conv1.weight": torch.zeros(1), "fc.weight": torch.zeros(1)}, path)
    model = M.mvit_tiny_video()
    with pytest.raises(ValueError, match="known formats: pyslowfast, pytorchvideo"):
        load_checkpoint(model, path)


def test_mismatched_checkpoint_lists_the_keys(tmp_path):
    path = tmp_path / "other_size.pyth"
    _write_pyth(path, M.mvit_tiny_video(num_classes=3).state_dict())
    with pytest.raises(CheckpointMismatchError, match=r"head\.projection\.weight"):
        load_checkpoint(M.mvit_tiny_video(num_classes=40), path)
