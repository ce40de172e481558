"""The mp4-with-audio writer (decoded back: frames and audio samples), the audio-visual digits
in AudioSet's list format, and the clip dataset's tensors."""

from __future__ import annotations

import numpy as np
import torch

from paperzoo.data.audio import read_audio
from paperzoo.data.datasets import read_audioset_csv
from paperzoo.data.video import probe_video, read_av_clip
from paperzoo.mavil.data import AVClipDataset, dtmf_tone, write_av_mp4


def test_mp4_with_audio_round_trip(tmp_path):
    path = tmp_path / "clip.mp4"
    frames = np.zeros((8, 32, 48, 3), dtype=np.uint8)
    for t in range(8):
        frames[t, :, :, 0] = 30 * t  # a red ramp over time, flat in space
        frames[t, :, :, 2] = 200
    rate = 16_000
    tone = 0.5 * np.sin(2 * np.pi * 440 * np.arange(rate) / rate).astype(np.float32)
    write_av_mp4(path, frames, 8, tone, rate)
    info = probe_video(path)
    assert info.has_audio
    clip = read_av_clip(path, 0.0, 1.0, None, rate)
    assert clip.frames.shape == (8, 32, 48, 3)
    red = clip.frames[..., 0].float().mean(dim=(1, 2))
    assert torch.allclose(red, torch.arange(8) * 30.0, atol=6)  # h264 at crf 18
    assert torch.allclose(clip.frames[..., 2].float().mean(), torch.tensor(200.0), atol=6)
    audio, got_rate = read_audio(path, rate)
    assert got_rate == rate
    # AAC adds priming / padding samples around the 16,000 written.
    assert rate <= audio.shape[1] <= rate + 2048
    decoded = audio[0, :15000].numpy()
    assert np.corrcoef(decoded, tone[:15000])[0, 1] > 0.95
    assert abs(np.abs(decoded).max() - 0.5) < 0.05


def test_dtmf_tones_carry_their_digit():
    rng = np.random.default_rng(0)
    wave = dtmf_tone(5, 1.0, 16_000, rng, noise=0.0)  # 770 + 1336 Hz
    spectrum = np.abs(np.fft.rfft(wave))
    peaks = sorted(np.argsort(spectrum)[-2:])  # 1 Hz bins
    assert abs(peaks[0] - 770) < 20 and abs(peaks[1] - 1336) < 30


def test_digits_in_audioset_format(av_digits_root):
    root, meta = av_digits_root
    assert len(meta["classes"]) == 20
    records, classes = read_audioset_csv(root / "train_segments.csv",
                                         root / "class_labels_indices.csv", root / "videos")  # fmt: skip
    assert classes == meta["classes"] and len(records) == 40  # 2 train clips x 20 classes
    assert sorted({r.label[0] for r in records}) == list(range(20))
    ds = AVClipDataset(records, 20, audio_frames=96, num_frames=4, img_size=32)
    fbank, video, target = ds[0]
    assert fbank.shape == (1, 96, 128) and video.shape == (3, 4, 32, 32)
    assert target.dtype == torch.int64 and int(target) == records[0].label[0]
    hot = AVClipDataset(records, 20, audio_frames=96, num_frames=4, img_size=16,
                        multilabel=True)[0][2]  # fmt: skip
    assert hot.shape == (20,) and hot.sum() == 1
