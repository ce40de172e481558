"""The asymsiam step (the official loss over MoCo's hooks) and the intra-image variance."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from paperzoo.asymsiam.method import AsymSiamMethod, intra_image_variance
from paperzoo.asymsiam.model import asymsiam_resnet10_narrow
from paperzoo.mocov2.method import MoCoMethod


def _model(**kw):
    torch.manual_seed(0)
    return asymsiam_resnet10_narrow(widths=(4, 8, 8, 8), dim=8, queue_size=64, **kw)


def _batch(n_small: int = 0, n_target: int = 1, b: int = 8) -> dict:
    return {
        "source": [torch.randn(b, 3, 16, 16)],
        "source_small": [torch.randn(b, 3, 8, 8) for _ in range(n_small)],
        "target": [torch.randn(b, 3, 16, 16) for _ in range(n_target)],
    }


def test_loss_is_large_view_ce_plus_mean_small_crop_ce():
    views = _batch(n_small=3)
    method = AsymSiamMethod(_model(), bn_splits=2)
    ref = MoCoMethod(_model(), bn_splits=2)  # the same weights, queue and step order
    torch.manual_seed(1)
    out = method.training_step((views, None), 0)
    torch.manual_seed(1)
    logits = ref.contrast(views["source"] + views["source_small"], views["target"])
    zeros = torch.zeros(8, dtype=torch.long)
    expected = (
        F.cross_entropy(logits[0], zeros) + sum(F.cross_entropy(lg, zeros) for lg in logits[1:]) / 3
    )
    torch.testing.assert_close(out["loss"], expected)
    assert "small_crop_loss" in out
    out["loss"].backward()
    assert method.model.encoder_q.fc[0].weight.grad is not None
    assert all(p.grad is None for p in method.model.encoder_k.parameters())


def test_without_small_crops_it_is_moco_infonce():
    views = _batch()
    method, ref = AsymSiamMethod(_model(), bn_splits=2), MoCoMethod(_model(), bn_splits=2)
    torch.manual_seed(3)
    loss = method.training_step((views, None), 0)["loss"]
    torch.manual_seed(3)
    expected = ref.training_step(([views["source"][0], views["target"][0]], None), 0)["loss"]
    torch.testing.assert_close(loss, expected)


def test_rejects_plain_moco_batches():
    method = AsymSiamMethod(_model())
    try:
        method.training_step(([torch.randn(2, 3, 16, 16)] * 2, None), 0)
    except TypeError as exc:
        assert "source" in str(exc)
    else:
        raise AssertionError("a list batch must be refused with a clear error")


class _Views(torch.utils.data.Dataset):
    """Held-out 'images' whose views are the image plus noise of a chosen size per side."""

    def __init__(self, n: int, source_noise: float, target_noise: float, n_target: int = 1):
        self.base = torch.randn(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))
        self.source_noise, self.target_noise, self.n_target = source_noise, target_noise, n_target

    def __len__(self) -> int:
        return len(self.base)

    def __getitem__(self, i):
        x = self.base[i]
        return {
            "source": [x + self.source_noise * torch.randn_like(x)],
            "source_small": [],
            "target": [x + self.target_noise * torch.randn_like(x) for _ in range(self.n_target)],
        }, 0


def test_variance_is_zero_without_augmentation_and_grows_with_it():
    # One BN group: the key shuffle changes nothing, so identical views give identical codes.
    method = AsymSiamMethod(_model(), bn_splits=1)
    none = intra_image_variance(method, _Views(32, 0.0, 0.0), batch_size=16, draws=3)
    assert none["source_variance"] < 1e-10 and none["target_variance"] < 1e-10
    # With 2 BN groups, shuffle-BN alone moves the keys between draws (other group statistics),
    # as it does in training: the measurement sees it.
    split = AsymSiamMethod(_model(), bn_splits=2)
    shuffled = intra_image_variance(split, _Views(32, 0.0, 0.0), batch_size=16, draws=3)
    assert shuffled["source_variance"] < 1e-10 < shuffled["target_variance"]
    noisy_source = intra_image_variance(method, _Views(32, 1.0, 0.1), batch_size=16, draws=3)
    assert noisy_source["source_variance"] > 3 * noisy_source["target_variance"] > 0
    assert noisy_source["variance_ratio"] > 3


def test_mean_of_two_target_views_lowers_the_target_variance():
    method = AsymSiamMethod(_model(), bn_splits=2)
    one = intra_image_variance(method, _Views(32, 1.0, 1.0, n_target=1), batch_size=16, draws=4)
    two = intra_image_variance(method, _Views(32, 1.0, 1.0, n_target=2), batch_size=16, draws=4)
    assert two["target_variance"] < 0.8 * one["target_variance"]


def test_measuring_does_not_touch_the_trained_method():
    method = AsymSiamMethod(_model(), bn_splits=2)
    before = {k: v.clone() for k, v in method.state_dict().items()}
    rng = torch.random.get_rng_state()
    intra_image_variance(method, _Views(32, 1.0, 1.0), batch_size=16, draws=2)
    assert all(torch.equal(before[k], v) for k, v in method.state_dict().items())
    assert torch.equal(torch.random.get_rng_state(), rng)
