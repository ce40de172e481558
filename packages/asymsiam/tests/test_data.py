"""The asymsiam views: ScaleMix, the crops of each design, RandAugment on the source only."""

from __future__ import annotations

import dataclasses
import random

import pytest
import torch
from torchvision import tv_tensors

from paperzoo.asymsiam.data import AsymCrops, TimmRandAugment, asym_views, scalemix
from paperzoo.asymsiam.recipes import DESIGNS, tiny_config
from paperzoo.core.config import apply_overrides


def test_scalemix_pastes_one_box_of_the_second_view():
    a, b = torch.zeros(3, 32, 32), torch.ones(3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    fractions = []
    for _ in range(400):
        mixed = scalemix(a, b, generator=gen)
        mask = mixed[0] == 1
        if mask.any():  # the pasted region is one axis-aligned box, the same on every channel
            rows, cols = mask.any(1).nonzero(), mask.any(0).nonzero()
            box = mask[rows.min() : rows.max() + 1, cols.min() : cols.max() + 1]
            assert box.all()
        assert torch.equal(mixed[0], mixed[2])
        fractions.append(mask.float().mean().item())
    assert a.eq(0).all()  # the inputs are not modified
    # E[box area] <= E[1 - lam] = 1/2 (boxes are clipped at the border): clearly between.
    mean = sum(fractions) / len(fractions)
    assert 0.15 < mean < 0.5, mean


def _cfg(design: str):
    cfg = tiny_config()
    return apply_overrides(cfg, list(DESIGNS[design]))


@pytest.mark.parametrize(
    ("design", "n_small", "n_target"),
    [("baseline", 0, 1), ("multicrop", 6, 1), ("scalemix", 0, 1), ("asym_aug", 0, 1),
     ("asym_bn", 0, 1), ("mean_enc", 0, 2)],
)  # fmt: skip
def test_each_design_gives_its_views(design, n_small, n_target):
    cfg = _cfg(design)
    views = asym_views(cfg, (0.1,) * 3, (0.3,) * 3)
    image = tv_tensors.Image(torch.randint(0, 256, (1, 28, 28), dtype=torch.uint8))
    out = views(image)
    size, small = cfg.data.image_size, cfg.asym.small_size
    assert [tuple(v.shape) for v in out["source"]] == [(3, size, size)]
    assert [tuple(v.shape) for v in out["source_small"]] == [(3, small, small)] * n_small
    assert [tuple(v.shape) for v in out["target"]] == [(3, size, size)] * n_target
    assert all(v.dtype == torch.float32 for vs in out.values() for v in vs)


def test_multicrop_changes_the_main_crop_scale_and_asym_aug_weakens_only_the_target():
    base, multi = (
        asym_views(_cfg("baseline"), (0,) * 3, (1,) * 3),
        asym_views(_cfg("multicrop"), (0,) * 3, (1,) * 3),
    )
    assert base.source.transforms[1].scale == (0.5, 1.0)
    assert multi.source.transforms[1].scale == multi.target.transforms[1].scale == (0.35, 1.0)
    asym = asym_views(_cfg("asym_aug"), (0,) * 3, (1,) * 3)
    names = [type(t).__name__ for t in asym.source.transforms]
    assert (
        "TimmRandAugment" in names
        and names.index("TimmRandAugment") == names.index("RandomHorizontalFlip") + 1
    )
    assert [type(t).__name__ for t in asym.target.transforms] == [
        "RGB",
        "RandomResizedCrop",
        "RandomHorizontalFlip",
        "ToDtype",
        "Normalize",
        "ToPureTensor",
    ]
    assert asym.target.transforms[1].scale == (0.2, 1.0)
    assert base.target is base.source  # the baseline is symmetric


def test_timm_randaugment_changes_images_and_keeps_the_type():
    # timm's RandAugment draws from Python's `random` (each op applies with p=0.5): seed it, or
    # the count below varies from run to run.
    random.seed(0)
    torch.manual_seed(0)
    op = TimmRandAugment()
    image = tv_tensors.Image(torch.randint(0, 256, (3, 28, 28), dtype=torch.uint8))
    outs = [op(image) for _ in range(10)]
    assert all(
        isinstance(o, tv_tensors.Image) and o.shape == image.shape and o.dtype == torch.uint8
        for o in outs
    )
    assert sum(not torch.equal(o, image) for o in outs) >= 5


def test_crops_validate_their_arguments():
    with pytest.raises(ValueError, match="small"):
        AsymCrops(lambda x: x, lambda x: x, num_small=2)
    with pytest.raises(ValueError, match="num_target"):
        AsymCrops(lambda x: x, lambda x: x, num_target=0)
    assert dataclasses.is_dataclass(tiny_config().asym)
