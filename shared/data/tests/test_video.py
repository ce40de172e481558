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


# -- Skipping non-reference frames: bit-exact against a full decode --------------------------

# x264/x265 parameters: B-frames on, a fixed B pattern with a pyramid (the middle B of each run is
# a reference frame, the others are not), and keyframes exactly every `keyint` frames.
_ENCODINGS = {  # name: (codec, parameters, container)
    "h264_gop12": (
        "libx264",
        "bframes=3:b-adapt=0:b-pyramid=normal:keyint=12:min-keyint=12",
        "mp4",
    ),
    "h264_gop250": (
        "libx264",
        "bframes=3:b-adapt=0:b-pyramid=normal:keyint=250:min-keyint=250",
        "mp4",
    ),
    "h264_adaptive_b": ("libx264", "bframes=3:keyint=60:min-keyint=60", "mp4"),
    "h264_open_gop": ("libx264", "bframes=3:b-adapt=0:open-gop=1:keyint=50:min-keyint=50", "mp4"),
    "h264_mkv": (
        "libx264",
        "bframes=3:b-adapt=0:b-pyramid=normal:keyint=100:min-keyint=100",
        "mkv",
    ),
    # MPEG-TS: no index, a seek lands on any packet; decoded frame by frame, rewound if needed
    "h264_ts": ("libx264", "bframes=3:b-adapt=0:b-pyramid=normal:keyint=100:min-keyint=100", "ts"),
    "hevc_gop60": (
        "libx265",
        "bframes=3:b-pyramid=1:keyint=60:min-keyint=60:log-level=error",
        "mp4",
    ),
    "mpeg4_bframes": ("mpeg4", "", "mp4"),  # not skipped: decoded frame by frame
}


def _moving_texture(num_frames: int, height: int = 64, width: int = 96) -> np.ndarray:
    """A drifting sinusoid over sliding noise: every frame differs, motion is predictable."""
    rng = np.random.default_rng(0)
    xx = np.arange(width, dtype=np.float32)[None, :, None]
    noise = rng.integers(0, 60, (height, width + num_frames, 3), dtype=np.uint8)
    tint = np.array([1.0, 0.5, -0.7], dtype=np.float32)
    out = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        wave = 110 + 80 * np.sin(xx / 9.0 + 0.2 * t) * tint
        out[t] = np.clip(wave + noise[:, t : t + width], 0, 255).astype(np.uint8)
    return out


def _encode(folder, name: str, num_frames: int = 300, fps: int = 25):
    codec, params, container_format = _ENCODINGS[name]
    path = folder / f"{name}.{container_format}"
    if codec not in av.codecs_available:
        pytest.skip(f"this PyAV build has no {codec} encoder")
    with av.open(str(path), mode="w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = 96, 64, "yuv420p"
        if codec == "libx264":
            stream.options = {"preset": "veryfast", "x264-params": f"{params}:scenecut=0"}
        elif codec == "libx265":
            stream.options = {"preset": "ultrafast", "x265-params": f"{params}:scenecut=0"}
        else:
            stream.options = {"bf": "2", "g": "30", "qscale": "4"}
        for rgb in _moving_texture(num_frames):
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def _frame_kinds(path, skip_frame: str) -> list[tuple[float, int]]:
    """(time, picture type) of every frame a front-to-back decode outputs with ``skip_frame``."""
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        stream.codec_context.skip_frame = skip_frame
        start = stream.start_time or 0
        return [
            (float((f.pts - start) * stream.time_base), int(f.pict_type))
            for f in container.decode(stream)
        ]


@pytest.fixture(scope="module", params=list(_ENCODINGS))
def encoded(request, tmp_path_factory):
    """(name, path, reference times, reference frames) for 12 s of video at 25 fps."""
    path = _encode(tmp_path_factory.mktemp("enc"), request.param)
    times, frames = _reference_frames(path)
    return request.param, path, times, frames


def test_files_have_b_frames_and_non_reference_frames(encoded):
    name, path, times, _ = encoded
    kinds = _frame_kinds(path, "DEFAULT")
    b_frames = sum(kind == int(av.video.frame.PictureType.B) for _, kind in kinds)
    assert len(kinds) == len(times) == 300 and b_frames >= 25, (name, b_frames)
    if name.startswith(("h264", "hevc")):  # what skipping can drop
        assert len(_frame_kinds(path, "NONREF")) <= 300 - 20, name


def test_clips_equal_the_full_decode_bit_for_bit(encoded):
    name, path, times, frames = encoded
    rng = random.Random(3)
    windows = [(0.0, 2.0), (-1.0, 0.3), (9.9, 10.1), (11.0, 20.0), (4.0, 4.04)]
    windows += [(s, s + rng.choice([0.3, 1.0, 2.0, 3.0])) for s in np.linspace(0.1, 11.5, 14)]
    with VideoReader(path) as reader:  # one reader: every read seeks on a used decoder
        for i, (start, end) in enumerate(windows):
            num_frames = (None, 8, 16, 120)[i % 4]  # 120: more than the window holds
            want = [j for j, t in enumerate(times) if start <= t < end]
            if num_frames is not None:
                want = [want[k] for k in torch.linspace(0, len(want) - 1, num_frames).long()]
            clip, ts = reader.get_clip(start, end, num_frames)
            assert ts.tolist() == [times[j] for j in want], (name, start, end, num_frames)
            assert np.array_equal(clip.numpy(), frames[want]), (name, start, end, num_frames)


@pytest.mark.parametrize("name", ["h264_gop250", "h264_mkv", "hevc_gop60"])
def test_non_reference_frames_before_and_between_kept_frames_are_skipped(name, tmp_path):
    path = _encode(tmp_path, name)
    start, end = {"h264_gop250": (7.0, 9.0), "h264_mkv": (6.0, 7.0)}.get(name, (3.6, 4.6))
    kinds = _frame_kinds(path, "DEFAULT")
    intra = int(av.video.frame.PictureType.I)
    keyframe = max(t for t, kind in kinds if kind == intra and t <= start)  # 0.0 / 2.4 s
    reference = {t for t, _ in _frame_kinds(path, "NONREF")}  # the frames others predict from
    upto = [t for t, _ in kinds if keyframe <= t < end + 0.2]  # +0.2 s: reordering lookahead
    with VideoReader(path) as reader:
        _, ts = reader.get_clip(start, end, num_frames=4)
        assert len(ts) == 4 and start <= ts[0] and ts[-1] < end
        # decoded: reference frames from the keyframe on, plus the kept frames, nothing else
        assert reader.frames_decoded <= sum(t in reference for t in upto) + 4
        assert reader.frames_decoded < 0.8 * len(upto)  # what decoding every frame costs
