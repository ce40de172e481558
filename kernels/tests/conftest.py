"""Test setup for paperzoo-kernels.

Without a GPU the Triton kernels run in Triton's CPU interpreter. ``triton.jit`` picks the
interpreter when a kernel module is *imported*, so TRITON_INTERPRET is set here, before any test
module imports paperzoo.kernels.triton_flash. With a GPU it is left alone and the same tests
run the compiled kernels on CUDA.
"""

from __future__ import annotations

import os
import sys

import pytest
import torch

if not torch.cuda.is_available() and "TRITON_INTERPRET" not in os.environ:
    if "paperzoo.kernels.triton_flash" in sys.modules:  # pragma: no cover - import-order bug
        raise RuntimeError("set TRITON_INTERPRET before paperzoo.kernels.triton_flash is imported")
    os.environ["TRITON_INTERPRET"] = "1"

DEVICE = torch.device("cuda" if torch.cuda.is_available() else "cpu")


@pytest.fixture
def device() -> torch.device:
    """Where kernel tests run: CUDA when present (compiled Triton), else CPU (interpreter)."""
    return DEVICE


@pytest.fixture
def restore_registry():
    """Give the test the live registry and rediscover plugins afterwards, dropping whatever the
    test registered by hand."""
    from paperzoo.core import get_registry, reload_plugins

    yield get_registry()
    reload_plugins()


def pytest_collection_modifyitems(config, items):
    skip_gpu = pytest.mark.skip(reason="needs CUDA")
    for item in items:
        if "gpu" in item.keywords and not torch.cuda.is_available():
            item.add_marker(skip_gpu)
