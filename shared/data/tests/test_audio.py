import pytest
import torch

from paperzoo.data.audio import audiomae_fbank, kaldi_fbank, read_audio, spec_augment
from paperzoo.data.video import DecodeError

kaldi = pytest.importorskip("torchaudio.compliance.kaldi")


def test_read_real_speech(speech_wav):
    wave, rate = read_audio(speech_wav, sample_rate=None)
    assert rate == 16_000 and wave.shape == (1, 64_000) and wave.dtype == torch.float32
    # int16 PCM -> [-1, 1]: speech peaks well above the noise floor, never clips past 1
    assert 0.1 < wave.abs().max() <= 1.0
    part, _ = read_audio(speech_wav, sample_rate=None, start_sec=1.0, end_sec=2.5)
    assert torch.equal(part, wave[:, 16_000:40_000])


def test_resampling_keeps_duration_and_content(speech_wav):
    wave, _ = read_audio(speech_wav, sample_rate=None)
    down, rate = read_audio(speech_wav, sample_rate=8_000)
    assert rate == 8_000 and abs(down.shape[1] - 32_000) <= 8
    # the 8 kHz signal is the low band of the original: compare against a crude decimation
    n = min(down.shape[1], wave.shape[1] // 2)
    ref = wave[0, : 2 * n].reshape(n, 2).mean(1)
    corr = torch.corrcoef(torch.stack([down[0, :n], ref]))[0, 1]
    assert corr > 0.9


@pytest.mark.parametrize("scale", [1.0, 32768.0])
def test_kaldi_fbank_matches_torchaudio(speech_wav, scale):
    wave, rate = read_audio(speech_wav, sample_rate=None)
    wave = (wave - wave.mean()) * scale
    ours = kaldi_fbank(wave, rate, num_mel_bins=128)
    ref = kaldi.fbank(
        wave,
        htk_compat=True,
        sample_frequency=rate,
        use_energy=False,
        window_type="hanning",
        num_mel_bins=128,
        dither=0.0,
        frame_shift=10,
    )
    assert ours.shape == ref.shape == (398, 128)
    torch.testing.assert_close(ours, ref, atol=5e-4, rtol=1e-5)


def test_kaldi_fbank_other_settings_match_torchaudio():
    torch.manual_seed(0)
    wave = torch.randn(1, 12_345)
    for kwargs in (
        dict(num_mel_bins=64, window_type="povey"),
        dict(num_mel_bins=40, window_type="hamming"),
    ):
        ours = kaldi_fbank(wave, 16_000, **kwargs)
        ref = kaldi.fbank(wave, sample_frequency=16_000, dither=0.0, use_energy=False, **kwargs)
        torch.testing.assert_close(ours, ref, atol=5e-4, rtol=1e-5)


def test_audiomae_input(speech_wav):
    wave, rate = read_audio(speech_wav, sample_rate=16_000)
    x = audiomae_fbank(wave, rate)
    assert x.shape == (1024, 128)
    assert torch.all(x[398:] == (0 - -4.2677393) / (2 * 4.5689974))  # zero padding, normalised
    assert not torch.allclose(x[:398], x[0])


def test_spec_augment_masks_bands():
    spec = torch.randn(1024, 128)
    g = torch.Generator().manual_seed(0)
    out = spec_augment(spec, freq_mask_param=48, time_mask_param=192, generator=g)
    zero_cols = (out == 0).all(dim=0).sum().item()
    zero_rows = (out == 0).all(dim=1).sum().item()
    assert 0 < zero_cols < 48 and 0 < zero_rows < 192
    assert torch.equal(out[out != 0], spec[out != 0]) and not torch.equal(out, spec)
    again = spec_augment(spec, 48, 192, generator=torch.Generator().manual_seed(0))
    assert torch.equal(out, again)


def test_audio_decode_errors(tmp_path, bikes_mp4):
    with pytest.raises(DecodeError, match="no audio stream"):
        read_audio(bikes_mp4)
    (tmp_path / "x.wav").write_bytes(b"")
    with pytest.raises(DecodeError, match="empty file"):
        read_audio(tmp_path / "x.wav")
