"""The indexer: a background thread that moves the index tail into Chroma in bulk.

It waits for ``batch_max`` changes or for the oldest to be ``batch_window`` seconds old
(less a random part of it: ``_JITTER``),
takes the oldest changes in journal order (:meth:`IndexTail.next_batch`), upserts and
deletes them in Chroma (a few large calls instead of one per write: Chroma's per-call
overhead dominates on few cores), then drops their journal rows, then their tail
entries. A crash anywhere leaves the journal rows, rebuilt into the tail at start.
A failed Chroma call is logged and retried with a backoff; meanwhile the tail fills and
writers feel the backpressure.

No batch starts without room on the disk (:func:`require_room`): a Chroma write that
runs out of space midway can hang (chromadb 1.5: its SQLite connection waits on a lock
its failed transaction kept, for the busy timeout of 1,000 s, holding the GIL, so the
whole process stops answering). A batch that finds too little free space fails as a
full disk (ENOSPC) without calling Chroma, and is retried like any other failure.
A disk filled by someone else during a batch is not covered: the liveness probe
catches a process stopped that way.
"""

from __future__ import annotations

import errno
import logging
import os
import random
import shutil
import threading
import time
from collections.abc import Callable
from pathlib import Path

from federation.io.cpu import StageCpu
from memnode.node.domain import LocalRecord, ReplicaRecord
from memnode.storage.chroma import ChromaStore
from memnode.storage.eventlog import EventLog
from memnode.storage.tail import Batch, IndexTail

log = logging.getLogger("memnode.storage")

_BACKOFF = (0.05, 5.0)

#: Each batch waits between (1 - _JITTER) and all of the window: nodes that receive the
#: same writes at the same moment would otherwise all index at once, and on a 16-node
#: mesh on 2 cores those simultaneous bursts made the latency's p99.
_JITTER = 0.5

#: Free bytes a batch needs per change, over the node's ``min_free_bytes``: a vector,
#: its metadata, Chroma's SQLite journal and HNSW growth, generously.
ROOM_PER_CHANGE = 16 * 1024


def require_room(path: Path, need: int) -> None:
    """Raise ENOSPC unless ``path``'s filesystem has ``need`` bytes free."""
    try:
        free = shutil.disk_usage(path).free
    except OSError:
        return  # cannot tell: let the write itself say
    if free < need:
        raise OSError(errno.ENOSPC, f"{os.strerror(errno.ENOSPC)}: {free} bytes free, "
                      f"a batch into Chroma needs {need}", str(path))


def apply_batch(store: ChromaStore, batch: Batch) -> None:
    """Bring Chroma in line with ``batch`` (one change per memory: order is free)."""
    local = [e.record for _, e in batch.local if isinstance(e.record, LocalRecord)]
    if local:
        store.upsert_local(local)
    gone = [m for m, e in batch.local if e.record is None]
    if gone:
        store.delete_local(gone)
    replicas = [e.record for _, e in batch.replicas if isinstance(e.record, ReplicaRecord)]
    if replicas:
        changed = {m for m, e in batch.replicas if e.record is not None and e.in_chroma}
        store.upsert_replicas(replicas, changed)
    gone = [m for m, e in batch.replicas if e.record is None]
    if gone:
        store.delete_replicas(gone)


class Indexer:
    def __init__(self, tail: IndexTail, store: ChromaStore, log_: EventLog, *,
                 batch_max: int, batch_window: float,
                 on_batch: Callable[[int, float], None] | None = None,
                 on_error: Callable[[Exception], None] | None = None,
                 on_recovered: Callable[[], None] | None = None,
                 room: tuple[Path, int] | None = None, cpu: StageCpu | None = None) -> None:
        self.tail = tail
        self._cpu = cpu or StageCpu()
        self._room = room  # (data dir, bytes to keep free), checked before each batch
        self.store = store
        self.log = log_
        self.batch_max = batch_max
        self.batch_window = batch_window
        self._on_batch = on_batch
        self._on_error = on_error
        self._on_recovered = on_recovered
        self.failing = False
        self._stop = threading.Event()
        self._resume = threading.Event()
        self._resume.set()
        self._busy = threading.Lock()
        self._thread: threading.Thread | None = None
        self.batches = 0
        self._rng = random.Random()

    def start(self) -> None:
        self._thread = threading.Thread(target=self._run, name="memnode-indexer", daemon=True)
        self._thread.start()

    def pause(self) -> None:
        """Tests: hold the tail (writes stay visible, Chroma sees none of them). On
        return no batch is being indexed, and none will be until :meth:`resume`."""
        self._resume.clear()
        with self._busy:
            pass

    def resume(self) -> None:
        self._resume.set()
        self.tail.wake()

    def flush(self, timeout: float) -> bool:
        """Wait until Chroma holds every change made so far (False if paused or late)."""
        if not self._resume.is_set() or self._thread is None or not self._thread.is_alive():
            return False
        return self.tail.flush(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Index what the tail holds (within ``timeout``), then end the thread."""
        self._stop.set()
        self._resume.set()
        self.tail.wake()
        if self._thread is not None:
            self._thread.join(timeout)
            if self._thread.is_alive():
                log.warning("indexer still busy after %.0fs; the journal keeps the rest",
                            timeout)

    def _batch_size(self) -> int:
        """``batch_max``, or fewer when the disk has room for fewer (at least one: a
        batch that does not fit then fails in :meth:`index_once`)."""
        if self._room is None:
            return self.batch_max
        path, keep_free = self._room
        try:
            free = shutil.disk_usage(path).free
        except OSError:
            return self.batch_max
        return max(1, min(self.batch_max, (free - keep_free) // ROOM_PER_CHANGE))

    def index_once(self, batch: Batch) -> None:
        started = time.perf_counter()
        if self._room is not None:
            path, keep_free = self._room
            require_room(path, keep_free + ROOM_PER_CHANGE * len(batch))
        with self.tail.indexing, self._cpu.stage("index"):
            apply_batch(self.store, batch)
            self.log.journal_done(batch.through_jseq)
            self.tail.done(batch)
        self.batches += 1
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - started)

    def _run(self) -> None:
        backoff = _BACKOFF[0]
        while True:
            self._resume.wait()
            window = self.batch_window * self._rng.uniform(1 - _JITTER, 1.0)
            batch = self.tail.next_batch(self._batch_size(), window, self._stop)
            if batch is None:
                return
            try:
                with self._busy:
                    if not self._resume.is_set() and not self._stop.is_set():
                        continue  # paused while waiting: take it again once resumed
                    self.index_once(batch)
                backoff = _BACKOFF[0]
                if self.failing:
                    self.failing = False
                    log.warning("indexing into Chroma works again")
                    if self._on_recovered is not None:
                        self._on_recovered()
            except Exception as exc:
                if not self.failing:
                    log.exception("indexing %d changes into Chroma failed; retrying with "
                                  "a backoff", len(batch))
                self.failing = True
                if self._on_error is not None:
                    self._on_error(exc)
                if self._stop.wait(backoff):
                    return
                backoff = min(backoff * 2, _BACKOFF[1])
