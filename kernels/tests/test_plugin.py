"""The plugin: registration through entry points, and no torch at discovery time."""

from __future__ import annotations

import json
import subprocess
import sys

from paperzoo.core import get_backend, list_backends


def test_backends_are_registered_in_priority_order():
    assert {"xformers", "triton", "sdpa"} <= set(list_backends())
    order = sorted(["xformers", "triton", "sdpa"], key=lambda n: get_backend(n).priority)
    assert order == ["xformers", "triton", "sdpa"]
    assert get_backend("xformers").probe == "paperzoo.kernels.backends:probe_xformers"


def test_listing_and_importing_the_package_never_import_torch():
    code = (
        "import sys, json\n"
        "import paperzoo.kernels, paperzoo.kernels.plugin\n"
        "from paperzoo.core import list_backends, get_backend\n"
        "names = list_backends()\n"
        "print(json.dumps({'names': names, 'torch': 'torch' in sys.modules,"
        " 'triton': 'triton' in sys.modules}))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert {"xformers", "triton", "sdpa"} <= set(result["names"])
    assert result["torch"] is False and result["triton"] is False


def test_doctor_reports_each_backend_with_its_reason():
    from paperzoo.core.doctor import report

    text = report()
    lines = [line.strip() for line in text.splitlines()]
    assert any(line.startswith("sdpa (priority 1000, paperzoo-kernels): usable") for line in lines)
    xformers_line = next(line for line in lines if line.startswith("xformers (priority 10"))
    assert "usable" in xformers_line or "unavailable: xformers" in xformers_line
