"""Bad media, built for real: each kind is skipped and counted, or named in the error."""

import os
import shutil
import signal

import av
import numpy as np
import pytest
import torch
from conftest import counting_frames, write_h264
from torch.utils.data import DataLoader

from paperzoo.data import TooManyBadFilesError, WorkerCrashError, iter_reporting_crashes
from paperzoo.data.datasets import LabeledVideoDataset, VideoRecord
from paperzoo.data.samplers import RandomClipSampler
from paperzoo.data.video import DecodeError, read_clip


def _audio_only_mp4(path, wav):
    """An mp4 holding only an AAC track, transcoded from a real speech recording."""
    with av.open(str(wav)) as src, av.open(str(path), "w") as dst:
        out = dst.add_stream("aac", rate=16_000)
        for frame in src.decode(audio=0):
            frame.pts = None
            for packet in out.encode(frame):
                dst.mux(packet)
        for packet in out.encode():
            dst.mux(packet)
    return path


@pytest.fixture(scope="module")
def bad_files(tmp_path_factory, speech_wav):
    d = tmp_path_factory.mktemp("bad")
    good = write_h264(d / "good.mp4", counting_frames(50), gop=10)
    (d / "zero.mp4").write_bytes(b"")
    data = good.read_bytes()
    (d / "truncated.mp4").write_bytes(data[: len(data) // 2])  # moov atom (at the end) lost
    noise = np.random.default_rng(0).integers(0, 255, (50, 48, 64, 3), dtype=np.uint8)
    fast = write_h264(d / "fast.mp4", noise, gop=10, faststart=True)  # index first, then frames
    fast_data = fast.read_bytes()
    (d / "truncated_faststart.mp4").write_bytes(fast_data[: len(fast_data) // 2])  # frames lost
    (d / "notes.mp4").write_text("these are meeting notes, not a video\n" * 20)  # wrong type
    shutil.copy(speech_wav, d / "speech_renamed.mp4")  # a WAV under a video name
    _audio_only_mp4(d / "audio_only.mp4", speech_wav)
    return d


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("zero.mp4", "empty file"),
        ("truncated.mp4", "not a readable media container"),
        ("notes.mp4", "not a readable media container"),
        ("speech_renamed.mp4", "no video stream (streams: audio)"),
        ("audio_only.mp4", "no video stream (streams: audio)"),
    ],
)
def test_each_bad_kind_is_a_decode_error(bad_files, name, reason):
    with pytest.raises(DecodeError) as err:
        read_clip(bad_files / name, 0.0, 1.0)
    assert err.value.path == str(bad_files / name) and reason in err.value.reason


def test_truncated_stream_decodes_what_is_there_and_errors_past_it(bad_files):
    frames, _ = read_clip(bad_files / "truncated_faststart.mp4", 0.0, 0.2)
    assert len(frames) == 5  # the start of the file is intact
    with pytest.raises(DecodeError, match="may be truncated"):
        read_clip(bad_files / "truncated_faststart.mp4", 1.8, 2.0)


def _records(bad_files, good_copies=5):
    recs = []
    for i in range(good_copies):
        shutil.copy(bad_files / "good.mp4", bad_files / f"good{i}.mp4")
        recs.append(VideoRecord(str(bad_files / f"good{i}.mp4"), 0))
    for name in ("zero.mp4", "truncated.mp4", "notes.mp4", "audio_only.mp4"):
        recs.append(VideoRecord(str(bad_files / name), 1))
    recs.append(
        VideoRecord(str(bad_files / "truncated_faststart.mp4"), 1, start_sec=1.5, end_sec=2.0)
    )
    return recs


def test_bad_files_are_skipped_and_counted_across_workers(bad_files):
    ds = LabeledVideoDataset(
        _records(bad_files), RandomClipSampler(0.5), num_frames=4, max_bad_fraction=0.5
    )
    for epoch in range(2):
        loader = DataLoader(
            ds, batch_size=2, num_workers=2, generator=torch.Generator().manual_seed(epoch)
        )
        batches = list(iter_reporting_crashes(loader, ds))
        clips = torch.cat([b[0] for b in batches])
        labels = torch.cat([b[1] for b in batches])
        # every bad entry was replaced by a good video: the batch keeps its size
        assert clips.shape == (10, 3, 4, 48, 64) and labels.tolist().count(0) == 10
        assert ds.skipped.count == 5, f"epoch {epoch}"  # summed over both worker processes
        assert ds.skipped.reset() == 5 and ds.skipped.count == 0


def test_too_many_bad_files_is_a_clear_error(bad_files):
    ds = LabeledVideoDataset(
        _records(bad_files), RandomClipSampler(0.5), num_frames=4, max_bad_fraction=0.2
    )
    loader = DataLoader(ds, batch_size=2, num_workers=2)
    with pytest.raises(
        TooManyBadFilesError,
        match=r"[34] of 10 files could not be decoded.*max_bad_fraction=0.2 allows \(2\)",
    ):
        list(loader)


class _CrashOnTinyVideo:
    """Kills its own process (as a segfaulting decoder would) on 32-px-wide videos."""

    def __call__(self, video):
        if video.shape[-1] == 32:
            os.kill(os.getpid(), signal.SIGKILL)
        return video.float()


def test_worker_crash_names_the_file(tmp_path):
    paths = [write_h264(tmp_path / f"ok{i}.mp4", counting_frames(10)) for i in range(3)]
    crash = write_h264(tmp_path / "crasher.mp4", np.zeros((10, 32, 32, 3), np.uint8))
    recs = [VideoRecord(str(p), 0) for p in [*paths, crash]]
    ds = LabeledVideoDataset(
        recs, RandomClipSampler(0.2), num_frames=2, transform=_CrashOnTinyVideo()
    )
    loader = DataLoader(ds, batch_size=1, num_workers=2)
    with pytest.raises(WorkerCrashError, match=r"crasher\.mp4"):
        list(iter_reporting_crashes(loader, ds))


def test_worker_exception_names_the_file(tmp_path):
    path = write_h264(tmp_path / "fine.mp4", counting_frames(10))

    def broken_transform(video):
        raise KeyError("bug in a user transform")

    ds = LabeledVideoDataset(
        [VideoRecord(str(path), 0)], RandomClipSampler(0.2), transform=broken_transform
    )
    with pytest.raises(RuntimeError, match=r"error while loading .*fine\.mp4"):
        list(DataLoader(ds, batch_size=1, num_workers=1))
