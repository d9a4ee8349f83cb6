"""One durable path for every change: commit to the log, visible in the tail, indexed.

Local writes (``commit_local``) and the replication core's effects (``persist``) take
the same steps:

1. **commit**: one synced SQLite transaction holds the change and a journal of what
   Chroma must do (:mod:`memnode.storage.eventlog`); after it, the change is durable;
2. **visible**: the change enters the index tail (:mod:`memnode.storage.tail`), which
   every read lays over Chroma;
3. **indexed**: the indexer (:mod:`memnode.storage.indexer`) applies the tail to Chroma
   in large batches, then drops the journal rows, then the tail entries;
4. **rebuild**: whatever the journal still holds at start (Chroma may lack it) enters
   the tail again, and the indexer takes it from there. A journal larger than the tail
   (a restore journals every own memory) is replayed into Chroma directly, a page at a
   time (``replay``, also what ``memnode restore`` runs offline).

Not thread-safe on its own: the node calls ``commit_local`` and ``persist`` under its
write lock, after :meth:`memnode.storage.tail.IndexTail.wait_for_room`.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Mapping, Sequence

import numpy as np

from federation.effects import DeleteReplica, Effect, UpsertReplica
from federation.events import Event, EventKind
from memnode.node.domain import LocalRecord, Privacy, ReplicaRecord
from memnode.storage.chroma import ChromaStore
from memnode.storage.eventlog import EventLog
from memnode.storage.tail import IndexTail

log = logging.getLogger("memnode.storage")


def replica_record(event: Event) -> ReplicaRecord:
    return ReplicaRecord(
        id=event.memory_id, origin=event.origin,
        embedding=np.frombuffer(event.embedding, dtype="<f4").astype(np.float32),
        metadata=dict(event.metadata), privacy=Privacy(int(event.privacy)),
        created_at_ms=event.timestamp_ms, updated_at_ms=event.timestamp_ms,
    )


class StoreWriteError(Exception):
    """The durable path failed. ``committed``: the change is in the log (durable; Chroma
    will get it by replay); else nothing of it was written. ``what``: log or store.
    The cause is chained (``__cause__``)."""

    def __init__(self, committed: bool, what: str) -> None:
        super().__init__(f"{what} write failed ({'committed' if committed else 'not committed'})")
        self.committed = committed
        self.what = what


class Durable:
    def __init__(self, log: EventLog, store: ChromaStore, tail: IndexTail | None = None,
                 own_origin: str = "") -> None:
        self.log = log
        self.own_origin = own_origin  # the node's: its rebuild fills an old log's listing
        self.store = store
        self.tail = tail or IndexTail(store.dim, max_items=1, max_bytes=1)
        self._apply_failed = False
        self._rebuild_pending = False
        self._index_error: Exception | None = None

    def commit_local(self, puts: Sequence[LocalRecord], forgets: Sequence[str],
                     events: Sequence[Event], changed: Collection[str] = ()) -> None:
        """This node's own change, with its signed events: durable and visible on return.
        ``changed``: ids of ``puts`` that update a memory held before."""
        try:
            jseq = self.log.commit_local(puts=puts, forgets=forgets, events=events)
        except Exception as exc:
            raise StoreWriteError(False, "log") from exc
        self.tail.add_local(jseq, puts, forgets, changed)

    def persist(self, effects: Sequence[Effect], own_origin: str = "",
                own: Mapping[str, LocalRecord] | None = None,
                lost: Sequence[tuple[str, int]] = ()) -> None:
        """The replication core's effects, in order. A batch that changes nothing in the
        log (e.g. marks it already holds) costs no transaction. Effects on
        ``own_origin``'s memories (a restore taking back its events) go to the node's
        own collection, as the records ``own`` gives (see EventLog.persist_effects)."""
        try:
            jseq, memory_ids = self.log.persist_effects(effects, own_origin, own, lost)
        except Exception as exc:
            raise StoreWriteError(False, "log") from exc
        if not memory_ids:
            return
        final: dict[str, Event | None] = {}  # the last effect on a memory wins
        mine: dict[str, LocalRecord | None] = {}
        for effect in effects:
            if isinstance(effect, UpsertReplica):
                if own_origin and effect.event.origin == own_origin:
                    if effect.event.memory_id in (own or {}):  # else forgotten later here
                        mine[effect.event.memory_id] = (own or {})[effect.event.memory_id]
                else:
                    final[effect.event.memory_id] = effect.event
            elif isinstance(effect, DeleteReplica):
                if own_origin and effect.memory_id.startswith(own_origin + "/"):
                    mine[effect.memory_id] = None
                else:
                    final[effect.memory_id] = None
        if mine:
            self.tail.add_local(jseq, [r for r in mine.values() if r is not None],
                                [m for m, r in mine.items() if r is None])
        upserts = [e for e in final.values() if e is not None]
        changed = {e.memory_id for e in upserts if e.kind == EventKind.UPDATE}
        self.tail.add_replicas(jseq, [replica_record(e) for e in upserts],
                               [m for m, e in final.items() if e is None], changed)

    def fill_listing(self) -> bool:
        """Once for a log from before the listing (memnode.storage.listing): own ids from
        Chroma and the pending journal, in order. True if it filled."""
        def own_ids() -> set[str]:
            ids = self.store.local_ids()
            for entry in self.log.pending_journal():
                if entry.op == "put":
                    ids.add(entry.memory_id)
                elif entry.op == "forget":
                    ids.discard(entry.memory_id)
            return ids
        return self.log.fill_listing(own_ids, self.own_origin)

    def rebuild(self) -> int:
        """At start (and again after it failed): the listing of a log from before it
        filled, then the journal's rows (changes Chroma may lack) back into the tail, in
        order; whether Chroma holds each memory is read once, in bulk. A journal past
        half the tail's bound is replayed into Chroma instead."""
        if self.own_origin and self.fill_listing():
            log.info("filled the listing of a log from before it")
        pending = self.log.pending_journal(self.tail.max_items // 2 + 1)
        if len(pending) > self.tail.max_items // 2:
            return self.replay()
        if not pending:
            return 0
        local_ids = [e.memory_id for e in pending if e.op != "replica"]
        replica_ids = [e.memory_id for e in pending if e.op == "replica"]
        held_local = self.store.existing_local(local_ids)
        held_replicas = self.store.existing_replicas(replica_ids)
        for entry in pending:  # a put whose key is gone (record None) was forgotten since
            if entry.op == "put" and entry.record is not None:
                self.tail.add_local(entry.jseq, [entry.record], (), held_local)
                held_local.add(entry.memory_id)
            elif entry.op == "forget" and entry.memory_id in held_local:
                self.tail.add_local(entry.jseq, (), [entry.memory_id])
        last_jseq = {e.memory_id: e.jseq for e in pending if e.op == "replica"}
        for memory_id in sorted(last_jseq, key=last_jseq.__getitem__):
            event = self.log.latest_event(memory_id)
            if event is not None and event.kind != EventKind.FORGET:
                self.tail.add_replicas(last_jseq[memory_id], [replica_record(event)], (),
                                       held_replicas)
            else:
                self.tail.add_replicas(last_jseq[memory_id], (), [memory_id])
        return len(pending)

    def replay(self, page: int = 5000, progress: Callable[[int], None] | None = None) -> int:
        """Apply to Chroma whatever the journal holds, in order, then drop it (a page
        of entries at a time: a restore's journal holds every own memory)."""
        total = 0
        while True:
            done = self._replay_page(page)
            if not done:
                return total
            total += done
            if progress is not None:
                progress(done)

    def _replay_page(self, page: int) -> int:
        pending = self.log.pending_journal(page)
        i = 0
        while i < len(pending):
            j = i
            while j < len(pending) and pending[j].op == pending[i].op:
                j += 1
            run = pending[i:j]
            if run[0].op == "put":
                self.store.upsert_local([e.record for e in run if e.record is not None])
            elif run[0].op == "forget":
                self.store.delete_local([e.memory_id for e in run])
            else:
                self._sync_replicas([e.memory_id for e in run])
            i = j
        if pending:
            self.log.journal_done(pending[-1].jseq)
        return len(pending)

    # -- health: the indexer reports here; the node refuses writes while it fails ------

    def index_failed(self, exc: Exception) -> None:
        self._apply_failed, self._index_error = True, exc

    def index_ok(self) -> None:
        self._apply_failed, self._index_error = False, None

    def defer_replay(self) -> None:
        """The journal could not be rebuilt (at start): the next probe tries again."""
        self._apply_failed = self._rebuild_pending = True

    @property
    def apply_failed(self) -> bool:
        return self._apply_failed

    def probe(self) -> None:
        """Raises StoreWriteError while the indexer cannot write Chroma (it retries on
        its own) or a small log write fails."""
        if self._rebuild_pending:
            try:
                self.rebuild()
            except Exception as exc:
                raise StoreWriteError(True, "store") from exc
            self._apply_failed = self._rebuild_pending = False
        if self._apply_failed:
            raise StoreWriteError(True, "store") from self._index_error
        try:
            self.log.set_meta("write_probe", "ok")
        except Exception as exc:
            raise StoreWriteError(False, "log") from exc

    def _sync_replicas(self, memory_ids: Sequence[str]) -> None:
        """Make each memory's replica in Chroma match its newest event in the log
        (PUT/UPDATE: upsert; FORGET or nothing: delete). Idempotent."""
        upserts: dict[str, Event] = {}
        deletes: list[str] = []
        for memory_id in dict.fromkeys(memory_ids):
            event = self.log.latest_event(memory_id)
            if event is not None and event.kind != EventKind.FORGET:
                upserts[memory_id] = event
            else:
                deletes.append(memory_id)
        if upserts:
            changed = {m for m, e in upserts.items() if e.kind == EventKind.UPDATE}
            self.store.upsert_replicas([replica_record(e) for e in upserts.values()], changed)
        if deletes:
            self.store.delete_replicas(deletes)

