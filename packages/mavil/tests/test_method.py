"""The objectives: masking ratios, reconstruction on masked patches only, InfoNCE values on
hand-built embeddings, and stage 2's frozen teacher."""

from __future__ import annotations

import math

import pytest
import torch

from paperzoo.mavil import method as Me
from paperzoo.mavil.model import build_pretraining_model


def _batch(b: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    return torch.randn(b, 1, 32, 128, generator=g), torch.randn(b, 3, 4, 16, 16, generator=g)


def test_masking_ratios_keep_a_fifth_of_the_tokens():
    model = build_pretraining_model("tiny")
    assert model.audio_mask_ratio == 0.8 and model.video_mask_ratio == 0.8
    method = Me.MAViLPretraining(model, inter_weight=0.1, intra_weight=0.1)
    seen = {}

    def spy(batch, num_patches, ratio, **kw):
        out = real(batch, num_patches, ratio, **kw)
        seen.setdefault(num_patches, []).append(out[0].shape[1])
        return out

    real = Me.random_masking
    Me.random_masking = spy
    try:
        method(torch.randn(2, 1, 96, 128), torch.randn(2, 3, 4, 32, 32))
    finally:
        Me.random_masking = real
    # 48 audio patches (6 x 8) keep int(48 * 0.2) = 9; 32 video tubelets keep 6 (both views).
    assert seen == {48: [9, 9], 32: [6, 6]}


def test_masked_mse_by_hand():
    pred = torch.zeros(1, 3, 2)
    target = torch.tensor([[[1.0, 1.0], [2.0, 0.0], [100.0, 100.0]]])
    mask = torch.tensor([[1.0, 1.0, 0.0]])  # the third patch is visible
    # Per-patch means: 1 and 2; the visible patch's 10,000 does not count.
    assert Me.masked_mse(pred, target, mask).item() == pytest.approx(1.5)


def test_reconstruction_loss_ignores_visible_patches(monkeypatch):
    torch.manual_seed(0)
    model = build_pretraining_model("test", video=False)
    method = Me.MAViLPretraining(model)
    audio, _ = _batch(2)
    keep = torch.tensor([[0, 5, 9], [1, 2, 15]])  # 3 of 16 patches kept
    monkeypatch.setattr(Me, "random_masking", lambda *a, **k: (keep, None))
    loss = method(audio, None)["recon_audio"]
    out = model(audio, None, keep, None)
    target = Me.normalized_patches(model.patch_targets(audio, None)["audio"])
    per_patch = ((out["audio_pred"] - target) ** 2).mean(-1)
    masked = torch.ones(2, 16, dtype=torch.bool)
    masked[0, [0, 5, 9]] = False
    masked[1, [1, 2, 15]] = False
    assert loss.item() == pytest.approx(per_patch[masked].mean().item(), rel=1e-5)
    # The gradient reaches the decoder only through masked positions' predictions.
    pred = out["audio_pred"].detach().requires_grad_(True)
    Me.masked_mse(pred, target, masked.float()).backward()
    assert torch.all(pred.grad[~masked] == 0) and torch.all(pred.grad[masked].abs().sum(-1) > 0)


def test_info_nce_on_hand_built_embeddings():
    a = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
    # Aligned pairs, orthogonal negatives, T = 1: each row's CE is log(1 + e^-1).
    assert Me.info_nce(a, a, 1.0).item() == pytest.approx(math.log(1 + math.exp(-1)), rel=1e-6)
    # Swapped pairs: the positive is orthogonal, the negative aligned: log(1 + e^1).
    b = a.flip(0)
    assert Me.info_nce(a, b, 1.0).item() == pytest.approx(math.log(1 + math.e), rel=1e-6)
    # Scale invariance (cosine) and temperature: T = 0.1 sharpens to log(1 + e^-10).
    sharp = Me.info_nce(3 * a, a, 0.1).item()
    assert sharp == pytest.approx(math.log(1 + math.exp(-10)), abs=1e-6)  # float32 softmax


def test_contrastive_terms_are_in_the_loss():
    torch.manual_seed(0)
    method = Me.MAViLPretraining(build_pretraining_model("test"), inter_weight=0.5,
                                 intra_weight=0.25)  # fmt: skip
    out = method(*_batch())
    expected = out["recon_audio"] + out["recon_video"] + 0.5 * out["inter"] + 0.25 * out["intra"]
    assert out["loss"].item() == pytest.approx(expected.item(), rel=1e-6)
    with pytest.raises(ValueError, match="audio-video model"):
        Me.MAViLPretraining(build_pretraining_model("test", video=False), inter_weight=0.1)


def test_stage2_targets_come_from_a_frozen_stage1_model():
    torch.manual_seed(0)
    teacher = build_pretraining_model("test")
    student = build_pretraining_model("test", stage=2)
    method = Me.MAViLPretraining(student, teacher=teacher, inter_weight=0.1)
    frozen = method.teacher
    assert frozen is not teacher and not frozen.training
    assert all(not p.requires_grad for p in frozen.parameters())
    assert not any(p is q for p in method.parameters() for q in frozen.parameters())
    before = {k: v.clone() for k, v in frozen.state_dict().items()}
    audio, video = _batch()
    # The targets: the teacher's fused features of the full inputs, layer-normalised.
    fa, fv = teacher.contextual_features(audio, video)
    targets = method.targets(audio, video)
    assert torch.allclose(targets["audio"], torch.nn.functional.layer_norm(fa, fa.shape[-1:]))
    assert torch.allclose(targets["video"], torch.nn.functional.layer_norm(fv, fv.shape[-1:]))
    assert targets["audio"].shape == (4, 16, 32) and not targets["audio"].requires_grad
    opt = torch.optim.SGD(method.parameters(), lr=0.1)
    method.train()
    method(audio, video)["loss"].backward()
    assert all(p.grad is None for p in frozen.parameters())
    opt.step()
    after = frozen.state_dict()
    assert all(torch.equal(before[k], after[k]) for k in before)
    assert not frozen.training  # method.train() does not wake the teacher
    with pytest.raises(ValueError, match="stage=2"):
        Me.MAViLPretraining(build_pretraining_model("test"), teacher=teacher)
