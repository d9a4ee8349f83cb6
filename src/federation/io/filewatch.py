"""Noticing that files have changed, without a thread: ``stat`` on a cadence.

What re-reads a file while the process runs (the deny list, the metadata keys, the
TLS certificates and keys) asks a :class:`FileWatch` whether it should, as often as it
likes; the watch looks at the files (mtime, size, inode) at most every
``check_every`` seconds and answers True once per change.

With ``settle``, a change is reported only once the files have stayed the same for
that long: a file still being copied, or a key and its certificate replaced one after
the other, is read whole, not half-way. A file that disappears is a change too (the
reader then keeps what it has, or treats it as empty, as it documents).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

__all__ = ["FileWatch", "read_or_none"]

Stamp = tuple[int, int, int] | None


class FileWatch:
    """Thread-safe. The files as they are at construction count as read."""

    def __init__(self, paths: Sequence[Path], *, check_every: float = 2.0,
                 settle: float = 0.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.paths = tuple(Path(p) for p in paths)
        self.check_every = check_every
        self.settle = settle
        self._clock = clock
        self._lock = threading.Lock()
        self._read = self._stamps()
        self._seen = self._read
        self._seen_at = clock()
        self._checked = self._seen_at

    def _stamps(self) -> tuple[Stamp, ...]:
        out: list[Stamp] = []
        for path in self.paths:
            try:
                st = os.stat(path)
            except OSError:
                out.append(None)
            else:
                out.append((st.st_mtime_ns, st.st_size, st.st_ino))
        return tuple(out)

    def changed(self) -> bool:
        """True (once) when the files differ from when they were last reported, and
        have been steady for ``settle`` seconds; looks at most every ``check_every``
        seconds, and at every call while a change is settling."""
        now = self._clock()
        with self._lock:
            settling = self._seen != self._read
            if not settling and now - self._checked < self.check_every:
                return False
            self._checked = now
            stamps = self._stamps()
            if stamps != self._seen:
                self._seen, self._seen_at = stamps, now
            if self._seen == self._read or now - self._seen_at < self.settle:
                return False
            self._read = self._seen
            return True

    def read_if_changed(self, log: logging.Logger) -> bytes | None:
        """The (first) file's bytes once it changed (:meth:`changed`); None if it did
        not, or is gone, or unreadable (logged: what is in force stays)."""
        return read_or_none(self.paths[0], log) if self.changed() else None


def read_or_none(path: Path, log: logging.Logger) -> bytes | None:
    """``path``'s bytes; None if it does not exist or cannot be read (logged)."""
    try:
        return path.read_bytes()
    except FileNotFoundError:
        return None
    except OSError as exc:
        log.warning("cannot read %s: %s; keeping what is in force", path, exc)
        return None
