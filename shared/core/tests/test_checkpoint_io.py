from __future__ import annotations

import json

import pytest

from paperzoo.core.checkpoint import unwrap_state_dict
from paperzoo.core.io import atomic_path, atomic_write_json


def test_atomic_write_replaces_and_failure_keeps_previous(tmp_path):
    target = tmp_path / "summary.json"
    atomic_write_json(target, {"a": 1})
    with pytest.raises(RuntimeError), atomic_path(target) as tmp:
        tmp.write_text("{half")
        raise RuntimeError("killed mid-write")
    assert json.loads(target.read_text()) == {"a": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["summary.json"]  # no stray temporaries


def test_unwrap_containers_and_ddp_prefix():
    inner = {"module.conv.weight": 1, "module.fc.bias": 2}
    assert unwrap_state_dict({"state_dict": inner, "epoch": 3}) == {"conv.weight": 1, "fc.bias": 2}
    assert unwrap_state_dict({"model_state": {"a": 1}}) == {"a": 1}


def test_atomic_write_respects_umask(tmp_path):
    import os

    old = os.umask(0o022)
    try:
        atomic_write_json(tmp_path / "x.json", {})
    finally:
        os.umask(old)
    assert (tmp_path / "x.json").stat().st_mode & 0o777 == 0o644
