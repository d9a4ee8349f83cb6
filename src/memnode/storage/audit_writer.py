"""The audit trail's writer: an append-only, hash-chained log in segment files
(format: :mod:`memnode.storage.audit_format`).

The request path only appends a small dict to a list (:meth:`AuditWriter.record`) and
wakes a background thread, which gathers for ``flush_seconds`` (50 ms), numbers and
chains the entries gathered, writes them with one ``write`` (the OS has them: a process
crash loses nothing written), and ``fsync``s the segment every ``fsync_seconds`` (power
loss loses at most that much). No request ever waits for a write or an fsync.

Segments roll at ``segment_bytes`` or when their first entry is a day old. Retention,
checked at each roll and at start, drops whole segments from the oldest while the trail
is larger than ``max_bytes`` or a segment ended more than ``max_days`` ago: first an
``audit.retention`` entry is written and synced (it carries the anchor hash), then
``ANCHOR``, then the files are deleted; a cut interrupted by a crash is finished at the
next start.

When the file cannot be written (a full disk), the entries stay in memory (up to
``max_pending``) and are retried every flush; beyond that they are counted as dropped
and, once writing works again, an ``audit.gap`` entry records how many. The hooks report
each failure, recovery and drop to the node (metrics, health).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from memnode.storage import audit_format as fmt
from memnode.storage.audit_format import Entry

log = logging.getLogger("memnode.audit")

DAY_MS = 86_400_000


@dataclass(frozen=True)
class AuditPolicy:
    max_bytes: int = 256 << 20
    max_days: float = 90.0  # 0: no age limit
    fsync_seconds: float = 1.0
    flush_seconds: float = 0.05
    max_pending: int = 100_000

    @property
    def segment_bytes(self) -> int:
        return max(1024, min(self.max_bytes // 8, 16 << 20))


@dataclass
class AuditHooks:
    written: Callable[[int], None] = lambda n: None
    failed: Callable[[BaseException], None] = lambda exc: None
    recovered: Callable[[], None] = lambda: None
    dropped: Callable[[int], None] = lambda n: None


def _parsed(raw: bytes) -> Entry:
    try:
        entry = json.loads(raw)
    except ValueError:
        return {}
    return entry if isinstance(entry, dict) else {}


@dataclass
class _Segment:
    path: Path
    first_n: int
    first_ts: int
    size: int


class AuditWriter:
    def __init__(self, directory: Path, clock_ms: Callable[[], int],
                 policy: AuditPolicy | None = None, hooks: AuditHooks | None = None) -> None:
        self.dir = directory
        self.policy = policy or AuditPolicy()
        self.hooks = hooks or AuditHooks()
        self._clock_ms = clock_ms
        self._mutex = threading.Lock()
        self._pending: list[Entry] = []
        self._dropped = 0
        self._problem: str | None = None
        self._fd = -1
        self._unsynced = False
        self._last_sync = time.monotonic()
        self._stop = threading.Event()
        self._wake = threading.Event()  # set by record(): something to write
        self._segments: list[_Segment] = []
        self._n, self._head = 0, fmt.GENESIS
        self._recovered = False
        self._thread = threading.Thread(target=self._run, name="memnode-audit", daemon=True)

    def start(self) -> None:
        """Start the writer thread (entries recorded before wait for it)."""
        self._thread.start()

    # -- the request path -----------------------------------------------------------

    def record(self, entry: Entry) -> None:
        with self._mutex:
            if len(self._pending) < self.policy.max_pending:
                self._pending.append(entry)
                self._wake.set()
                return
            self._dropped += 1
        self.hooks.dropped(1)

    @property
    def problem(self) -> str | None:
        with self._mutex:
            return self._problem

    def close(self) -> None:
        """Stop the thread, write what is pending, fsync. Never started: nothing."""
        if not self._thread.is_alive():
            return
        self._stop.set()
        self._wake.set()
        self._thread.join(10)
        self._flush()
        if self._fd >= 0:
            with contextlib.suppress(OSError):
                os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1

    # -- start ----------------------------------------------------------------------

    def _recover(self) -> None:
        """The chain's head from the newest segment (a line cut by a crash is removed),
        and a retention cut left unfinished is finished. Run by the writer thread before
        its first write, and again after a failure (e.g. an unreadable directory)."""
        self._segments, self._n, self._head = [], 0, fmt.GENESIS
        self.dir.mkdir(parents=True, exist_ok=True)
        try:
            anchor = fmt.read_anchor(self.dir)
        except ValueError as exc:  # verification reports it; the trail goes on
            log.error("%s", exc)
            anchor = None
        if anchor is not None:
            self._n, self._head = anchor["n"] - 1, anchor["prev"]
        paths = fmt.segment_paths(self.dir)
        if anchor is not None:
            for path in [p for p in paths if (fmt.first_n_of(p) or 0) < anchor["n"]]:
                path.unlink(missing_ok=True)
                paths.remove(path)
        while paths and paths[-1].stat().st_size == 0:
            paths.pop().unlink()
        for path in paths[:-1]:
            with path.open("rb") as f:
                first = _parsed(f.readline())
            self._segments.append(_Segment(path, fmt.first_n_of(path) or 0,
                                           int(first.get("ts", 0)), path.stat().st_size))
        if paths:
            self._resume(paths[-1])
        self._recovered = True

    def _resume(self, path: Path) -> None:
        """Continue after the last intact line of the newest segment."""
        data = path.read_bytes()
        good = data[: data.rfind(b"\n") + 1]
        if len(good) != len(data):
            log.warning("%s: removing an incomplete last line (%d bytes)", path,
                        len(data) - len(good))
            os.truncate(path, len(good))
        lines = good.splitlines()
        first = _parsed(lines[0]) if lines else {}
        self._segments.append(_Segment(path, fmt.first_n_of(path) or 0,
                                       int(first.get("ts", 0)), len(good)))
        for raw in reversed(lines):
            last = _parsed(raw)
            if isinstance(last.get("n"), int) and isinstance(last.get("hash"), str):
                self._n, self._head = last["n"], last["hash"]
                break
            log.error("%s: a damaged line at its end (`memnode audit --verify` shows "
                      "where); the trail goes on after the last intact one", path)

    # -- the writer thread ----------------------------------------------------------

    def _run(self) -> None:
        """Asleep while there is nothing to write (or to sync: then until the sync is
        due); once woken, gathers for ``flush_seconds`` and flushes. Entries kept after a
        failure are tried again a flush later."""
        while True:
            with self._mutex:
                retry = bool(self._pending)
            sync_due = self.policy.fsync_seconds if self._unsynced else None
            self._wake.wait(0 if retry else sync_due)
            if self._stop.wait(self.policy.flush_seconds):
                return
            self._wake.clear()
            try:
                self._flush()
            except Exception:  # the thread must outlive any one failure
                log.exception("audit flush failed")

    def _flush(self) -> None:
        with self._mutex:
            batch, self._pending = self._pending, []
            dropped, self._dropped = self._dropped, 0
        if dropped:
            batch.insert(0, {"ts": self._clock_ms(), "method": "audit.gap", "count": dropped,
                             "note": "entries lost while the trail could not be written"})
        done = 0
        try:
            if batch and not self._recovered:
                self._recover()
            while done < len(batch):
                done += self._append(batch[done:])
        except Exception as exc:  # OSError mostly; whatever it is, keep the entries
            self._failed(batch[done:], exc)
            return
        if batch:
            self._ok()
        if self._unsynced and time.monotonic() - self._last_sync >= self.policy.fsync_seconds:
            self._sync()

    def _append(self, batch: list[Entry]) -> int:
        """Chain and write the first entries of ``batch`` that fit in the current
        segment (at least one; a new segment first if it is full or a day old); how
        many. Written whole or not at all."""
        current = self._segments[-1] if self._segments else None
        ts = int(batch[0].get("ts", 0))
        if (current is None or self._fd < 0 or current.size >= self.policy.segment_bytes
                or ts - current.first_ts >= DAY_MS):
            self._open_segment(ts)
        segment = self._segments[-1]
        room = self.policy.segment_bytes - segment.size
        n, head, size = self._n, self._head, 0
        lines: list[bytes] = []
        for entry in batch:
            if lines and size >= room:
                break
            n += 1
            sealed = fmt.seal(entry, n, head)
            head = sealed["hash"]
            lines.append(fmt.canonical(sealed) + b"\n")
            size += len(lines[-1])
        data = b"".join(lines)
        try:
            view = memoryview(data)
            while view:
                view = view[os.write(self._fd, view):]
        except OSError:
            with contextlib.suppress(OSError):  # no half-written line stays in the chain
                os.ftruncate(self._fd, segment.size)
            raise
        segment.size += len(data)
        self._n, self._head = n, head
        self._unsynced = True
        self.hooks.written(len(lines))
        return len(lines)

    def _open_segment(self, ts: int) -> None:
        """The segment to append to: the newest one at start while it has room and is
        young, else a new one; then retention."""
        if self._fd >= 0:
            os.fsync(self._fd)
            os.close(self._fd)
            self._fd = -1
        current = self._segments[-1] if self._segments else None
        if (current is not None and current.size < self.policy.segment_bytes
                and ts - current.first_ts < DAY_MS):
            self._fd = os.open(current.path, os.O_WRONLY | os.O_APPEND)
        else:
            path = self.dir / fmt.segment_name(self._n + 1)
            self._fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
            self._segments.append(_Segment(path, self._n + 1, ts, os.fstat(self._fd).st_size))
        self._retain(ts)

    def _retain(self, now_ms: int) -> None:
        """Drop whole segments from the oldest (never the one being written)."""
        total = sum(s.size for s in self._segments)
        cut = 0
        for index, segment in enumerate(self._segments[:-1]):
            ended = self._segments[index + 1].first_ts
            too_old = self.policy.max_days > 0 and \
                now_ms - ended > self.policy.max_days * DAY_MS
            if not (too_old or total > self.policy.max_bytes):
                break
            total -= segment.size
            cut = index + 1
        if not cut:
            return
        dropped, kept = self._segments[:cut], self._segments[cut]
        with kept.path.open("rb") as f:
            first_kept = json.loads(f.readline())
        anchor = {"n": kept.first_n, "prev": first_kept["prev"], "ts": now_ms}
        self._append([{"ts": now_ms, "method": fmt.RETENTION, "count": len(dropped),
                       "anchor": anchor["prev"], "first_n": kept.first_n,
                       "segments": [s.path.name for s in dropped]}])
        self._sync()
        fmt.write_anchor(self.dir, anchor)
        for segment in dropped:
            segment.path.unlink(missing_ok=True)
        del self._segments[:cut]
        log.info("audit retention: dropped %d segments; the trail starts at entry %d",
                 len(dropped), kept.first_n)

    def _sync(self) -> None:
        if self._fd >= 0:
            os.fsync(self._fd)
        self._unsynced = False
        self._last_sync = time.monotonic()

    # -- failures -------------------------------------------------------------------

    def _failed(self, batch: list[Entry], exc: Exception) -> None:
        with self._mutex:
            room = max(0, self.policy.max_pending - len(self._pending))
            kept = batch[:room]
            self._dropped += len(batch) - len(kept)
            self._pending = kept + self._pending
            first = self._problem is None
            self._problem = f"the node cannot write its audit trail in {self.dir} ({exc})"
        if len(batch) > len(kept):
            self.hooks.dropped(len(batch) - len(kept))
        if first:
            log.error("%s; requests are still served, entries wait in memory (up to %d)",
                      self._problem, self.policy.max_pending)
        self.hooks.failed(exc)

    def _ok(self) -> None:
        with self._mutex:
            was, self._problem = self._problem, None
        if was is not None:
            log.warning("the audit trail is written again (was: %s)", was)
            self.hooks.recovered()
