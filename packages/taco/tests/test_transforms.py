"""The temporal transformations (exact frames), their labels, and the two-clip views."""

from __future__ import annotations

import itertools

import pytest
import torch

from paperzoo.taco.transforms import (
    TaCoClips,
    TaCoViews,
    TemporalTransforms,
    apply_temporal,
    sample_temporal,
    task_classes,
)


def _indexed_video(frames: int = 16, size: int = 8) -> torch.Tensor:
    """(T, 1, H, W) uint8 where every pixel of frame t is t, plus a marker pixel at (0, 1)."""
    video = torch.arange(frames, dtype=torch.uint8).view(frames, 1, 1, 1).repeat(1, 1, size, size)
    video[:, :, 0, 1] = 200
    return video


def _frames(clip: torch.Tensor) -> list[int]:
    return [int(f[0, -1, -1]) for f in clip]  # a corner the marker never reaches


def test_speed_samples_every_s_th_frame_from_one_start():
    spec = TemporalTransforms(names=("speed",), num_frames=4, base_stride=1, speeds=(1, 2, 4))
    video = _indexed_video()
    for label, stride in enumerate((1, 2, 4)):
        frames = _frames(apply_temporal(video, {"speed": label}, spec))
        assert [b - a for a, b in itertools.pairwise(frames)] == [stride] * 3
        assert frames[0] >= 0 and frames[-1] <= 15


def test_reverse_and_shuffle_reorder_the_same_frames():
    spec = TemporalTransforms(names=("shuffle", "reverse"), num_frames=6, base_stride=2)
    video = _indexed_video()
    g = torch.Generator().manual_seed(0)
    forward = _frames(apply_temporal(video, {}, spec, torch.Generator().manual_seed(3)))
    backward = _frames(
        apply_temporal(video, {"reverse": 1}, spec, torch.Generator().manual_seed(3))
    )
    assert backward == forward[::-1]
    for _ in range(50):
        frames = _frames(apply_temporal(video, {"shuffle": 1}, spec, g))
        assert frames != sorted(frames)  # never the identity
        assert sorted(frames) == list(range(frames and min(frames), min(frames) + 12, 2))


def test_rotation_turns_every_frame_by_k_quarter_turns():
    spec = TemporalTransforms(names=("rotation",), num_frames=3)
    video = _indexed_video()
    g = torch.Generator().manual_seed(1)
    plain = apply_temporal(video, {"rotation": 0}, spec, torch.Generator().manual_seed(1))
    for k in range(4):
        rotated = apply_temporal(video, {"rotation": k}, spec, torch.Generator().manual_seed(1))
        torch.testing.assert_close(rotated, torch.rot90(plain, k, dims=(-2, -1)))
    marker = apply_temporal(video, {"rotation": 1}, spec, g)[0, 0]
    assert int(marker[-2, 0]) == 200  # (0, 1) turned a quarter counter-clockwise


def test_labels_cover_every_class_and_unknown_names_fail():
    spec = TemporalTransforms(speeds=(1, 2, 4))
    assert spec.tasks == {"rotation": 4, "shuffle": 2, "reverse": 2, "speed": 3}
    g = torch.Generator().manual_seed(0)
    seen = {name: set() for name in spec.tasks}
    for _ in range(200):
        for name, label in sample_temporal(spec, g).items():
            seen[name].add(label)
    assert seen == {name: set(range(n)) for name, n in spec.tasks.items()}
    with pytest.raises(ValueError, match="unknown temporal transformation"):
        task_classes(("rotate",))
    assert TemporalTransforms(names=(), num_frames=4).tasks == {}


def test_views_are_two_independent_normalised_clips_with_the_query_labels():
    torch.manual_seed(0)
    spec = TemporalTransforms(num_frames=4, speeds=(1, 2))
    views = TaCoViews(spec, size=16, crop_scale=(0.5, 1.0), jitter=0.0, mean=(0.5,) * 3,
                      std=(0.5,) * 3)  # fmt: skip
    video = torch.randint(0, 256, (16, 3, 24, 24), dtype=torch.uint8)
    (q, k), labels = views(video)
    assert q.shape == k.shape == (3, 4, 16, 16) and q.dtype == torch.float32
    assert set(labels) == set(spec.tasks) and q.min() >= -1.0 and q.max() <= 1.0
    assert not torch.equal(q, k)
    # One spatial draw per clip: a static video stays static through crop and jitter.
    static = video[:1].repeat(16, 1, 1, 1)
    plain = TaCoViews(TemporalTransforms(names=(), num_frames=4), size=16, jitter=0.4)
    (q, _), labels = plain(static)
    assert labels == {} and all(torch.equal(q[:, t], q[:, 0]) for t in range(4))


def test_clips_dataset_collates_views_and_labels():
    videos = torch.randint(0, 256, (5, 3, 16, 20, 20), dtype=torch.uint8)
    data = TaCoClips(videos, TaCoViews(TemporalTransforms(num_frames=4), size=16))
    (q, _), labels = next(iter(torch.utils.data.DataLoader(data, batch_size=5)))
    assert q.shape == (5, 3, 4, 16, 16) and labels["speed"].shape == (5,)
    with pytest.raises(ValueError, match="uint8"):
        TaCoClips(videos.float(), data.views)
