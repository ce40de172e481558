"""The plugin registers the eval metrics and listing them never imports torch."""

from __future__ import annotations

import subprocess
import sys

from conftest import subprocess_env

CODE = """
import sys
from paperzoo.core import list_metrics, get_metric
names = list_metrics()
assert "knn" in names and "linear_probe" in names, names
assert get_metric("knn").factory == "paperzoo.train.eval:knn_metric"
assert "torch" not in sys.modules, "listing metrics imported torch"
from paperzoo.core import create_metric
import torch
feats = torch.cat([-torch.ones(10, 2), torch.ones(10, 2)]) * 5 + torch.rand(20, 2)
labels = torch.tensor([0] * 10 + [1] * 10)
for name in ("knn", "linear_probe"):
    result = create_metric(name)(feats, labels, feats, labels)
    assert result["top1"] == 100.0, (name, result)
assert create_metric("knn", k=1)(feats, labels, feats, labels)["top1"] == 100.0
assert create_metric("retrieval")(torch.eye(4) + 0.1)["t2v_R@1"] == 100.0
assert create_metric("mAP")(torch.eye(3), torch.eye(3).long())["mAP"] == 100.0
print("ok")
"""


def test_plugin_is_light_and_registered():
    proc = subprocess.run(
        [sys.executable, "-c", CODE],
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0 and proc.stdout.strip() == "ok", proc.stdout + proc.stderr
