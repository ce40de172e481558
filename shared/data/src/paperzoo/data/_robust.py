"""Skip-and-count bookkeeping for corrupt media, shared by image and video datasets.

A bad file (undecodable, truncated, zero bytes, wrong codec) must never kill an epoch
silently, and must never go unreported. Datasets call :meth:`SkipCounter.record` when they
skip a file; the count lives in shared memory so DataLoader workers (forked or spawned)
add to the same number the main process reads. Past ``max_bad_fraction`` of the dataset in
one epoch, :class:`TooManyBadFilesError` names the first bad files and the fix.

A DataLoader worker that dies outright (a segfault inside a decoder, an OOM kill) takes its
Python exception with it. :class:`CurrentFileMarker` leaves the path being read in a small
per-process file, so :func:`raise_with_current_file` can name the file the dead worker was on.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing as mp
import os
import re
import shutil
import tempfile
import weakref
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = [
    "CurrentFileMarker",
    "SkipCounter",
    "TooManyBadFilesError",
    "WorkerCrashError",
    "iter_reporting_crashes",
]

log = logging.getLogger("paperzoo.data")

_MAX_REMEMBERED = 5


class TooManyBadFilesError(RuntimeError):
    """More files of one epoch were undecodable than the dataset's ``max_bad_fraction`` allows."""


class WorkerCrashError(RuntimeError):
    """A DataLoader worker died; the message names the file it was reading."""


class SkipCounter:
    """Counts skipped files per epoch, across DataLoader workers.

    ``limit`` is the number of bad files one epoch may hold before an error: ``floor(
    max_bad_fraction * dataset_size)``. ``max_bad_fraction=0`` makes the first bad file an
    error.
    """

    def __init__(self, what: str, dataset_size: int, max_bad_fraction: float) -> None:
        if not 0.0 <= max_bad_fraction <= 1.0:
            raise ValueError(f"max_bad_fraction must be in [0, 1], got {max_bad_fraction}")
        self.what = what
        self.dataset_size = dataset_size
        self.max_bad_fraction = max_bad_fraction
        self.limit = int(max_bad_fraction * dataset_size)
        # Shared memory: survives fork and is inherited by spawned DataLoader workers.
        self._count = mp.Value("i", 0)
        self._recent: list[str] = []

    @property
    def count(self) -> int:
        """Files skipped since the last :meth:`reset` (summed over all workers)."""
        return int(self._count.value)

    def reset(self) -> int:
        """Start a new epoch; returns the previous epoch's count (and logs it when non-zero)."""
        with self._count.get_lock():
            previous = int(self._count.value)
            self._count.value = 0
        if previous:
            log.warning("%s: skipped %d bad file(s) last epoch", self.what, previous)
        self._recent.clear()
        return previous

    def record(self, path: str | os.PathLike[str], reason: str) -> None:
        """Count one skipped file; raise :class:`TooManyBadFilesError` past the limit."""
        with self._count.get_lock():
            self._count.value += 1
            count = int(self._count.value)
        if len(self._recent) < _MAX_REMEMBERED:
            self._recent.append(f"{path} ({reason})")
        log.warning("%s: skipping %s: %s [%d bad this epoch]", self.what, path, reason, count)
        if count > self.limit:
            raise TooManyBadFilesError(
                f"{self.what}: {count} of {self.dataset_size} files could not be decoded this "
                f"epoch, more than max_bad_fraction={self.max_bad_fraction} allows "
                f"({self.limit}). Bad files include: {'; '.join(self._recent)}. Fix or remove "
                "them, or raise max_bad_fraction."
            )


class CurrentFileMarker:
    """Remembers, per process, which file is being read, in a tiny file named by the pid.

    Writing a few bytes per sample costs microseconds next to decoding; it is what lets a
    worker that dies by a signal still be named by the main process.
    """

    def __init__(self) -> None:
        self.directory = tempfile.mkdtemp(prefix="paperzoo-data-")
        # Removed when the dataset goes away, by the process that made it (not by a worker).
        weakref.finalize(self, _remove_dir_if_owner, self.directory, os.getpid())

    def mark(self, path: str | os.PathLike[str]) -> None:
        marker = Path(self.directory) / str(os.getpid())
        # A full /tmp must not break loading; we would only lose the crash report.
        with contextlib.suppress(OSError):
            marker.write_text(os.fspath(path))

    def lookup(self, pid: int) -> str | None:
        try:
            return (Path(self.directory) / str(pid)).read_text()
        except OSError:
            return None


# "DataLoader worker (pid 123) is killed by signal" / "DataLoader worker (pid(s) 123, 456) exited"
def _remove_dir_if_owner(directory: str, owner_pid: int) -> None:
    if os.getpid() == owner_pid:
        shutil.rmtree(directory, ignore_errors=True)


_PID_RE = re.compile(r"pid(?:\(s\))?\s+([\d,\s]+)")


def iter_reporting_crashes(loader: Any, dataset: Any) -> Iterator[Any]:
    """Iterate a DataLoader; a dead worker becomes a :class:`WorkerCrashError` naming its file.

    ``dataset`` must carry a ``file_marker`` (:class:`CurrentFileMarker`), as the paperzoo
    video and image datasets do.
    """
    marker: CurrentFileMarker | None = getattr(dataset, "file_marker", None)
    try:
        yield from loader
    except RuntimeError as exc:
        message = str(exc)
        if marker is None or "DataLoader worker" not in message:
            raise
        pids = [int(p) for group in _PID_RE.findall(message) for p in re.findall(r"\d+", group)]
        files = [f for f in (marker.lookup(p) for p in pids) if f]
        if not files:
            raise
        raise WorkerCrashError(
            f"a DataLoader worker died while reading {', '.join(files)} ({message.strip()}). "
            "Check that file (decode it alone with paperzoo.data.video.read_clip) or remove it."
        ) from exc
