"""Video decoding behind one interface: PyAV (default) and torchcodec (optional extra).

``read_clip(path, start_sec, end_sec)`` returns exactly the frames whose presentation time t
satisfies ``start_sec <= t < end_sec``, as uint8 (T, H, W, C) RGB, and their times in seconds
from the start of the video stream. With ``num_frames`` it keeps the frames at
``torch.linspace(0, T - 1, num_frames).long()``, as pytorchvideo's UniformTemporalSubsample
does (PyTorchVideo, Fan et al. 2021, arXiv:2111.09887).

The PyAV path is "sparse". It seeks to the keyframe at or before ``start_sec`` and reads the
window's packets first, so it knows from their timestamps which frames it will return before it
decodes any (h264/hevc in mp4/mov/mkv/webm, with a pts on every packet). It then decodes with
FFmpeg's frame/slice threads, sending every packet that no returned frame needs with
``skip_frame="NONREF"``: the decoder drops those that are non-reference frames (no other frame
predicts from them, so every frame it does decode is bit for bit the one a full decode gives)
and still decodes the reference frames the returned ones depend on. Only the returned frames
are converted to RGB, through one swscale context per reader. Any other stream (other codecs,
missing timestamps, a plan the decoder does not confirm) is decoded frame by frame from the
keyframe, with the same result.

Every failure (missing file, zero bytes, truncated container, not a video, no video stream,
no frame in the range) is a :class:`DecodeError` that carries ``path`` and ``reason``.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import torch

__all__ = [
    "AVClip",
    "DecodeError",
    "VideoInfo",
    "VideoReader",
    "available_backends",
    "probe_video",
    "read_av_clip",
    "read_clip",
]


class DecodeError(RuntimeError):
    """A video or audio file could not be decoded. ``path`` and ``reason`` say which and why."""

    def __init__(self, path: str | os.PathLike[str], reason: str) -> None:
        self.path = os.fspath(path)
        self.reason = reason
        super().__init__(f"cannot decode {self.path}: {reason}")

    def __reduce__(self) -> tuple[Any, ...]:  # keeps path/reason across DataLoader workers
        return (type(self), (self.path, self.reason))


@dataclass(frozen=True)
class VideoInfo:
    """What :func:`probe_video` reads from the container header (no decoding)."""

    path: str
    duration: float  # seconds, video stream
    fps: float
    num_frames: int  # from the header; 0 when the container does not say
    width: int
    height: int
    codec: str
    has_audio: bool


@dataclass
class AVClip:
    """A decoded clip with its audio: frames uint8 (T, H, W, C), times (T,) seconds,
    audio float32 (channels, samples) in [-1, 1] at ``audio_sample_rate`` Hz (None if absent)."""

    frames: torch.Tensor
    timestamps: torch.Tensor
    audio: torch.Tensor | None
    audio_sample_rate: int | None


def available_backends() -> list[str]:
    """Backends usable here: always ``"pyav"``; ``"torchcodec"`` when it imports and finds FFmpeg."""
    backends = ["pyav"]
    if importlib.util.find_spec("torchcodec") is None:
        return backends
    try:
        import torchcodec.decoders  # noqa: F401
    except Exception:  # an ABI mismatch with torch
        return backends
    try:
        # Since torchcodec 0.8 the import succeeds without FFmpeg and the libraries load at the
        # first VideoDecoder; load them now, so that "available" means usable.
        from torchcodec._internally_replaced_utils import load_core_libraries
    except ImportError:  # older torchcodec: the import above already loaded them
        load_core_libraries = None
    try:
        if load_core_libraries is not None:
            load_core_libraries()
    except Exception:  # no system FFmpeg of a version torchcodec supports
        return backends
    return [*backends, "torchcodec"]


def _resolve_backend(backend: str) -> str:
    if backend == "auto":
        return (
            "pyav"  # PyAV is the default; torchcodec only when asked for (it needs system FFmpeg)
        )
    if backend not in ("pyav", "torchcodec"):
        raise ValueError(f"unknown video backend {backend!r}; use 'auto', 'pyav' or 'torchcodec'")
    if backend == "torchcodec" and "torchcodec" not in available_backends():
        raise ImportError(
            "backend='torchcodec' needs `pip install 'paperzoo-data[torchcodec]'` and a system "
            "FFmpeg (e.g. `apt-get install ffmpeg`) matching torchcodec's supported versions"
        )
    return backend


def _check_file(path: str) -> None:
    if not os.path.exists(path):
        raise DecodeError(path, "file does not exist")
    if os.path.getsize(path) == 0:
        raise DecodeError(path, "empty file (0 bytes)")


def _subsample_indices(count: int, num_frames: int | None) -> torch.Tensor:
    if num_frames is None:
        return torch.arange(count)
    if num_frames <= 0:
        raise ValueError(f"num_frames must be positive, got {num_frames}")
    return torch.linspace(0, count - 1, num_frames).long()


class VideoReader:
    """An open video: header facts plus any number of clip reads on one container.

    Opening once and reading several clips (multi-clip test sampling) saves re-parsing the
    container. Use as a context manager, or call :meth:`close`.
    """

    def __init__(self, path: str | os.PathLike[str], backend: str = "auto") -> None:
        self.path = os.fspath(path)
        self.backend = _resolve_backend(backend)
        _check_file(self.path)
        self._impl: _PyAVReader | _TorchCodecReader = (
            _PyAVReader(self.path) if self.backend == "pyav" else _TorchCodecReader(self.path)
        )

    @property
    def info(self) -> VideoInfo:
        return self._impl.info

    @property
    def frames_decoded(self) -> int:
        """Video frames decoded so far by this reader (PyAV; -1 for torchcodec)."""
        return getattr(self._impl, "frames_decoded", -1)

    @property
    def duration(self) -> float:
        """Seconds of video, from the header (see :class:`VideoInfo`)."""
        return self._impl.info.duration

    def get_clip(
        self, start_sec: float, end_sec: float, num_frames: int | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Frames with ``start_sec <= t < end_sec``: uint8 (T, H, W, C) and times (T,) float64 s."""
        if not end_sec > start_sec:
            raise ValueError(f"need start_sec < end_sec, got [{start_sec}, {end_sec})")
        frames, times = self._impl.get_clip(start_sec, end_sec, num_frames)
        return frames, times

    def get_av_clip(
        self,
        start_sec: float,
        end_sec: float,
        num_frames: int | None = None,
        audio_sample_rate: int | None = None,
        mono: bool = True,
    ) -> AVClip:
        """Frames as :meth:`get_clip` plus the audio samples of the same interval (PyAV only)."""
        if not isinstance(self._impl, _PyAVReader):
            raise NotImplementedError("audio is read through the PyAV backend; use backend='pyav'")
        return self._impl.get_av_clip(start_sec, end_sec, num_frames, audio_sample_rate, mono)

    def close(self) -> None:
        self._impl.close()

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def read_clip(
    path: str | os.PathLike[str],
    start_sec: float,
    end_sec: float,
    num_frames: int | None = None,
    backend: str = "auto",
) -> tuple[torch.Tensor, torch.Tensor]:
    """Decode the frames of ``path`` whose presentation time t is in ``[start_sec, end_sec)``.

    Returns ``(frames, timestamps)``: uint8 (T, H, W, 3) RGB and float64 (T,) seconds from the
    start of the video stream. With ``num_frames``, ``T = num_frames`` frames at indices
    ``torch.linspace(0, T_all - 1, num_frames).long()`` (repeats when the range holds fewer).
    ``backend``: ``"auto"`` (PyAV), ``"pyav"`` or ``"torchcodec"``.
    Raises :class:`DecodeError` (with ``.path`` and ``.reason``) when it cannot.
    """
    with VideoReader(path, backend) as reader:
        return reader.get_clip(start_sec, end_sec, num_frames)


def read_av_clip(
    path: str | os.PathLike[str],
    start_sec: float,
    end_sec: float,
    num_frames: int | None = None,
    audio_sample_rate: int | None = None,
    mono: bool = True,
) -> AVClip:
    """:func:`read_clip` plus the audio track over the same interval, decoded in the same pass
    and resampled to ``audio_sample_rate`` Hz (the file's rate when None) by PyAV."""
    with VideoReader(path, "pyav") as reader:
        return reader.get_av_clip(start_sec, end_sec, num_frames, audio_sample_rate, mono)


def probe_video(path: str | os.PathLike[str]) -> VideoInfo:
    """Duration, frame rate, size, codec and audio presence from the header, without decoding."""
    with VideoReader(path, "pyav") as reader:
        return reader.info


# -- PyAV ------------------------------------------------------------------------------------


def _av_errors() -> tuple[type[BaseException], ...]:
    import av

    return (av.error.FFmpegError, EOFError, OSError, ValueError, UnicodeDecodeError)


# Decoders that honour a per-packet ``skip_frame`` (FFmpeg reads it for each packet, frame
# threads included) and whose non-reference frames no other frame predicts from. For other
# codecs every frame is decoded: correct, just slower.
_SKIP_NONREF_CODECS = frozenset({"h264", "hevc"})
# Containers whose packets carry each frame's own presentation time and whose seek lands on a
# keyframe from an index. AVI stores decode order only (its "pts" of B-frame streams are not
# presentation times) and MPEG-TS seeks by timestamp search to any packet: those take the
# frame-by-frame path.
_PLANNED_FORMATS = frozenset({"mov", "mp4", "matroska", "webm"})


class _PyAVReader:
    def __init__(self, path: str) -> None:
        from av.video.reformatter import VideoReformatter

        self.path = path
        self._open()
        stream = self.stream
        self.time_base = Fraction(stream.time_base) if stream.time_base else Fraction(1, 1_000_000)
        self.start_pts = stream.start_time if stream.start_time is not None else 0
        self.info = self._info()
        self.frames_decoded = 0  # video frames decoded so far (how sparse the reads were)
        # One swscale context for every frame of the reader. frame.to_ndarray(format="rgb24")
        # builds a new context (and its thread pool) per frame, which costs more than the
        # conversion itself; the pixels are the same.
        self._rgb = VideoReformatter()
        formats = set(str(self.container.format.name).split(","))
        self._plan = stream.codec_context.name in _SKIP_NONREF_CODECS and bool(
            formats & _PLANNED_FORMATS
        )

    def _open(self) -> None:
        import av

        try:
            self.container = av.open(self.path, metadata_errors="ignore")
        except _av_errors() as exc:
            raise DecodeError(self.path, f"not a readable media container ({exc})") from None
        if not self.container.streams.video:
            kinds = sorted({s.type for s in self.container.streams}) or ["none"]
            self.container.close()
            raise DecodeError(self.path, f"no video stream (streams: {', '.join(kinds)})")
        stream = self.container.streams.video[0]
        if stream.codec_context is None or stream.codec_context.name is None:
            self.container.close()
            raise DecodeError(self.path, "video stream has no decodable codec")
        # FFmpeg picks frame and/or slice threads; on h264 this roughly doubles throughput.
        stream.thread_type = "AUTO"
        self.stream = stream

    def _rewind(self) -> None:
        """Back to the first packet. Reopened rather than sought: a seek to the start time
        lands elsewhere in containers without an index (MPEG-TS)."""
        self.container.close()
        self._open()

    def _info(self) -> VideoInfo:
        s = self.stream
        if s.duration is not None:
            duration = float(s.duration * self.time_base)
        elif self.container.duration is not None:
            duration = self.container.duration / 1_000_000  # AV_TIME_BASE
        else:
            duration = 0.0
        rate = s.average_rate or s.guessed_rate or 0
        return VideoInfo(
            path=self.path,
            duration=duration,
            fps=float(rate),
            num_frames=int(s.frames or 0),
            width=int(s.codec_context.width or 0),
            height=int(s.codec_context.height or 0),
            codec=str(s.codec_context.name),
            has_audio=bool(self.container.streams.audio),
        )

    def _seconds(self, pts: int) -> float:
        return float((pts - self.start_pts) * self.time_base)

    def _first_pts_at(self, sec: float) -> int:
        """The smallest pts whose time (:meth:`_seconds`) is >= ``sec``: the window's bounds in
        the stream's own integer units, so that each frame costs an int comparison."""
        pts = self.start_pts + math.ceil(Fraction(sec) / self.time_base)
        while self._seconds(pts - 1) >= sec:  # float rounding of the time, either way
            pts -= 1
        while self._seconds(pts) < sec:
            pts += 1
        return pts

    def _seek(self, start_sec: float) -> None:
        if start_sec <= 0:
            self.container.seek(self.start_pts, stream=self.stream, backward=True)
            return
        # Seek by pts in the stream's time base; backward=True lands on the keyframe at or
        # before the target, so no frame of the clip is lost.
        target = self.start_pts + math.floor(start_sec / self.time_base)
        self.container.seek(max(target, self.start_pts), stream=self.stream, backward=True)

    def _to_rgb(self, frame: Any) -> np.ndarray:
        """uint8 (H, W, 3) RGB, a view of a new frame's buffer."""
        return self._rgb.reformat(frame, format="rgb24", threads=1).to_ndarray()

    # The planned path (h264/hevc in mp4/mov/mkv/webm, pts on every packet): read the packets of the
    # window first, so that the frames to return are known before any is decoded, then decode
    # only what they need. Frames no returned frame needs are sent with skip_frame="NONREF":
    # the decoder drops the non-reference ones (nothing predicts from them, so the frames it
    # does decode are bit for bit those of a full decode) and decodes the reference ones.

    def _window_packets(self, start_sec: float, end_pts: int) -> list[Any] | None:
        """Video packets in decode order from the keyframe at or before ``start_sec`` up to the
        first one whose dts reaches ``end_pts`` (pts >= dts and dts only grows, so no later
        packet holds a frame of the window). None when a packet lacks its pts (the plan cannot
        be made)."""
        self._seek(start_sec)
        packets = []
        for packet in self.container.demux(self.stream):
            if packet.size == 0:  # the demuxer's end-of-stream marker
                continue
            if packet.pts is None:
                return None
            if packet.dts is not None and packet.dts >= end_pts:  # Matroska omits a few dts
                break
            packets.append(packet)
        return packets

    def _planned_clip(
        self, start_sec: float, end_sec: float, num_frames: int | None
    ) -> tuple[torch.Tensor, torch.Tensor] | None:
        """The clip, or None when the plan does not hold (the caller then decodes everything)."""
        lo, hi = self._first_pts_at(start_sec), self._first_pts_at(end_sec)
        packets = self._window_packets(start_sec, hi)
        if not packets:
            return None
        # A seek that landed after start_sec (broken index) would lose frames.
        if start_sec > 0 and min(p.pts for p in packets) > lo:
            return None
        window = sorted(p.pts for p in packets if lo <= p.pts < hi)
        if not window or len(set(window)) != len(window):
            return None
        keep = _subsample_indices(len(window), num_frames).tolist()
        wanted = sorted({window[i] for i in keep})
        slot = {pts: j for j, pts in enumerate(wanted)}
        last = max(i for i, p in enumerate(packets) if p.pts in slot)
        # Each kept frame is copied into the clip as soon as it is converted (while it is in
        # cache), so no list of frames is held and stacked afterwards.
        out: list[np.ndarray] = []
        filled = [False] * len(wanted)
        codec = self.stream.codec_context

        def take(frames: list[Any]) -> None:
            for frame in frames:
                self.frames_decoded += 1
                j = slot.get(frame.pts)
                if j is None or filled[j]:
                    continue
                rgb = self._to_rgb(frame)
                if not out:
                    out.append(np.empty((len(wanted), *rgb.shape), dtype=np.uint8))
                out[0][j] = rgb
                filled[j] = True

        try:
            for packet in packets[: last + 1]:
                codec.skip_frame = "DEFAULT" if packet.pts in slot else "NONREF"
                take(codec.decode(packet))
            codec.skip_frame = "DEFAULT"
            if not all(filled):  # the last ones wait in the decoder's reordering queue
                take(codec.decode(None))
        except _av_errors() as exc:
            raise DecodeError(self.path, f"decoding failed ({type(exc).__name__}: {exc})") from None
        finally:
            codec.skip_frame = "DEFAULT"
        if not all(filled):  # a frame the packets promised never came out of the decoder
            return None
        frames = torch.from_numpy(out[0])
        if len(wanted) != len(keep):  # num_frames > frames in range: indices repeat
            frames = frames[torch.tensor([slot[window[i]] for i in keep])]
        times = torch.tensor([self._seconds(window[i]) for i in keep], dtype=torch.float64)
        return frames, times

    # The streaming path (any codec, and audio): decode every frame from the keyframe on.

    def _decode_range(
        self, start_sec: float, end_sec: float, streams: dict[str, Any]
    ) -> tuple[list[Any], list[float], list[Any]]:
        """Decoded (not yet converted) video frames in range, their times, and audio frames."""
        errors = _av_errors()
        lo, hi = self._first_pts_at(start_sec), self._first_pts_at(end_sec)
        for attempt in ("seek", "from_start"):
            video, times, audio = [], [], []
            try:
                if attempt == "seek":
                    self._seek(start_sec)
                else:
                    self._rewind()
                    streams = {
                        kind: (self.stream if kind == "video" else self.container.streams.audio[0])
                        for kind in streams
                    }
                first_pts = None
                video_done = False
                audio_stream = streams.get("audio")
                origin = float(self.start_pts * self.time_base)
                for packet in self.container.demux(*streams.values()):
                    for frame in packet.decode():
                        if frame.pts is None:
                            continue
                        if packet.stream.type == "audio":
                            # Same origin as the video times: the video stream's start.
                            t0 = float(frame.pts * frame.time_base) - origin
                            t1 = t0 + frame.samples / frame.sample_rate
                            if t1 > start_sec and t0 < end_sec:
                                audio.append((t0, frame))
                            continue
                        self.frames_decoded += 1
                        if first_pts is None:
                            first_pts = frame.pts
                        if frame.pts >= hi:
                            video_done = True
                            break
                        if frame.pts >= lo:
                            video.append(frame)
                            times.append(self._seconds(frame.pts))
                    if video_done and (audio_stream is None or _audio_covers(audio, end_sec)):
                        break
            except errors as exc:
                raise DecodeError(
                    self.path, f"decoding failed ({type(exc).__name__}: {exc})"
                ) from None
            # A seek that landed after start_sec (a broken index, or a container without one
            # where the decoder drops frames up to the next keyframe) would lose frames: redo
            # from the start.
            if attempt == "seek" and (first_pts is None or first_pts > max(lo, self.start_pts)):
                continue
            return video, times, audio
        return video, times, audio

    def get_clip(
        self, start_sec: float, end_sec: float, num_frames: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if num_frames is not None and num_frames <= 0:
            raise ValueError(f"num_frames must be positive, got {num_frames}")
        if self._plan:
            clip = self._planned_clip(start_sec, end_sec, num_frames)
            if clip is not None:
                return clip
        frames, times, _ = self._decode_range(start_sec, end_sec, {"video": self.stream})
        return self._convert(frames, times, start_sec, end_sec, num_frames)

    def _convert(
        self,
        frames: list[Any],
        times: list[float],
        start_sec: float,
        end_sec: float,
        num_frames: int | None,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        if not frames:
            raise DecodeError(
                self.path,
                f"no video frame with start_sec <= t < end_sec in [{start_sec:.3f}, {end_sec:.3f}) "
                f"(the video is {self.info.duration:.3f} s long; it may be truncated)",
            )
        keep = _subsample_indices(len(frames), num_frames)
        # Colour conversion only for the kept frames: the "sparse" part of sparse decoding.
        converted: dict[int, np.ndarray] = {}
        try:
            for i in keep.unique().tolist():
                converted[i] = self._to_rgb(frames[i])
        except _av_errors() as exc:
            raise DecodeError(self.path, f"frame conversion failed ({exc})") from None
        out = torch.from_numpy(np.stack([converted[i] for i in keep.tolist()]))
        return out, torch.tensor([times[i] for i in keep.tolist()], dtype=torch.float64)

    def get_av_clip(
        self,
        start_sec: float,
        end_sec: float,
        num_frames: int | None,
        audio_sample_rate: int | None,
        mono: bool,
    ) -> AVClip:
        streams: dict[str, Any] = {"video": self.stream}
        if self.container.streams.audio:
            streams["audio"] = self.container.streams.audio[0]
        frames, times, audio_frames = self._decode_range(start_sec, end_sec, streams)
        video, timestamps = self._convert(frames, times, start_sec, end_sec, num_frames)
        if "audio" not in streams:
            return AVClip(video, timestamps, None, None)
        from paperzoo.data.audio import resample_frames

        waveform, rate = resample_frames(
            self.path, audio_frames, start_sec, end_sec, audio_sample_rate, mono
        )
        return AVClip(video, timestamps, waveform, rate)

    def close(self) -> None:
        self.container.close()


def _audio_covers(audio: list[tuple[float, Any]], end_sec: float) -> bool:
    if not audio:
        return False
    t0, frame = audio[-1]
    return t0 + frame.samples / frame.sample_rate >= end_sec


# -- torchcodec ------------------------------------------------------------------------------


class _TorchCodecReader:
    """torchcodec's ``VideoDecoder`` in exact-seek mode, returning what the PyAV path returns."""

    def __init__(self, path: str) -> None:
        from torchcodec.decoders import VideoDecoder

        self.path = path
        try:
            self.decoder = VideoDecoder(path, dimension_order="NHWC", seek_mode="exact")
        except (RuntimeError, ValueError) as exc:
            raise DecodeError(path, f"torchcodec cannot open it ({exc})") from None
        meta = self.decoder.metadata
        self.begin = float(meta.begin_stream_seconds or 0.0)
        end = meta.end_stream_seconds
        duration = (
            (float(end) - self.begin) if end is not None else float(meta.duration_seconds or 0.0)
        )
        self.info = VideoInfo(
            path=path,
            duration=duration,
            fps=float(meta.average_fps or 0.0),
            num_frames=int(meta.num_frames or 0),
            width=int(meta.width or 0),
            height=int(meta.height or 0),
            codec=str(meta.codec),
            has_audio=False,
        )

    def get_clip(
        self, start_sec: float, end_sec: float, num_frames: int | None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        # torchcodec refuses a range outside the stream; the PyAV path just finds no frames.
        stream_end = self.begin + self.info.duration
        start, end = self.begin + start_sec, min(self.begin + end_sec, stream_end)
        if start >= stream_end:
            raise DecodeError(
                self.path,
                f"no video frame with start_sec <= t < end_sec in [{start_sec:.3f}, {end_sec:.3f}) "
                f"(the video is {self.info.duration:.3f} s long; it may be truncated)",
            )
        try:
            batch = self.decoder.get_frames_played_in_range(start, end)
        except (RuntimeError, IndexError, ValueError) as exc:
            raise DecodeError(self.path, f"torchcodec decoding failed ({exc})") from None
        times = batch.pts_seconds.to(torch.float64) - self.begin
        # torchcodec selects by "played in range" (frame shown during the range); keep the
        # exact start <= pts < end rule of the PyAV path.
        mask = (times >= start_sec) & (times < end_sec)
        data, times = batch.data[mask], times[mask]
        if len(times) == 0:
            raise DecodeError(
                self.path,
                f"no video frame with start_sec <= t < end_sec in [{start_sec}, {end_sec})",
            )
        keep = _subsample_indices(len(times), num_frames)
        return data[keep].contiguous(), times[keep]

    def close(self) -> None:
        self.decoder = None
