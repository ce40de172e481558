"""paperzoo.data: image/video/audio decoding, clip samplers, transforms and datasets.

Submodules (import them directly; this package itself imports nothing heavy, because the
plugin module ``paperzoo.data.plugin`` is imported by every ``paperzoo list``):

- :mod:`paperzoo.data.images`: bundled MNIST/digits samples, image folder/CSV datasets,
  MoCo augmentations.
- :mod:`paperzoo.data.video`: ``read_clip`` (PyAV, optional torchcodec), ``DecodeError``.
- :mod:`paperzoo.data.samplers`: random / uniform / constant-clips-per-video clip samplers,
  multi-view test sampling.
- :mod:`paperzoo.data.transforms`: video transforms on (C, T, H, W) or (T, C, H, W).
- :mod:`paperzoo.data.audio`: audio decoding + resampling, Kaldi-compatible fbank,
  SpecAugment.
- :mod:`paperzoo.data.datasets`: Kinetics CSV, SSv2, UCF-101/HMDB-51, Charades, AVA,
  video-text and image-text datasets.
- :mod:`paperzoo.data.synthetic`: ``write_moving_digits`` (labelled mp4 videos).
- :mod:`paperzoo.data.webdataset`: image-text pairs in webdataset tar shards (map-style and
  streaming; the ``webdataset`` extra).

The names below are also reachable as ``paperzoo.data.<name>``, imported on first use.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_LAZY = {
    "DecodeError": "paperzoo.data.video",
    "read_clip": "paperzoo.data.video",
    "read_audio": "paperzoo.data.audio",
    "kaldi_fbank": "paperzoo.data.audio",
    "write_moving_digits": "paperzoo.data.synthetic",
    "LabeledVideoDataset": "paperzoo.data.datasets",
    "TooManyBadFilesError": "paperzoo.data._robust",
    "WorkerCrashError": "paperzoo.data._robust",
    "iter_reporting_crashes": "paperzoo.data._robust",
    "WebDatasetImageText": "paperzoo.data.webdataset",
    "image_text_webdataset": "paperzoo.data.webdataset",
}

__all__ = sorted([*_LAZY, "__version__"])


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'paperzoo.data' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
