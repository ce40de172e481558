"""PySlowFast checkpoints (``{"model_state": ...}`` with PySlowFast key names).

The expected key sets below are written out from the official module tree
(facebookresearch/SlowFast ``slowfast/models/video_model_builder.py``, ``stem_helper.py``,
``resnet_helper.py``, ``head_helper.py``), independently of the converter's rules.
"""

import re

import pytest
import torch

from paperzoo.core import create_model
from paperzoo.core.checkpoint import CheckpointMismatchError
from paperzoo.slowfast import convert
from paperzoo.slowfast import model as models

BN = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _bn(prefix, channels):
    return {f"{prefix}.{k}": () if k == "num_batches_tracked" else (channels,) for k in BN}


def pyslowfast_keys(
    *, pathways=2, depths=(3, 4, 6, 3), width=64, beta_inv=8, ratio=2, fusion_kernel=7,
    temporal=((1, 1, 3, 3), (3, 3, 3, 3)), stem_temporal=(1, 5), num_classes=400,
):  # fmt: skip
    """Key -> shape of PySlowFast's ``SlowFast`` (``ResNet`` when ``pathways == 1``):

    - ``s1`` = VideoModelStem: ``pathway{p}_stem`` = ResNetBasicStem(conv, bn);
    - ``s{k}_fuse`` (k = 1..4, SlowFast only) = FuseFastToSlow(conv_f2s [kernel, 1, 1], bn),
      C_f -> 2 C_f;
    - ``s{k}`` (k = 2..5) = ResStage: ``pathway{p}_res{i}`` = ResBlock(branch1 + branch1_bn when
      dim_in != dim_out or stride != 1, branch2 = BottleneckTransform(a, a_bn, b, b_bn, c, c_bn));
      Slow dim_in = C + C // (beta_inv // ratio) after a lateral;
    - ``head`` = ResNetBasicHead / ResNetRoIHead: ``projection`` Linear(sum(dim_in), classes).
    """
    keys = {}
    stem_dims = [width, width // beta_inv][:pathways]
    for p, dim in enumerate(stem_dims):
        keys[f"s1.pathway{p}_stem.conv.weight"] = (dim, 3, stem_temporal[p], 7, 7)
        keys.update(_bn(f"s1.pathway{p}_stem.bn", dim))
    dim_in, dim_out, inner = width, width * 4, width
    for s, depth in enumerate(depths):
        stage = f"s{s + 2}"
        if pathways == 2:
            fuse = f"s{s + 1}_fuse"
            c_f = dim_in // beta_inv
            keys[f"{fuse}.conv_f2s.weight"] = (c_f * ratio, c_f, fusion_kernel, 1, 1)
            keys.update(_bn(f"{fuse}.bn", c_f * ratio))
        dims = [(dim_in + (dim_in // (beta_inv // ratio) if pathways == 2 else 0), inner, dim_out)]
        if pathways == 2:
            dims.append((dim_in // beta_inv, inner // beta_inv, dim_out // beta_inv))
        for p, (d_in, d_inner, d_out) in enumerate(dims):
            for i in range(depth):
                block = f"{stage}.pathway{p}_res{i}"
                first_in = d_in if i == 0 else d_out
                if i == 0:  # dim_in != dim_out in every stage's first block
                    keys[f"{block}.branch1.weight"] = (d_out, first_in, 1, 1, 1)
                    keys.update(_bn(f"{block}.branch1_bn", d_out))
                keys[f"{block}.branch2.a.weight"] = (d_inner, first_in, temporal[p][s], 1, 1)
                keys.update(_bn(f"{block}.branch2.a_bn", d_inner))
                keys[f"{block}.branch2.b.weight"] = (d_inner, d_inner, 1, 3, 3)
                keys.update(_bn(f"{block}.branch2.b_bn", d_inner))
                keys[f"{block}.branch2.c.weight"] = (d_out, d_inner, 1, 1, 1)
                keys.update(_bn(f"{block}.branch2.c_bn", d_out))
        dim_in, dim_out, inner = dim_out, dim_out * 2, inner * 2
    head_in = dim_in + (dim_in // beta_inv if pathways == 2 else 0)
    keys["head.projection.weight"] = (num_classes, head_in)
    keys["head.projection.bias"] = (num_classes,)
    return keys


def _shapes(state):
    return {k: tuple(v.shape) for k, v in state.items()}


def test_every_pyslowfast_key_of_slowfast_r50_is_covered():
    with torch.device("meta"):
        ours = models.slowfast_r50().state_dict()
    expected = pyslowfast_keys()
    assert len(expected) == len(ours) == 662
    assert _shapes(convert.to_pyslowfast(ours)) == expected
    assert _shapes(convert.from_pyslowfast(expected_as_tensors(expected))) == _shapes(ours)


def expected_as_tensors(keys):
    return {k: torch.empty(shape, device="meta") for k, shape in keys.items()}


@pytest.mark.parametrize(
    ("name", "layout"),
    [
        ("slow_r50", dict(pathways=1, temporal=((1, 1, 3, 3),), stem_temporal=(1,))),
        ("slowfast_4x16_r50", dict(fusion_kernel=5)),
        ("slowfast_r101", dict(depths=(3, 4, 23, 3), fusion_kernel=5)),
        ("slowfast_r50_detection", dict(num_classes=80)),
    ],
)
def test_other_pyslowfast_layouts_are_covered(name, layout):
    with torch.device("meta"):
        ours = getattr(models, name)().state_dict()
    assert _shapes(convert.to_pyslowfast(ours)) == pyslowfast_keys(**layout)


def test_r101_50_50_temporal_kernels_in_pyslowfast_layout():
    # NUM_BLOCK_TEMP_KERNEL [[3,3],[4,4],[6,6],[3,3]]: res4 blocks 6..22 have 1x1x1 conv_a.
    with torch.device("meta"):
        ours = convert.to_pyslowfast(models.slowfast_16x8_r101_50_50().state_dict())
    for p in (0, 1):
        assert [ours[f"s4.pathway{p}_res{i}.branch2.a.weight"].shape[2] for i in range(23)] == [
            3
        ] * 6 + [1] * 17


@pytest.mark.parametrize("name", ["slowfast_tiny", "slow_tiny"])
def test_pyslowfast_checkpoint_round_trip_gives_identical_outputs(tmp_path, randomize_norms, name):
    torch.manual_seed(0)
    source = randomize_norms(getattr(models, name)(num_classes=11), seed=5).eval()
    state = source.state_dict()
    official = convert.to_pyslowfast(state)
    assert all(re.match(r"s[1-5](\.pathway\d_|_fuse\.)|head\.projection\.", k) for k in official)
    back = convert.from_pyslowfast(official)
    assert back.keys() == state.keys() and all(torch.equal(back[k], state[k]) for k in state)

    path = tmp_path / "checkpoint_epoch_00010.pyth"
    torch.save(
        {
            "epoch": 10,
            "model_state": official,
            "optimizer_state": {},
            "cfg": "MODEL:\n  ARCH: slowfast\n",
        },
        path,
    )
    loaded = create_model(name, checkpoint_path=path, num_classes=11).eval()
    clip = torch.randn(2, 3, 16, 64, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), source(clip), rtol=0, atol=0)


def test_old_checkpoints_without_batch_counters_load(tmp_path, randomize_norms):
    source = randomize_norms(models.slowfast_tiny(num_classes=3)).eval()
    official = {
        k: v
        for k, v in convert.to_pyslowfast(source.state_dict()).items()
        if "num_batches" not in k
    }
    path = tmp_path / "c2_converted.pyth"
    torch.save({"model_state": official}, path)
    loaded = convert.load_checkpoint(models.slowfast_tiny(num_classes=3), path).eval()
    clip = torch.randn(1, 3, 8, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(loaded(clip), source(clip), rtol=0, atol=0)


def test_unknown_keys_are_named(tmp_path):
    state = convert.to_pyslowfast(models.slowfast_tiny().state_dict())
    state["s4.pathway0_nonlocal2.conv_theta.weight"] = torch.zeros(1)
    with pytest.raises(convert.UnknownKeyError, match="pathway0_nonlocal2"):
        convert.from_pyslowfast(state)


def test_class_mismatch_is_explained_and_ignore_head_fine_tunes(tmp_path):
    source = models.slowfast_tiny(num_classes=400)
    path = tmp_path / "k400.pyth"
    torch.save({"model_state": convert.to_pyslowfast(source.state_dict())}, path)
    with pytest.raises(CheckpointMismatchError, match=r"head\.proj\.weight"):
        convert.load_checkpoint(models.slowfast_tiny(num_classes=10), path)
    target = convert.load_checkpoint(models.slowfast_tiny(num_classes=10), path, ignore_head=True)
    src = source.state_dict()
    assert all(
        torch.equal(v, src[k]) for k, v in target.state_dict().items() if not k.startswith("head.")
    )
    assert target.head.proj.weight.shape == (10, 320)


def test_layout_detection():
    with torch.device("meta"):
        ours = models.slowfast_tiny().state_dict()
    assert convert.detect_layout(ours) == "paperzoo"
    assert convert.detect_layout(convert.to_pyslowfast(ours)) == "pyslowfast"
    assert convert.detect_layout(convert.to_pytorchvideo(ours)) == "pytorchvideo"
