"""The views: temporal gradients, Farneback flow, and the on-disk flow cache."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import torch

from paperzoo.mvpl.views import (
    FlowCache,
    FlowSettings,
    UnreadableVideo,
    farneback_flow,
    precompute_flow,
    temporal_gradient,
)


def test_temporal_gradient_is_the_frame_difference():
    clip = torch.rand(2, 3, 5, 4, 6)
    tg = temporal_gradient(clip)
    assert tg.shape == (2, 3, 4, 4, 6)
    for t in range(4):
        assert torch.equal(tg[:, :, t], clip[:, :, t + 1] - clip[:, :, t])
    with pytest.raises(ValueError, match="T >= 2"):
        temporal_gradient(torch.rand(3, 1, 4, 4))


def _translating_pattern(dy: int, dx: int, frames: int = 4, size: int = 64) -> np.ndarray:
    """A smooth random texture moved by (dy, dx) px per frame: uint8 (T, H, W, 3)."""
    import cv2

    rng = np.random.default_rng(0)
    base = cv2.GaussianBlur(rng.uniform(0, 255, (size, size)).astype(np.float32), (0, 0), 2.0)
    base = cv2.normalize(base, None, 0, 255, cv2.NORM_MINMAX).astype(np.uint8)
    out = [np.roll(base, (t * dy, t * dx), axis=(0, 1)) for t in range(frames)]
    return np.repeat(np.stack(out)[..., None], 3, axis=-1)


@pytest.mark.parametrize(("dy", "dx"), [(0, 2), (-3, 0), (2, -2)])
def test_farneback_recovers_a_known_translation(dy, dx):
    frames = _translating_pattern(dy, dx)
    flow = farneback_flow(frames, FlowSettings())
    assert flow.shape == (3, 64, 64, 2) and flow.dtype == np.float32
    inner = flow[:, 12:-12, 12:-12]  # away from the wrap-around border
    mean_x, mean_y = float(inner[..., 0].mean()), float(inner[..., 1].mean())
    assert mean_x == pytest.approx(dx, abs=0.3) and mean_y == pytest.approx(dy, abs=0.3)


def test_frame_gap_measures_the_displacement_over_the_gap():
    frames = _translating_pattern(0, 1, frames=5)
    flow = farneback_flow(frames, FlowSettings(frame_gap=2))
    assert flow.shape[0] == 3
    assert float(flow[:, 12:-12, 12:-12, 0].mean()) == pytest.approx(2.0, abs=0.3)


def _counting(calls):
    def estimator(frames, settings):
        calls.append(settings)
        return farneback_flow(frames, settings)

    return estimator


def _write_video(path, frames):
    from paperzoo.data.synthetic import _encode_mp4

    _encode_mp4(path, frames, fps=8, crf=18, gop=8)


def test_cache_hits_and_invalidates_on_settings_and_file_change(tmp_path):
    video = tmp_path / "v.mp4"
    _write_video(video, _translating_pattern(0, 2, frames=6, size=32))
    calls: list = []
    cache = FlowCache(tmp_path / "cache", FlowSettings(), estimator=_counting(calls))
    first = cache.get(video)
    assert len(calls) == 1 and cache.stats.computed == 1 and cache.stats.hits == 0
    second = cache.get(video)
    assert len(calls) == 1 and cache.stats.hits == 1  # read back, not recomputed
    assert np.array_equal(first, second) and first.dtype == np.float16
    # Another process (a new cache object on the same folder) finds the entry too.
    other = FlowCache(tmp_path / "cache", FlowSettings(), estimator=_counting(calls))
    other.get(video)
    assert len(calls) == 1 and other.stats.hits == 1
    # Changed settings: a different entry, computed again.
    changed = FlowCache(tmp_path / "cache", FlowSettings(winsize=9), estimator=_counting(calls))
    assert changed.entry(video) != cache.entry(video)
    changed.get(video)
    assert len(calls) == 2
    # A changed file (new content, new mtime): computed again.
    entry_before = cache.entry(video)
    _write_video(video, _translating_pattern(2, 0, frames=6, size=32))
    st = video.stat()
    os.utime(video, ns=(st.st_atime_ns, st.st_mtime_ns + 10_000_000))
    assert cache.entry(video) != entry_before
    moved = cache.get(video)
    assert len(calls) == 3
    assert float(moved[:, 8:-8, 8:-8, 1].astype(np.float32).mean()) > 1.0  # now moves down


def test_unreadable_videos_are_skipped_counted_and_named(tmp_path):
    good = tmp_path / "good.mp4"
    _write_video(good, _translating_pattern(0, 1, frames=4, size=32))
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"not a video at all")
    missing = tmp_path / "missing.mp4"
    cache = FlowCache(tmp_path / "cache")
    with pytest.warns(RuntimeWarning, match=r"skipped 2 of 3 .*bad\.mp4.*missing\.mp4"):
        kept = precompute_flow(cache, [str(good), str(bad), str(missing)], max_bad_fraction=0.9)
    assert kept == [0]
    assert cache.stats.unreadable == 2 and cache.stats.bad[0][0].endswith("bad.mp4")
    with pytest.raises(RuntimeError, match="max_bad_fraction"):
        precompute_flow(cache, [str(good), str(bad)], max_bad_fraction=0.1)
    with pytest.raises(UnreadableVideo, match=r"bad\.mp4"), warnings.catch_warnings():
        cache.get(bad)


def test_only_farneback_is_offered():
    with pytest.raises(ValueError, match="opencv-contrib"):
        FlowSettings(algorithm="tvl1")
