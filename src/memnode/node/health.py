"""Whether the node can write, told truthfully: the health service and ``status`` read it.

The durable path reports every failure here (:meth:`WriteHealth.failed`); the next
successful write, or a probe (:meth:`memnode.node.node.Node.probe_writes`, run
periodically by the server), clears it. A full disk (ENOSPC, EDQUOT, SQLite's
SQLITE_FULL, or any failed write while the data dir has less than ``min_free`` bytes
free: Chroma's own errors on a full disk do not always say so) is refused with
RESOURCE_EXHAUSTED, any other I/O failure with UNAVAILABLE; reads keep working either
way.
"""

from __future__ import annotations

import errno
import logging
import shutil
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

from memnode.errors import MemnodeError, ResourceExhausted, Unavailable
from memnode.node.metrics import NodeMetrics
from memnode.storage.durable import Durable, StoreWriteError

log = logging.getLogger("memnode.node")

_SQLITE_FULL = 13


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def is_disk_full(exc: BaseException) -> bool:
    for e in _chain(exc):
        if isinstance(e, OSError) and e.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
        if isinstance(e, sqlite3.Error) and getattr(e, "sqlite_errorcode", None) == _SQLITE_FULL:
            return True
        text = str(e).lower()
        if "disk is full" in text or "no space left" in text or "disk full" in text:
            return True
    return False


def describe(exc: BaseException) -> str:
    causes = [f"{type(e).__name__}: {e}" for e in _chain(exc) if str(e)]
    return causes[-1] if causes else type(exc).__name__


class WriteHealth:
    """Thread-safe. ``problem`` is None while writes work."""

    def __init__(self, metrics: NodeMetrics, data_dir: Path, min_free: int) -> None:
        self._metrics = metrics
        self._data_dir = data_dir
        self._min_free = min_free
        self._lock = threading.Lock()
        self._problem: str | None = None
        self._full = False
        metrics.writable.set_function(lambda: 0.0 if self.problem else 1.0)

    @property
    def problem(self) -> str | None:
        with self._lock:
            return self._problem

    def failed(self, exc: BaseException, *, committed: bool, what: str) -> MemnodeError:
        """Record a failure of the durable path; returns the error to refuse with."""
        full = is_disk_full(exc) or self._free() < self._min_free
        cause = describe(exc)
        if full:
            problem = f"disk full: the node cannot write its {what} ({cause})"
        else:
            problem = f"the node cannot write its {what} ({cause})"
        with self._lock:
            first = self._problem is None
            self._problem, self._full = problem, full
        self._metrics.write_failures.labels(kind="disk_full" if full else "io").inc()
        if first:
            log.error("%s; refusing writes until it can write again (reads still work)",
                      problem)
        return self.refusal(committed=committed) or Unavailable(problem)

    def refusal(self, *, committed: bool = False) -> MemnodeError | None:
        with self._lock:
            problem, full = self._problem, self._full
        if problem is None:
            return None
        outcome = ("this change is durable in the log and will be applied when it can"
                   if committed else "nothing of this request was stored")
        message = f"{problem}: {outcome}; reads still work, writes resume by themselves"
        return ResourceExhausted(message) if full else Unavailable(message)

    def _free(self) -> int:
        try:
            return shutil.disk_usage(self._data_dir).free
        except OSError:
            return 0

    def probe(self, durable: Durable) -> None:
        """Try writing again (caller holds the write lock): after a full disk only once
        ``min_free`` bytes are free again (a tiny probe write would fit long before the
        writes that failed do), then the pending changes and one small log write."""
        with self._lock:
            full = self._full
        if full and self._free() < self._min_free:
            return
        try:
            durable.probe()
        except StoreWriteError as exc:
            self.failed(exc, committed=exc.committed, what=exc.what)
            return
        self.ok()

    def ok(self) -> None:
        with self._lock:
            was, self._problem, self._full = self._problem, None, False
        if was is not None:
            log.warning("writes work again (was: %s)", was)
