"""One small set of generated mp4 clips with sound, listed in AudioSet's format, shared by the
data and pipeline tests (2 train, 1 val, 1 test clip per class, 20 classes)."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture(scope="session")
def av_digits_root(tmp_path_factory) -> tuple[Path, dict]:
    from paperzoo.mavil.data import write_av_digits

    root = tmp_path_factory.mktemp("av_digits")
    meta = write_av_digits(root, clips_per_class=4, num_frames=4, fps=4)
    return root, meta
