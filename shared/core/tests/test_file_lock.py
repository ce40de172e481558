"""file_lock serialises the work of processes that run side by side."""

from __future__ import annotations

import multiprocessing
import time
from pathlib import Path

from paperzoo.core.io import file_lock


def _critical(lock: str, log: str, tag: str) -> None:
    with file_lock(lock):
        with open(log, "a") as fh:
            fh.write(f"start {tag}\n")
            fh.flush()
        time.sleep(0.3)  # long enough that an unlocked peer would interleave
        with open(log, "a") as fh:
            fh.write(f"end {tag}\n")


def test_file_lock_excludes_other_processes(tmp_path: Path):
    lock, log = tmp_path / "sub" / "data.lock", tmp_path / "log.txt"
    ctx = multiprocessing.get_context("spawn")
    procs = [ctx.Process(target=_critical, args=(str(lock), str(log), str(i))) for i in range(3)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(60)
        assert p.exitcode == 0
    lines = log.read_text().splitlines()
    assert len(lines) == 6
    for i in range(0, 6, 2):  # every start is followed by its own end
        assert lines[i].split()[0] == "start" and lines[i + 1] == "end " + lines[i].split()[1]


def test_file_lock_is_reentrant_across_uses(tmp_path: Path):
    lock = tmp_path / "a.lock"
    with file_lock(lock):
        pass
    with file_lock(lock):  # released: taking it again does not block
        pass
    assert lock.is_file()
