"""One durable path for every change: commit to the log, apply to Chroma, replay.

Local writes (``commit_local``) and the replication core's effects (``persist``) take
the same three steps:

1. **commit**: one synced SQLite transaction holds the change and a journal of what
   Chroma must do (:mod:`memnode.storage.eventlog`); after it, the change is durable;
2. **apply**: Chroma is brought in line (upserts and deletes, idempotent), then the
   journal rows are dropped;
3. **replay**: whatever the journal still holds at start (a crash between 1 and 2), or
   after an apply failed, is applied again, in order.

Not thread-safe on its own: the node calls it under its write lock.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from federation.effects import DeleteReplica, Effect, UpsertReplica
from federation.events import Event, EventKind
from memnode.node.domain import LocalRecord, Privacy, ReplicaRecord
from memnode.storage.chroma import ChromaStore
from memnode.storage.eventlog import EventLog

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
    def __init__(self, log: EventLog, store: ChromaStore) -> None:
        self.log = log
        self.store = store
        self._apply_failed = False

    def commit_local(self, puts: Sequence[LocalRecord], forgets: Sequence[str],
                     events: Sequence[Event]) -> None:
        """This node's own change, with its signed events. Durable on return, even if
        applying to Chroma failed (then raises; the next change or start replays)."""
        try:
            jseq = self.log.commit_local(puts=puts, forgets=forgets, events=events)
        except Exception as exc:
            raise StoreWriteError(False, "log") from exc

        def apply() -> None:
            if puts:
                self.store.upsert_local(puts)
            if forgets:
                self.store.delete_local(forgets)

        self._apply(apply, jseq)

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
        if memory_ids:
            self._apply(lambda: _apply_effects(self.store, effects, own_origin, own or {}),
                        jseq)

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

    def _apply(self, apply: Callable[[], None], jseq: int) -> None:
        try:
            if self._apply_failed:  # an earlier apply failed: re-apply all that is pending
                self.replay()
                self._apply_failed = False
            else:
                apply()
                self.log.journal_done(jseq)
        except Exception as exc:
            self._apply_failed = True
            log.warning("applying a committed change to Chroma failed (%s); replayed at "
                        "the next write or probe", exc)
            raise StoreWriteError(True, "store") from exc

    def defer_replay(self) -> None:
        """The journal could not be applied (at start): retry at the next write or probe."""
        self._apply_failed = True

    @property
    def apply_failed(self) -> bool:
        return self._apply_failed

    def probe(self) -> None:
        """Try to write again: apply what is pending, and one small log write. Raises
        StoreWriteError while either fails."""
        if self._apply_failed:
            try:
                self.replay()
            except Exception as exc:
                raise StoreWriteError(True, "store") from exc
            self._apply_failed = False
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


def _apply_effects(store: ChromaStore, effects: Sequence[Effect], own_origin: str,
                   own: Mapping[str, LocalRecord]) -> None:
    """Bring Chroma in line with a batch of effects just written to the log: the last
    effect on a memory wins (what ``_sync_replicas`` would read back from the log,
    without reading it back). Own memories (a restore) go to the own collection."""
    final: dict[str, Event | None] = {}
    mine: dict[str, LocalRecord | None] = {}
    for effect in effects:
        if isinstance(effect, UpsertReplica):
            if own_origin and effect.event.origin == own_origin:
                mine[effect.event.memory_id] = own[effect.event.memory_id]
            else:
                final[effect.event.memory_id] = effect.event
        elif isinstance(effect, DeleteReplica):
            if own_origin and effect.memory_id.startswith(own_origin + "/"):
                mine[effect.memory_id] = None
            else:
                final[effect.memory_id] = None
    puts = [r for r in mine.values() if r is not None]
    if puts:
        store.upsert_local(puts)
    gone = [m for m, r in mine.items() if r is None]
    if gone:
        store.delete_local(gone)
    upserts = [e for e in final.values() if e is not None]
    if upserts:
        changed = {e.memory_id for e in upserts if e.kind == EventKind.UPDATE}
        store.upsert_replicas([replica_record(e) for e in upserts], changed)
    deletes = [m for m, e in final.items() if e is None]
    if deletes:
        store.delete_replicas(deletes)
