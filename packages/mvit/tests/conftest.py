"""Shared fixtures (markers ``slow`` and ``gpu`` are declared in the package's pyproject)."""

from __future__ import annotations

import pytest


@pytest.fixture
def small_torchvision_mvit(monkeypatch: pytest.MonkeyPatch):
    """torchvision's ``mvit_v1_b`` / ``mvit_v2_s`` hard-code 16x224^2; build them for a smaller
    clip instead, through torchvision's own ``_mvit`` (same blocks, smaller position tables)."""
    import torchvision.models.video.mvit as tv_mvit

    original = tv_mvit._mvit

    def build(spatial: int, frames: int):
        def shrunk(**kwargs):
            kwargs["spatial_size"] = (spatial, spatial)
            kwargs["temporal_size"] = frames
            return original(**kwargs)

        monkeypatch.setattr(tv_mvit, "_mvit", shrunk)
        return tv_mvit

    return build
