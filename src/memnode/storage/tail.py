"""The index tail: changes durable in the log that Chroma does not hold yet.

A write is visible as soon as it is durable: the durable path puts it here right after
the log commit, recall searches the tail exactly (numpy) and merges it with Chroma's
results, and the indexer (:mod:`memnode.storage.indexer`) moves it into Chroma in large
batches. Own memories and replicas are kept apart, as in Chroma.

Per memory the tail holds only its newest unindexed change: a record (put or update) or
a tombstone (forgotten; Chroma may still hold it). Any memory in the tail shadows
Chroma's copy of it, so an update replaces the older version at once and a forget hides
the memory at once from recall, get and list.

Bounded: ``max_items`` and ``max_bytes`` (vectors, text and metadata, approximately);
writers wait for room (:meth:`IndexTail.wait_for_room`) and are refused past a deadline.
Thread-safe: one lock, never held while calling out.
"""

from __future__ import annotations

import copy
import logging
import threading
import time
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from memnode.node.domain import LocalRecord, MetaValue, ReplicaRecord, Vector
from memnode.storage.fairlock import FairLock

log = logging.getLogger("memnode.storage")

Record = LocalRecord | ReplicaRecord
Match = Callable[[Record], bool]


@dataclass
class Entry:
    """The newest unindexed change of one memory."""

    jseq: int  # the journal seq of the commit that made it (rows <= jseq drop with it)
    record: Record | None  # None: forgotten
    in_chroma: bool  # Chroma (probably) holds an older version of it
    since: float  # monotonic time of the memory's first unindexed change
    size: int
    slot: int = -1  # row of its vector in the side's matrix; -1 for a tombstone


def _size(record: Record | None) -> int:
    if record is None:
        return 64
    text = len(record.text.encode()) if isinstance(record, LocalRecord) else 0
    meta = sum(len(k) + len(str(v)) for k, v in record.metadata.items())
    return 128 + int(record.embedding.nbytes) + text + meta


def copy_record(record: Record) -> Record:
    """A copy callers may change (the node edits the records it reads before an update)."""
    out = copy.copy(record)
    out.metadata = dict(record.metadata)
    return out


class _Side:
    """One collection's tail: entries in journal order, vectors in a reusable matrix."""

    def __init__(self, dim: int) -> None:
        self.dim = dim
        self.entries: dict[str, Entry] = {}
        self.matrix = np.zeros((0, dim), dtype=np.float32)
        self.live = np.zeros(0, dtype=bool)
        self.slot_ids: list[str] = []
        self.free: list[int] = []
        self.bytes = 0
        self.held = 0  # entries whose memory Chroma holds (an older version of)
        self.net = 0  # Chroma's count once indexed, less now: new records less gone ones
        self.used = 0  # slots at and past this one were never used: searches skip them

    def _slot(self, memory_id: str, vector: Vector) -> int:
        if not self.free:
            old = len(self.slot_ids)
            grown = max(64, old * 2)
            self.matrix = np.concatenate(
                [self.matrix, np.zeros((grown - old, self.dim), np.float32)])
            self.live = np.concatenate([self.live, np.zeros(grown - old, bool)])
            self.slot_ids += [""] * (grown - old)
            self.free = list(range(grown - 1, old - 1, -1))
        slot = self.free.pop()  # a freed one, else the lowest new one
        self.used = max(self.used, slot + 1)
        norm = float(np.linalg.norm(vector))
        self.matrix[slot] = vector / norm if norm > 0 else vector
        self.live[slot] = True
        self.slot_ids[slot] = memory_id
        return slot

    def _drop(self, memory_id: str) -> Entry | None:
        entry = self.entries.pop(memory_id, None)
        if entry is not None:
            self.bytes -= entry.size
            self._tally(entry, -1)
            if entry.slot >= 0:
                self.live[entry.slot] = False
                self.free.append(entry.slot)
            if not self.entries:  # empty: the next ones start at the front again
                self.used = 0
                self.free = list(range(len(self.slot_ids) - 1, -1, -1))
        return entry

    def set(self, memory_id: str, jseq: int, record: Record | None, in_chroma: bool,
            now: float) -> None:
        prior = self._drop(memory_id)
        entry = Entry(jseq, record, prior.in_chroma if prior else in_chroma,
                      prior.since if prior else now, _size(record))
        if record is not None:
            entry.slot = self._slot(memory_id, record.embedding)
        self.entries[memory_id] = entry
        self.bytes += entry.size
        self._tally(entry, 1)

    def _tally(self, entry: Entry, sign: int) -> None:
        """Keep :meth:`IndexTail.shadow`'s counts as entries come and go."""
        self.held += sign * entry.in_chroma
        if entry.record is not None and not entry.in_chroma:
            self.net += sign
        elif entry.record is None and entry.in_chroma:
            self.net -= sign

    def search(self, query: Vector, k: int, match: Match) -> list[tuple[float, Record]]:
        """The ``k`` best records ``match`` accepts. Sorts only the best few first
        (``argpartition``): sorting 20,000 scores took longer than scoring them."""
        live = int(self.live.sum())
        if not live:
            return []
        scores = self.matrix[:self.used] @ query  # memory-bound: 2.1 ms for 32,768 rows
        scores[~self.live[:self.used]] = -np.inf
        want = min(live, max(4 * k, 64))
        while True:
            if want < len(scores):
                best = np.argpartition(-scores, want - 1)[:want]
                order = best[np.argsort(-scores[best])]
            else:
                order = np.argsort(-scores)[:want]
            out: list[tuple[float, Record]] = []
            for slot in order:
                record = self.entries[self.slot_ids[slot]].record
                assert record is not None
                if match(record):
                    out.append((float(scores[slot]), record))
                    if len(out) >= k:
                        return out
            if want >= live:
                return out
            want = live  # the filter left fewer than k among the best: look at them all


@dataclass
class Batch:
    """What the indexer takes at once: every entry of journal seq <= ``through_jseq``."""

    through_jseq: int
    local: list[tuple[str, Entry]] = field(default_factory=list)
    replicas: list[tuple[str, Entry]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.local) + len(self.replicas)


def _equal(a: object, b: object) -> bool:
    return isinstance(a, bool) == isinstance(b, bool) and a == b


def match_local(where: Mapping[str, MetaValue]) -> Match:
    """Chroma's equality filter on clear metadata."""
    return lambda r: all(_equal(r.metadata.get(k, None), v) for k, v in where.items())


def match_replica(where: Mapping[str, Sequence[MetaValue]]) -> Match:
    """Each key holds one of the allowed values (clear or keyed hash), as Chroma's $or."""
    return lambda r: all(any(_equal(r.metadata.get(k, None), v) for v in values)
                         for k, values in where.items())


class IndexTail:
    def __init__(self, dim: int, *, max_items: int, max_bytes: int,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.max_items = max_items
        self.max_bytes = max_bytes
        self._clock = clock
        self.local = _Side(dim)
        self.replicas = _Side(dim)
        self._cond = threading.Condition()
        self._flush_through = 0  # the indexer takes everything up to here at once
        #: Held by the indexer from a batch's Chroma write until its entries leave the
        #: tail; counts take it, else a batch in between would be counted twice. Fair:
        #: back-to-back batches let a waiting count in between (memnode.storage.fairlock).
        self.indexing = FairLock()

    # -- writes (the durable path, under the node's write lock) ------------------------

    def add_local(self, jseq: int, puts: Sequence[LocalRecord], forgets: Sequence[str],
                  changed: Collection[str] = ()) -> None:
        """A committed local change: ``changed`` are puts of memories Chroma holds."""
        with self._cond:
            now = self._clock()
            for record in puts:
                self.local.set(record.id, jseq, copy_record(record), record.id in changed, now)
            for memory_id in forgets:
                self.local.set(memory_id, jseq, None, True, now)
            self._cond.notify_all()

    def add_replicas(self, jseq: int, puts: Sequence[ReplicaRecord], deletes: Sequence[str],
                     changed: Collection[str] = ()) -> None:
        with self._cond:
            now = self._clock()
            for record in puts:
                self.replicas.set(record.id, jseq, record, record.id in changed, now)
            for memory_id in deletes:
                self.replicas.set(memory_id, jseq, None, True, now)
            self._cond.notify_all()

    def full(self) -> bool:
        with self._cond:
            return self._full()

    def _full(self) -> bool:
        return (len(self.local.entries) + len(self.replicas.entries) >= self.max_items
                or self.local.bytes + self.replicas.bytes >= self.max_bytes)

    def wait_until_room(self, warn_every: float) -> None:
        """Replication's backpressure: wait as long as it takes, saying so now and then."""
        while not self.wait_for_room(warn_every):
            log.warning("index tail full (%d changes): replication waits for the indexer",
                        self.count())

    def wait_for_room(self, timeout: float | None) -> bool:
        """Block until the tail is below its bounds; False if ``timeout`` passed first."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._full(), timeout)

    # -- the indexer ------------------------------------------------------------------

    def next_batch(self, max_items: int, window: float, stop: threading.Event
                   ) -> Batch | None:
        """Wait for ``max_items`` entries, or for the oldest to be ``window`` seconds old
        (or the tail to be full, or ``stop``), then take the oldest entries in journal
        order: at least every entry of the last commit taken. None once stopped empty."""
        with self._cond:
            while True:
                count = self.count()
                if count and (count >= max_items or self._full() or stop.is_set()
                              or self._first_jseq() <= self._flush_through
                              or self._clock() - self._oldest() >= window):
                    break
                if stop.is_set():
                    return None
                wait = None if not count else window - (self._clock() - self._oldest())
                self._cond.wait(None if wait is None else max(wait, 0.001))
            local = list(self.local.entries.items())
            replicas = list(self.replicas.entries.items())
            batch = Batch(0)
            i = j = 0
            while i < len(local) or j < len(replicas):
                take_local = j >= len(replicas) or (
                    i < len(local) and local[i][1].jseq <= replicas[j][1].jseq)
                jseq = local[i][1].jseq if take_local else replicas[j][1].jseq
                if len(batch) >= max_items and jseq > batch.through_jseq:
                    break
                if take_local:
                    batch.local.append(local[i])
                    i += 1
                else:
                    batch.replicas.append(replicas[j])
                    j += 1
                batch.through_jseq = jseq
            return batch

    def _first_jseq(self) -> int:
        firsts = [next(iter(s.entries.values())).jseq
                  for s in (self.local, self.replicas) if s.entries]
        return min(firsts, default=1 << 62)

    def flush(self, timeout: float) -> bool:
        """Have the indexer take every change made so far without waiting for its window,
        and wait until Chroma holds them all; False if ``timeout`` passed first."""
        with self._cond:
            through = max((e.jseq for s in (self.local, self.replicas)
                           for e in s.entries.values()), default=0)
            self._flush_through = max(self._flush_through, through)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._first_jseq() > through, timeout)

    def done(self, batch: Batch) -> None:
        """Chroma holds ``batch``: drop its entries that no newer change replaced."""
        with self._cond:
            for side, items in ((self.local, batch.local), (self.replicas, batch.replicas)):
                for memory_id, entry in items:
                    if side.entries.get(memory_id) is entry:
                        side._drop(memory_id)
            self._cond.notify_all()

    def wake(self) -> None:
        with self._cond:
            self._cond.notify_all()

    # -- reads ------------------------------------------------------------------------

    def count(self, collection: str = "") -> int:
        with self._cond:
            if collection:
                return len(self._side(collection).entries)
            return len(self.local.entries) + len(self.replicas.entries)

    def _side(self, collection: str) -> _Side:
        return self.local if collection == "local" else self.replicas

    def _oldest(self) -> float:
        return min((e.since for s in (self.local, self.replicas) for e in s.entries.values()),
                   default=self._clock())

    def lag_seconds(self) -> float:
        """Age of the oldest unindexed change (0 when the tail is empty)."""
        with self._cond:
            return max(0.0, self._clock() - self._oldest())

    def get(self, collection: str, memory_id: str) -> tuple[bool, Record | None]:
        """(True, record or None if forgotten) when the tail decides; (False, None) if
        Chroma's copy is current."""
        with self._cond:
            entry = self._side(collection).entries.get(memory_id)
            if entry is None:
                return False, None
            return True, None if entry.record is None else copy_record(entry.record)

    def shadow(self, collection: str) -> tuple[set[str], int, int]:
        """Ids whose Chroma copy is stale or gone, how many of those Chroma holds, and the
        net change to Chroma's count (new records minus gone ones)."""
        with self._cond:
            side = self._side(collection)
            return set(side.entries), side.held, side.net

    def search(self, collection: str, query: Vector, k: int, match: Match
               ) -> tuple[list[tuple[float, Record]], set[str], int]:
        """The ``k`` best matching tail records, with :meth:`shadow`'s ids and held count
        taken at the same instant (so no change is seen twice or missed)."""
        norm = float(np.linalg.norm(query))
        q = np.asarray(query, dtype=np.float32) / (norm if norm > 0 else 1.0)
        with self._cond:
            side = self._side(collection)
            return side.search(q, k, match), set(side.entries), side.held

    def matching(self, collection: str, match: Match) -> tuple[list[Record], set[str]]:
        """The unindexed records ``match`` accepts, and every id the tail decides (its
        records and tombstones), taken at one instant."""
        with self._cond:
            entries = self._side(collection).entries
            return ([copy_record(e.record) for e in entries.values()
                     if e.record is not None and match(e.record)], set(entries))

    def ids(self, collection: str) -> Iterable[str]:
        with self._cond:
            return list(self._side(collection).entries)
