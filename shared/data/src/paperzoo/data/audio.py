"""Audio: decode and resample (PyAV), Kaldi-compatible log-mel filterbanks, SpecAugment.

The front-end is the one AudioMAE (Huang et al. 2022, arXiv:2207.06405) and MAViL (Huang et
al. 2022, arXiv:2212.08071) use: subtract the waveform mean, Kaldi fbank with 128 mel bins at
16 kHz, 25 ms Hanning windows every 10 ms, ``htk_compat=True``, ``use_energy=False``,
``dither=0``; pad or crop to 1024 frames; normalise as ``(x - mean) / (2 * std)``;
SpecAugment (frequency and time masks) for training.

:func:`kaldi_fbank` re-implements ``torchaudio.compliance.kaldi.fbank`` (Povey et al., Kaldi's
``compute-fbank-feats``) in plain torch. The reason it is written here: torchaudio wheels pin
one exact torch release, which would pin every paperzoo package's torch; its output is
parity-tested against torchaudio in the test suite.
"""

from __future__ import annotations

import math
import os
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from paperzoo.data.video import DecodeError

__all__ = [
    "AUDIOSET_FBANK_MEAN",
    "AUDIOSET_FBANK_STD",
    "audiomae_fbank",
    "kaldi_fbank",
    "kaldi_mel_banks",
    "read_audio",
    "resample_frames",
    "spec_augment",
]

# Dataset statistics of the 128-bin fbank on AudioSet, used by AST, AudioMAE and MAViL.
AUDIOSET_FBANK_MEAN = -4.2677393
AUDIOSET_FBANK_STD = 4.5689974


# -- decoding --------------------------------------------------------------------------------


def read_audio(
    path: str | os.PathLike[str],
    sample_rate: int | None = 16_000,
    mono: bool = True,
    start_sec: float = 0.0,
    end_sec: float | None = None,
) -> tuple[torch.Tensor, int]:
    """Decode the first audio track of ``path`` (a WAV, an mp4's audio, ...) and resample it.

    Returns ``(waveform, rate)``: float32 (channels, samples) in [-1, 1] (channels = 1 when
    ``mono``) and the rate in Hz (``sample_rate``, or the file's when None). Only samples with
    ``start_sec <= t < end_sec`` are kept. Raises :class:`DecodeError` naming the file.
    """
    import av

    path = os.fspath(path)
    if not os.path.exists(path):
        raise DecodeError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, "empty file (0 bytes)")
    errors = (av.error.FFmpegError, EOFError, OSError, ValueError)
    try:
        container = av.open(path, metadata_errors="ignore")
    except errors as exc:
        raise DecodeError(path, f"not a readable media container ({exc})") from None
    with container:
        if not container.streams.audio:
            kinds = sorted({s.type for s in container.streams}) or ["none"]
            raise DecodeError(path, f"no audio stream (streams: {', '.join(kinds)})")
        stream = container.streams.audio[0]
        stream.thread_type = "AUTO"
        origin = float((stream.start_time or 0) * stream.time_base) if stream.time_base else 0.0
        end = math.inf if end_sec is None else end_sec
        frames: list[tuple[float, Any]] = []
        try:
            if start_sec > 0:
                container.seek(
                    int((start_sec + origin) / stream.time_base), stream=stream, backward=True
                )
            for frame in container.decode(stream):
                t0 = float(frame.pts * frame.time_base) - origin if frame.pts is not None else 0.0
                if t0 >= end:
                    break
                if t0 + frame.samples / frame.sample_rate > start_sec:
                    frames.append((t0, frame))
        except errors as exc:
            raise DecodeError(
                path, f"audio decoding failed ({type(exc).__name__}: {exc})"
            ) from None
    waveform, rate = resample_frames(path, frames, start_sec, end_sec, sample_rate, mono)
    if waveform is None:
        raise DecodeError(path, f"no audio samples in [{start_sec}, {end_sec})")
    return waveform, rate


def resample_frames(
    path: str,
    frames: list[tuple[float, Any]],
    start_sec: float,
    end_sec: float | None,
    sample_rate: int | None,
    mono: bool,
) -> tuple[torch.Tensor | None, int | None]:
    """Resample decoded PyAV audio frames ``(start_time_s, frame)`` with FFmpeg's swresample
    (``av.AudioResampler``) and trim to ``[start_sec, end_sec)``: float32 (C, S) and rate."""
    import av

    if not frames:
        return None, sample_rate
    first_t0, first = frames[0]
    rate = int(sample_rate or first.sample_rate)
    layout = "mono" if mono else first.layout.name
    resampler = av.AudioResampler(format="fltp", layout=layout, rate=rate)
    chunks: list[np.ndarray] = []
    try:
        for _, frame in frames:
            frame.pts = None  # the resampler would otherwise insist on contiguous timestamps
            chunks.extend(out.to_ndarray() for out in resampler.resample(frame))
        chunks.extend(out.to_ndarray() for out in resampler.resample(None))  # flush its buffer
    except (av.error.FFmpegError, ValueError) as exc:
        raise DecodeError(path, f"audio resampling failed ({exc})") from None
    waveform = torch.from_numpy(np.concatenate(chunks, axis=1).astype(np.float32, copy=False))
    skip = max(0, round((start_sec - first_t0) * rate))
    stop = None if end_sec is None else max(skip, round((end_sec - first_t0) * rate))
    return waveform[:, skip:stop].contiguous(), rate


# -- Kaldi fbank -----------------------------------------------------------------------------


def _mel(freq: torch.Tensor | float) -> torch.Tensor | float:
    if isinstance(freq, torch.Tensor):
        return 1127.0 * torch.log1p(freq / 700.0)
    return 1127.0 * math.log1p(freq / 700.0)


def kaldi_mel_banks(
    num_bins: int, padded_window_size: int, sample_rate: float, low_freq: float, high_freq: float
) -> torch.Tensor:
    """Kaldi's triangular mel filters, (num_bins, padded_window_size // 2 + 1).

    Unlike HTK/librosa filters, the triangles are linear in mel, not in Hz, and the last
    (Nyquist) FFT bin gets weight 0, as in Kaldi's ``MelBanks``.
    """
    nyquist = 0.5 * sample_rate
    if high_freq <= 0.0:
        high_freq += nyquist
    if not 0.0 <= low_freq < high_freq <= nyquist:
        raise ValueError(
            f"bad mel range low_freq={low_freq}, high_freq={high_freq}, nyquist={nyquist}"
        )
    num_fft_bins = padded_window_size // 2
    fft_bin_width = sample_rate / padded_window_size
    mel_low, mel_high = _mel(low_freq), _mel(high_freq)
    delta = (mel_high - mel_low) / (num_bins + 1)
    b = torch.arange(num_bins, dtype=torch.float64).unsqueeze(1)
    left, center, right = mel_low + b * delta, mel_low + (b + 1) * delta, mel_low + (b + 2) * delta
    mel = _mel(fft_bin_width * torch.arange(num_fft_bins, dtype=torch.float64)).unsqueeze(0)
    up = (mel - left) / (center - left)
    down = (right - mel) / (right - center)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return F.pad(banks, (0, 1))


def kaldi_fbank(
    waveform: torch.Tensor,
    sample_rate: float = 16_000,
    num_mel_bins: int = 128,
    frame_length_ms: float = 25.0,
    frame_shift_ms: float = 10.0,
    preemphasis: float = 0.97,
    low_freq: float = 20.0,
    high_freq: float = 0.0,
    remove_dc_offset: bool = True,
    window_type: str = "hanning",
) -> torch.Tensor:
    """Log-mel filterbank energies as Kaldi computes them (``torchaudio.compliance.kaldi.fbank``
    with ``use_energy=False``, ``dither=0``, ``snip_edges=True``, ``round_to_power_of_two=True``,
    ``use_power=True``, ``use_log_fbank=True``; ``htk_compat`` only moves the energy column, so
    it changes nothing without energy).

    ``waveform``: (samples,) or (1, samples) float, any scale (Kaldi tools feed int16 values;
    AudioMAE feeds [-1, 1]). Returns (frames, num_mel_bins) float32, ``frames = 1 +
    (samples - window) // shift`` with window = 400 and shift = 160 samples at 16 kHz.
    """
    if waveform.ndim == 2:
        if waveform.shape[0] != 1:
            raise ValueError(f"kaldi_fbank takes one channel, got {tuple(waveform.shape)}")
        waveform = waveform[0]
    waveform = waveform.to(torch.float32)
    window_size = int(sample_rate * frame_length_ms * 0.001)
    window_shift = int(sample_rate * frame_shift_ms * 0.001)
    if waveform.numel() < window_size:
        raise ValueError(
            f"waveform of {waveform.numel()} samples is shorter than one {frame_length_ms} ms window"
        )
    padded = 1 << (window_size - 1).bit_length()
    frames = waveform.unfold(0, window_size, window_shift)  # (m, window_size), snip_edges=True
    if remove_dc_offset:
        frames = frames - frames.mean(dim=1, keepdim=True)
    if preemphasis != 0.0:
        previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)  # Kaldi replicates sample 0
        frames = frames - preemphasis * previous
    frames = frames * _kaldi_window(window_type, window_size)
    frames = F.pad(frames, (0, padded - window_size))
    power = torch.fft.rfft(frames).abs().pow(2.0)
    banks = kaldi_mel_banks(num_mel_bins, padded, sample_rate, low_freq, high_freq).to(
        torch.float32
    )
    energies = power @ banks.T
    return torch.clamp(energies, min=torch.finfo(torch.float32).eps).log()


def _kaldi_window(window_type: str, size: int) -> torch.Tensor:
    if window_type == "hanning":
        return torch.hann_window(size, periodic=False)
    if window_type == "hamming":
        return torch.hamming_window(size, periodic=False, alpha=0.54, beta=0.46)
    if window_type == "povey":
        return torch.hann_window(size, periodic=False).pow(0.85)
    if window_type == "rectangular":
        return torch.ones(size)
    raise ValueError(
        f"unknown window_type {window_type!r}; use hanning, hamming, povey or rectangular"
    )


def audiomae_fbank(
    waveform: torch.Tensor,
    sample_rate: int = 16_000,
    target_frames: int = 1024,
    mean: float = AUDIOSET_FBANK_MEAN,
    std: float = AUDIOSET_FBANK_STD,
) -> torch.Tensor:
    """The AudioMAE/MAViL audio input: mean-removed waveform -> 128-bin Kaldi fbank -> pad with
    zeros or crop to ``target_frames`` (1024 = 10.24 s) -> ``(x - mean) / (2 * std)``.

    ``waveform``: (1, samples) or (samples,) float in [-1, 1] at ``sample_rate``.
    Returns (target_frames, 128) float32.
    """
    waveform = waveform.reshape(1, -1).to(torch.float32)
    fbank = kaldi_fbank(waveform - waveform.mean(), sample_rate=sample_rate, num_mel_bins=128)
    n = fbank.shape[0]
    if n < target_frames:
        fbank = F.pad(fbank, (0, 0, 0, target_frames - n))
    else:
        fbank = fbank[:target_frames]
    return (fbank - mean) / (2 * std)


# -- SpecAugment -----------------------------------------------------------------------------


def spec_augment(
    spectrogram: torch.Tensor,
    freq_mask_param: int = 48,
    time_mask_param: int = 192,
    num_freq_masks: int = 1,
    num_time_masks: int = 1,
    value: float = 0.0,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """SpecAugment masking (Park et al. 2019, arXiv:1904.08779) on (..., time, freq).

    Each mask has a width drawn uniformly from ``[0, param)`` and a uniform start, and is
    filled with ``value``, as ``torchaudio.transforms.FrequencyMasking``/``TimeMasking`` do.
    AudioMAE's AudioSet defaults: freq 48, time 192 (on 1024 x 128 inputs). Returns a new
    tensor; the input is unchanged.
    """
    out = spectrogram.clone()
    n_time, n_freq = out.shape[-2], out.shape[-1]
    for _ in range(num_freq_masks):
        lo, hi = _mask_span(freq_mask_param, n_freq, generator)
        out[..., :, lo:hi] = value
    for _ in range(num_time_masks):
        lo, hi = _mask_span(time_mask_param, n_time, generator)
        out[..., lo:hi, :] = value
    return out


def _mask_span(param: int, size: int, generator: torch.Generator | None) -> tuple[int, int]:
    width = int(torch.rand((), generator=generator) * min(param, size))
    start = int(torch.rand((), generator=generator) * (size - width))
    return start, start + width
