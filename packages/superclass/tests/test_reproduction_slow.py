"""The full tiny study (slow: 2 arms x 3 seeds, the time of `paperzoo reproduce superclass`).

Runs the study as the README's command does and checks what must hold whatever the verdict:
the claim is decided with its fields for 3 seeds, and both arms learn (their probe beats the
random-init floor of their seed). Whether SuperClass beats CLIP is reported in the README as
measured; this test does not require it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

pytestmark = pytest.mark.slow

MIN_MARGIN = 3.0  # linear top-1 points over the random-init floor, every seed and arm


def test_tiny_study_three_seeds(tmp_path):
    out = tmp_path / "study"
    cmd = [sys.executable, "-m", "paperzoo.core.cli", "reproduce", "superclass", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=3600, env=dict(os.environ))
    assert proc.returncode == 0, proc.stderr[-5000:]
    print(proc.stdout)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["seeds"] == [0, 1, 2] and len(summary["claims"]) == 1
    claim = summary["claims"][0]
    assert isinstance(claim["holds"], bool) and len(claim["per_seed"]) == 3
    for arm in ("superclass", "clip"):
        m = summary["arms"][arm]["metrics"]
        floor = m["random_init_linear_top1"]["per_seed"]
        for seed, value in m["linear_top1"]["per_seed"].items():
            assert value >= floor[seed] + MIN_MARGIN, (arm, seed, value, floor[seed])
