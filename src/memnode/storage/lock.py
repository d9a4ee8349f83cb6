"""One process per data directory: Chroma's files are not multi-process safe."""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from memnode.errors import DataDirError

LOCK_FILE = "LOCK"


class DataDirLock:
    """An exclusive, non-blocking ``flock`` on ``<data_dir>/LOCK``, released on close or
    when the process dies (so a ``kill -9`` never leaves a stale lock)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / LOCK_FILE
        self._fd = -1

    def acquire(self) -> None:
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise DataDirError(
                f"{self.path.parent} is in use by another process (is a node running?)"
            ) from None
        self._fd = fd

    def release(self) -> None:
        if self._fd >= 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = -1

    def __enter__(self) -> DataDirLock:
        self.acquire()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
