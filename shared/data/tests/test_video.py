import random

import av
import numpy as np
import pytest
import torch
from conftest import counting_frames, write_h264

from paperzoo.data.video import (
    DecodeError,
    VideoReader,
    available_backends,
    probe_video,
    read_av_clip,
    read_clip,
)


def _reference_frames(path):
    """Every frame of the file, decoded front to back with plain PyAV (no seeking)."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        start = stream.start_time or 0
        out = [
            (float((f.pts - start) * stream.time_base), f.to_ndarray(format="rgb24"))
            for f in container.decode(stream)
        ]
    return [t for t, _ in out], np.stack([a for _, a in out])


@pytest.fixture(scope="module")
def gop12_mp4(tmp_path_factory):
    """4 s at 25 fps, a keyframe every 12 frames: seeking matters."""
    path = tmp_path_factory.mktemp("v") / "gop12.mp4"
    return write_h264(path, counting_frames(100), fps=25, gop=12)


@pytest.fixture(scope="module")
def gop12_reference(gop12_mp4):
    return _reference_frames(gop12_mp4)


def test_probe(bikes_mp4, bunny_mp4):
    info = probe_video(bikes_mp4)
    assert (info.width, info.height, info.num_frames, info.codec) == (640, 272, 250, "h264")
    assert info.fps == 25.0 and abs(info.duration - 10.0) < 1e-6 and not info.has_audio
    assert probe_video(bunny_mp4).has_audio


def test_clip_holds_exactly_the_frames_in_range(gop12_mp4, gop12_reference):
    times, frames = gop12_reference
    rng = random.Random(0)
    ranges = [(0.0, 0.5), (1.0, 1.52), (0.96, 1.0), (3.5, 10.0)]
    ranges += [(s, s + rng.uniform(0.05, 1.5)) for s in (rng.uniform(0, 3.9) for _ in range(6))]
    for start, end in ranges:
        clip, ts = read_clip(gop12_mp4, start, end)
        want = [i for i, t in enumerate(times) if start <= t < end]
        assert clip.dtype == torch.uint8 and clip.shape[1:] == (48, 64, 3)
        assert ts.tolist() == pytest.approx([times[i] for i in want]), (start, end)
        assert np.array_equal(clip.numpy(), frames[want]), (start, end)


def test_boundaries_are_half_open(gop12_mp4):
    # frames every 0.04 s: a frame exactly at start is in, a frame exactly at end is out
    _, ts = read_clip(gop12_mp4, 0.4, 0.6)
    assert ts[0].item() == pytest.approx(0.4) and ts[-1].item() == pytest.approx(0.56)
    assert len(ts) == 5


def test_num_frames_uses_linspace_indices(gop12_mp4, gop12_reference):
    times, frames = gop12_reference
    full, full_ts = read_clip(gop12_mp4, 1.0, 3.0)
    in_range = [i for i, t in enumerate(times) if 1.0 <= t < 3.0]
    assert len(full) == 50 and np.array_equal(full.numpy(), frames[in_range])
    for n in (1, 8, 16, 50, 64):  # 64 > 50 frames: indices repeat, as pytorchvideo's
        sub, ts = read_clip(gop12_mp4, 1.0, 3.0, num_frames=n)
        idx = torch.linspace(0, len(full) - 1, n).long()
        assert torch.equal(sub, full[idx]) and torch.equal(ts, full_ts[idx])


def test_seeks_instead_of_decoding_from_the_start(gop12_mp4):
    with VideoReader(gop12_mp4) as reader:
        reader.get_clip(3.0, 3.5)
        # keyframes every 12 frames: at most 11 frames before 3.0 s, 13 in range, 1 past it
        assert reader.frames_decoded <= 12 + 13 + 1


def test_real_video_random_clips_match_full_decode(bikes_mp4):
    times, frames = _reference_frames(bikes_mp4)
    rng = random.Random(1)
    with VideoReader(bikes_mp4) as reader:
        for _ in range(4):
            start = rng.uniform(0, 8)
            clip, ts = reader.get_clip(start, start + 2.0, num_frames=8)
            want = [i for i, t in enumerate(times) if start <= t < start + 2.0]
            idx = [want[i] for i in torch.linspace(0, len(want) - 1, 8).long().tolist()]
            assert np.array_equal(clip.numpy(), frames[idx])
            assert ts.tolist() == pytest.approx([times[i] for i in idx])


def test_audio_and_video_of_one_clip(bunny_mp4):
    clip = read_av_clip(bunny_mp4, 1.0, 3.0, num_frames=4, audio_sample_rate=16_000)
    assert clip.frames.shape == (4, 720, 1280, 3)
    assert clip.audio_sample_rate == 16_000 and clip.audio.shape[0] == 1
    assert abs(clip.audio.shape[1] - 32_000) <= 16  # 2 s of 16 kHz
    assert clip.audio.abs().max() > 0.01 and clip.audio.abs().max() <= 1.0  # real sound
    # the same interval through the audio reader gives the same samples
    from paperzoo.data.audio import read_audio

    wave, rate = read_audio(bunny_mp4, 16_000, start_sec=1.0, end_sec=3.0)
    n = min(wave.shape[1], clip.audio.shape[1])
    assert rate == 16_000 and torch.allclose(
        wave[:, 100 : n - 100], clip.audio[:, 100 : n - 100], atol=1e-4
    )
    silent = read_av_clip(bunny_mp4, 0.0, 0.2)  # no resampling: the file's 48 kHz? its own rate
    assert silent.audio_sample_rate == av.open(str(bunny_mp4)).streams.audio[0].sample_rate


def test_decode_errors_name_the_file(tmp_path, gop12_mp4):
    with pytest.raises(DecodeError) as err:
        read_clip(tmp_path / "missing.mp4", 0, 1)
    assert err.value.path.endswith("missing.mp4") and "does not exist" in err.value.reason
    with pytest.raises(DecodeError, match="no video frame") as err:
        read_clip(gop12_mp4, 10.0, 11.0)
    assert "4.000 s long" in err.value.reason
    with pytest.raises(ValueError, match="start_sec < end_sec"):
        read_clip(gop12_mp4, 2.0, 1.0)
    with pytest.raises(ValueError, match="unknown video backend"):
        read_clip(gop12_mp4, 0.0, 1.0, backend="opencv")
    # DecodeError survives pickling (DataLoader workers send it to the main process)
    import pickle

    back = pickle.loads(pickle.dumps(DecodeError("a.mp4", "why")))
    assert (back.path, back.reason) == ("a.mp4", "why")


@pytest.mark.skipif(
    "torchcodec" not in available_backends(), reason="torchcodec or system FFmpeg missing"
)
@pytest.mark.parametrize("name", ["gop12", "bikes", "carphone"])
def test_torchcodec_returns_the_same_frames(name, gop12_mp4, bikes_mp4, carphone_mp4):
    path = {"gop12": gop12_mp4, "bikes": bikes_mp4, "carphone": carphone_mp4}[name]
    rng = random.Random(2)
    for _ in range(3):
        start = rng.uniform(0, 2.0)
        a, ta = read_clip(path, start, start + 1.3, num_frames=6, backend="pyav")
        b, tb = read_clip(path, start, start + 1.3, num_frames=6, backend="torchcodec")
        assert torch.equal(ta, tb)
        assert torch.equal(a, b)
    a, ta = read_clip(path, 0.0, 100.0, backend="pyav")  # to the end of the file
    b, tb = read_clip(path, 0.0, 100.0, backend="torchcodec")
    assert torch.equal(ta, tb) and torch.equal(a, b)
    with pytest.raises(DecodeError, match="no video frame"):
        read_clip(path, 50.0, 60.0, backend="torchcodec")
