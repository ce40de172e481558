import random

import pytest
import torch
from torchvision import tv_tensors
from torchvision.transforms import v2

from paperzoo.data.samplers import (
    ConstantClipsPerVideoSampler,
    FullVideoSampler,
    RandomClipSampler,
    UniformClipSampler,
    multi_view_index,
    uniform_crop_offsets,
)
from paperzoo.data.transforms import (
    MixupCutmix,
    Normalize,
    RandomShortSideScale,
    ShortSideScale,
    ToLayout,
    UniformTemporalSubsample,
    VideoAugMix,
    VideoRandAugment,
    VideoRandomErasing,
    short_side_scale,
    uniform_crop,
    uniform_temporal_subsample,
    video_eval_transform,
    video_train_transform,
)

# -- samplers --------------------------------------------------------------------------------


def test_random_clip_sampler_stays_inside():
    sampler, rng = RandomClipSampler(2.0), random.Random(0)
    starts = [sampler(10.0, rng)[0].start_sec for _ in range(500)]
    assert min(starts) >= 0.0 and max(starts) <= 8.0 and max(starts) - min(starts) > 7.0
    (clip,) = sampler(1.0, rng)  # shorter than the clip
    assert (clip.start_sec, clip.end_sec) == (0.0, 2.0)
    with pytest.raises(ValueError):
        RandomClipSampler(0.0)


def test_uniform_clip_sampler():
    clips = UniformClipSampler(2.0)(7.0, random.Random(0))
    assert [(c.start_sec, c.end_sec) for c in clips] == [(0, 2), (2, 4), (4, 6)]
    clips = UniformClipSampler(2.0, stride=1.0)(4.0, random.Random(0))
    assert [c.start_sec for c in clips] == [0.0, 1.0, 2.0] and clips[-1].count == 3
    assert len(UniformClipSampler(2.0)(0.5, random.Random(0))) == 1
    assert UniformClipSampler(2.0).fixed_count is None


def test_constant_clips_per_video_follows_slowfast():
    sampler = ConstantClipsPerVideoSampler(2.0, 10)
    clips = sampler(12.0, random.Random(0))
    assert len(clips) == 10 and sampler.fixed_count == 10
    assert [c.start_sec for c in clips] == pytest.approx([i * 10.0 / 10 for i in range(10)])
    assert all(c.end_sec - c.start_sec == 2.0 for c in clips)
    assert FullVideoSampler()(3.0, random.Random(0))[0].end_sec > 3.0


def test_multi_view_index_and_uniform_crops():
    views = [multi_view_index(i, 10, 3) for i in range(60)]
    assert (
        views[0] == (0, 0, 0)
        and views[2] == (0, 0, 2)
        and views[3] == (0, 1, 0)
        and views[30] == (1, 0, 0)
    )
    assert len(set(views)) == 60
    assert uniform_crop_offsets(256, 340, 256, 3) == [(0, 0), (0, 42), (0, 84)]
    assert uniform_crop_offsets(340, 256, 256, 3) == [(0, 0), (42, 0), (84, 0)]
    x = torch.arange(3 * 2 * 4 * 6).reshape(3, 2, 4, 6)
    assert torch.equal(uniform_crop(x, 4, 2), x[..., :, 2:6])
    with pytest.raises(ValueError, match="larger than the frame"):
        uniform_crop_offsets(100, 100, 128, 3)


# -- transforms ------------------------------------------------------------------------------


def _video(t=8, c=3, h=40, w=60, same_frames=False, seed=0):
    g = torch.Generator().manual_seed(seed)
    if same_frames:
        return (
            torch.randint(0, 256, (1, c, h, w), generator=g, dtype=torch.uint8)
            .expand(t, -1, -1, -1)
            .clone()
        )
    return torch.randint(0, 256, (t, c, h, w), generator=g, dtype=torch.uint8)


def test_uniform_temporal_subsample_both_layouts():
    tchw = torch.arange(10).view(10, 1, 1, 1).expand(10, 3, 2, 2)
    out = UniformTemporalSubsample(4, layout="TCHW")(tchw)
    assert out[:, 0, 0, 0].tolist() == [0, 3, 6, 9]
    cthw = tchw.permute(1, 0, 2, 3)
    assert torch.equal(UniformTemporalSubsample(4)(cthw), out.permute(1, 0, 2, 3))
    assert uniform_temporal_subsample(cthw, 12).shape[1] == 12  # repeats frames


def test_short_side_scale_keeps_aspect():
    x = torch.rand(3, 4, 90, 160)
    assert short_side_scale(x, 45).shape == (3, 4, 45, 80)
    assert ShortSideScale(64)(torch.rand(3, 200, 100)).shape == (3, 128, 64)  # also on images
    sizes = {min(RandomShortSideScale(32, 40)(x).shape[-2:]) for _ in range(30)}
    assert sizes <= set(range(32, 41)) and len(sizes) > 3


def test_normalize_uses_the_channel_dim():
    mean, std = (0.1, 0.5, 0.9), (1.0, 2.0, 4.0)
    cthw = torch.ones(3, 2, 4, 4)
    out = Normalize(mean, std)(cthw)
    assert out[:, 0, 0, 0].tolist() == pytest.approx([0.9, 0.25, 0.025])
    tchw = cthw.permute(1, 0, 2, 3)
    assert torch.allclose(Normalize(mean, std, "TCHW")(tchw), out.permute(1, 0, 2, 3))
    with pytest.raises(TypeError, match="float"):
        Normalize(mean, std)(torch.ones(3, 2, 4, 4, dtype=torch.uint8))


@pytest.mark.parametrize("layout", ["TCHW", "CTHW"])
@pytest.mark.parametrize(
    "make", [lambda lay: VideoRandAugment(2, 9, layout=lay), lambda lay: VideoAugMix(layout=lay)]
)
def test_randaugment_and_augmix_apply_one_draw_to_all_frames(layout, make):
    torch.manual_seed(0)
    aug = make(layout)
    changed = 0
    for seed in range(6):
        video = _video(same_frames=True, seed=seed)
        x = video if layout == "TCHW" else video.permute(1, 0, 2, 3)
        out = aug(x)
        assert out.shape == x.shape and out.dtype == torch.uint8
        frames = out if layout == "TCHW" else out.permute(1, 0, 2, 3)
        # identical input frames stay identical: the op parameters are shared by all frames
        assert all(torch.equal(frames[0], f) for f in frames[1:])
        changed += int(not torch.equal(frames[0], video[0]))
    assert changed >= 4  # and the augmentation really did something


def test_random_erasing_is_one_cube():
    torch.manual_seed(0)
    x = torch.rand(3, 8, 32, 32) + 1.0  # values in [1, 2): erased pixels (0) stand out
    out = VideoRandomErasing(p=1.0, value=0.0)(x)
    erased = out == 0
    assert erased.any() and erased.all(dim=0).any()  # all channels
    assert all(torch.equal(erased[:, 0], erased[:, t]) for t in range(8))  # same box every frame


def test_mixup_cutmix_with_label_smoothing():
    random.seed(0)
    x = torch.stack([torch.full((3, 4, 16, 16), float(i)) for i in range(4)])  # (B, C, T, H, W)
    y = torch.tensor([0, 1, 2, 3])
    mix = MixupCutmix(num_classes=5, mixup_alpha=0.8, cutmix_alpha=0.0, label_smoothing=0.1)
    xm, t = mix(x, y)
    lam = float(xm[0, 0, 0, 0, 0] - 3.0) / (0.0 - 3.0)  # x0 * lam + x3 * (1 - lam)
    assert torch.allclose(t.sum(1), torch.ones(4))
    smooth = mix.smooth_one_hot(y)
    assert smooth[0].tolist() == pytest.approx([0.92, 0.02, 0.02, 0.02, 0.02])
    assert torch.allclose(t[0], smooth[0] * lam + smooth[3] * (1 - lam), atol=1e-5)

    cut = MixupCutmix(num_classes=5, mixup_alpha=0.0, cutmix_alpha=1.0, label_smoothing=0.0)
    xc, tc = cut(x, y)
    pasted = (xc[0, 0, 0] == 3.0).float().mean().item()  # share of sample 0 taken from sample 3
    assert torch.allclose(tc[0], torch.tensor([1 - pasted, 0, 0, pasted, 0]), atol=1e-6)
    assert all(torch.equal(xc[0, 0, 0], xc[0, c, t]) for c in range(3) for t in range(4))
    with pytest.raises(ValueError, match="even batch"):
        cut(x[:3], y[:3])


def test_pipelines_compose_with_torchvision():
    torch.manual_seed(0)
    video = tv_tensors.Video(_video(t=16, h=72, w=96))
    train = video_train_transform(
        8, crop_size=48, min_scale=56, max_scale=64, rand_augment=True, random_erasing=0.5
    )
    out = train(video)
    assert out.shape == (3, 8, 48, 48) and out.dtype == torch.float32 and type(out) is torch.Tensor
    test = video_eval_transform(8, crop_size=48, short_side=56)
    assert test(video).shape == (3, 8, 48, 48)
    # our transforms inside an image pipeline, and torchvision's inside a video pipeline
    image_pipe = v2.Compose(
        [ShortSideScale(36), v2.CenterCrop(32), v2.ToDtype(torch.float32, scale=True)]
    )
    assert image_pipe(tv_tensors.Image(_video(t=1)[0])).shape == (3, 32, 32)
    video_pipe = v2.Compose(
        [v2.ColorJitter(0.4, 0.4), UniformTemporalSubsample(4, "TCHW"), ToLayout("TCHW", "CTHW")]
    )
    assert video_pipe(video).shape == (3, 4, 72, 96)
