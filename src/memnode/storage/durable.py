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
   the tail again, and the indexer takes it from there.

Not thread-safe on its own: the node calls ``commit_local`` and ``persist`` under its
write lock, after :meth:`memnode.storage.tail.IndexTail.wait_for_room`.
"""

from __future__ import annotations

import logging
from collections.abc import Collection, Sequence

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


class Durable:
    def __init__(self, log: EventLog, store: ChromaStore, tail: IndexTail) -> None:
        self.log = log
        self.store = store
        self.tail = tail

    def commit_local(self, puts: Sequence[LocalRecord], forgets: Sequence[str],
                     events: Sequence[Event], changed: Collection[str] = ()) -> None:
        """This node's own change, with its signed events: durable and visible on return.
        ``changed``: ids of ``puts`` that update a memory held before."""
        jseq = self.log.commit_local(puts=puts, forgets=forgets, events=events)
        self.tail.add_local(jseq, puts, forgets, changed)

    def persist(self, effects: Sequence[Effect]) -> None:
        """The replication core's effects, in order. A batch that changes nothing in the
        log (e.g. marks it already holds) costs no transaction."""
        jseq, memory_ids = self.log.persist_effects(effects)
        if not memory_ids:
            return
        final: dict[str, Event | None] = {}  # the last effect on a memory wins
        for effect in effects:
            if isinstance(effect, UpsertReplica):
                final[effect.event.memory_id] = effect.event
            elif isinstance(effect, DeleteReplica):
                final[effect.memory_id] = None
        upserts = [e for e in final.values() if e is not None]
        changed = {e.memory_id for e in upserts if e.kind == EventKind.UPDATE}
        self.tail.add_replicas(jseq, [replica_record(e) for e in upserts],
                               [m for m, e in final.items() if e is None], changed)

    def rebuild(self) -> int:
        """At start: the journal's rows (changes Chroma may lack) back into the tail, in
        order; whether Chroma holds each memory is read once, in bulk."""
        pending = self.log.pending_journal()
        if not pending:
            return 0
        local_ids = [e.memory_id for e in pending if e.op != "replica"]
        replica_ids = [e.memory_id for e in pending if e.op == "replica"]
        held_local = self.store.existing_local(local_ids)
        held_replicas = self.store.existing_replicas(replica_ids)
        for entry in pending:
            if entry.op == "put" and entry.record is not None:
                self.tail.add_local(entry.jseq, [entry.record], (), held_local)
            elif entry.op == "forget":
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
