"""The xformers probe says "usable" only when xformers' own kernels load and run.

xformers is an optional extra, absent from the test environment. The parsing is tested on what
the real package reports: the warning xformers 0.0.35 (the version uv.lock resolves) logs at
import under torch 2.15, and the ``cpp_lib.json`` its wheel ships, both verbatim. Where xformers
is importable, the probe runs against it end to end.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import pytest
import torch

from paperzoo.kernels.backends import (
    describe_xformers_mismatch,
    parse_xformers_warning,
    probe_xformers,
    read_xformers_build_record,
)

# Logged by `import xformers` (0.0.35 wheel) with torch 2.15.0+cu132 and Python 3.11.7.
REAL_WARNING = """WARNING[XFORMERS]: xFormers can't load C++/CUDA extensions. xFormers was built for:
    PyTorch 2.10.0+cu128 with CUDA 1208 (you have 2.15.0+cu132)
    Python  3.10.19 (you have 3.11.7)
  Please reinstall xformers (see https://github.com/facebookresearch/xformers#installing-xformers)
  Memory-efficient attention, SwiGLU, sparse and more won't be available.
  Set XFORMERS_MORE_DETAILS=1 for more details"""

# xformers/cpp_lib.json inside xformers-0.0.35-py39-none-manylinux_2_28_x86_64.whl.
REAL_CPP_LIB_JSON = (
    '{"version": {"cuda": 1208, "hip": null, "torch": "2.10.0+cu128", "python": "3.10.19"}, '
    '"env": {"TORCH_CUDA_ARCH_LIST": "7.5 8.0+PTX 8.0 9.0a", "PYTORCH_ROCM_ARCH": null, '
    '"XFORMERS_BUILD_TYPE": "Release", "XFORMERS_ENABLE_DEBUG_ASSERTIONS": null, '
    '"NVCC_FLAGS": "-allow-unsupported-compiler", "XFORMERS_PACKAGE_FROM": "wheel-v0.0.35"}}'
)


def test_the_real_warning_gives_both_torch_versions():
    assert parse_xformers_warning(REAL_WARNING) == ("2.10.0+cu128", "1208", "2.15.0+cu132")
    assert parse_xformers_warning("xFormers can't load C++/CUDA extensions.") is None


def test_the_build_record_is_read_from_the_wheels_cpp_lib_json(tmp_path):
    path = tmp_path / "cpp_lib.json"
    path.write_text(REAL_CPP_LIB_JSON)
    record = read_xformers_build_record(path)
    assert record["torch"] == "2.10.0+cu128" and record["cuda"] == 1208
    assert read_xformers_build_record(tmp_path / "missing.json") == {}
    path.write_text("{not json")
    assert read_xformers_build_record(path) == {}


def test_the_mismatch_is_said_plainly_with_the_fix():
    built, cuda, installed = parse_xformers_warning(REAL_WARNING)
    text = describe_xformers_mismatch(built, cuda, installed)
    assert "built for torch 2.10.0+cu128, CUDA 12.8" in text
    assert "torch 2.15.0+cu132 is installed" in text and "do not load" in text
    assert "install torch==2.10.0" in text and "built for torch 2.15.0" in text
    # the record and the warning agree
    record = json.loads(REAL_CPP_LIB_JSON)["version"]
    assert describe_xformers_mismatch(record["torch"], record["cuda"], installed) == text


@pytest.mark.skipif(importlib.util.find_spec("xformers") is None, reason="xformers not installed")
def test_the_probe_on_the_installed_xformers():
    import xformers

    ok, reason = probe_xformers()
    built = read_xformers_build_record(Path(xformers.__file__).parent / "cpp_lib.json")
    if not xformers._has_cpp_library:
        assert not ok, reason
        if built.get("torch") and built["torch"].split("+")[0] != torch.__version__.split("+")[0]:
            assert f"built for torch {built['torch']}" in reason
            assert f"torch {torch.__version__} is installed" in reason
    elif not torch.cuda.is_available():
        assert not ok and "no CUDA device" in reason
    else:
        assert ok, reason
        assert built.get("torch", "?") in reason
