"""The node's durable log: a write-ahead journal for Chroma and the signed per-origin events.

One SQLite database in WAL mode (``<data_dir>/log.db``) holds, written in one transaction
per client request and synced before the client is answered:

- ``journal``: every local mutation (put / forget of a PRIVATE, TEAM or PUBLIC memory)
  with everything Chroma needs to apply it, text included, and every replica change
  (op ``replica``: bring the memory's replica in line with its newest event here). Rows
  are deleted once Chroma has applied them; at start, whatever is left is replayed
  (idempotent upserts and deletes). So a ``kill -9`` at any moment loses no
  acknowledged write and leaves no half-applied one.
- ``events``: the signed replication events of every origin this node knows (its own
  and its peers'), never text. Compaction keeps the newest event per live memory and
  the FORGET tombstone of a forgotten one.
- ``origins``: per origin, the marks of the replication core: the watermark (the
  version vector), the GC floor and the reconciliation cursor.
- ``meta``: schema version, node id, model identity, the CA-signed erasure orders in force.
- ``data_keys``: each own memory's data key, wrapped (encryption at rest,
  :mod:`memnode.storage.atrest`); a forget deletes it and empties the WAL.
- ``listing``: the id of every persisted memory, own and replicas apart, written with
  the change that adds or removes it (List pages over it: :mod:`memnode.storage.listing`).

A data directory that cannot be read is reported (DataDirError), never reset
(:mod:`memnode.storage.logdb` opens the database).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

from federation.effects import (
    DeleteReplica,
    DropTombstone,
    Effect,
    KeepErasures,
    OriginMarks,
    OwnSeqLearned,
    UpsertReplica,
)
from federation.events import Event, EventKind, SharedPrivacy, local_id_of
from federation.eventsource import bounded_run
from federation.messages import EventRun
from federation.validate import RejectReason
from memnode.node.domain import LocalRecord
from memnode.storage import listing
from memnode.storage.logdb import LOG_FILE, connect
from memnode.storage.records import (
    JournalEntry,
    event_body,
    event_of,
    journal_forget,
    journal_put,
    record_from_row,
)

if TYPE_CHECKING:
    from memnode.storage.atrest import Sealer

class EventLog:
    """Thread-safe; one writer at a time (writes take an internal lock)."""

    def __init__(self, conn: sqlite3.Connection, path: Path, sealer: Sealer | None = None
                 ) -> None:
        self._conn = conn
        self._lock = threading.RLock()
        self.path = path
        self.sealer = sealer
        if sealer is not None:
            sealer.attach(path)

    @classmethod
    def open(cls, data_dir: Path, *, synchronous: str = "FULL", sealer: Sealer | None = None
             ) -> EventLog:
        path = data_dir / LOG_FILE
        return cls(connect(path, synchronous), path, sealer)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
            if self.sealer is not None:
                self.sealer.close()

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
                self._conn.execute("COMMIT")
                if self.sealer is not None and self.sealer.take_destroyed():
                    self._conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")  # no old key page
            except BaseException:
                # also when COMMIT itself failed (a full disk): never leave it open
                if self._conn.in_transaction:
                    self._conn.execute("ROLLBACK")
                raise

    # -- meta ---------------------------------------------------------------------------

    def meta(self, key: str) -> str | None:
        with self._lock:
            row = self._conn.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._tx() as c:
            c.execute("INSERT OR REPLACE INTO meta VALUES (?, ?)", (key, value))

    # -- local writes ---------------------------------------------------------------------

    def commit_local(
        self,
        puts: Sequence[LocalRecord] = (),
        forgets: Sequence[str] = (),
        events: Sequence[Event] = (),
    ) -> int:
        """Journal local mutations and append their signed events, atomically and durably.

        ``events`` must be this node's own, numbered from ``watermark(origin) + 1`` on.
        Returns the highest journal seq written (for :meth:`journal_done`).
        """
        with self._tx() as c:
            for record in puts:
                journal_put(c, record, self.sealer)
            for memory_id in forgets:
                journal_forget(c, memory_id, self.sealer)
            self._append_events(c, events)
            row = c.execute("SELECT MAX(jseq) FROM journal").fetchone()
        return int(row[0] or 0)

    def _append_events(self, c: sqlite3.Connection, events: Sequence[Event]) -> None:
        heads: dict[str, int] = {}
        for event in events:
            if event.origin not in heads:
                heads[event.origin] = self._watermark(c, event.origin)
            if event.seq != heads[event.origin] + 1:
                raise ValueError(
                    f"event {event.origin}/{event.seq} does not follow {heads[event.origin]}"
                )
            self._put_event(c, event, own=True)
            heads[event.origin] = event.seq
        for origin, seq in heads.items():
            c.execute(
                "INSERT INTO origins (origin, watermark) VALUES (?, ?) "
                "ON CONFLICT (origin) DO UPDATE SET watermark = excluded.watermark",
                (origin, seq),
            )

    def _put_event(self, c: sqlite3.Connection, event: Event, own: bool = False) -> None:
        # Compaction: the newest event of a memory supersedes the older ones.
        c.execute("DELETE FROM events WHERE memory_id = ?", (event.memory_id,))
        c.execute(
            "INSERT INTO events VALUES (?, ?, ?, ?, ?)",
            (event.origin, event.seq, event.memory_id, int(event.kind),
             event_body(c, event, self.sealer if own else None)),
        )

    def is_noop(self, effects: Sequence[Effect]) -> bool:
        """True when ``effects`` are only marks this log already holds (the marks of our
        own events, which ``commit_local`` wrote): persisting them would change nothing."""
        if not all(isinstance(e, OriginMarks) for e in effects):
            return False
        with self._lock:
            for marks in effects:
                assert isinstance(marks, OriginMarks)
                row = self._conn.execute(
                    "SELECT watermark, gc_floor, resync_from FROM origins WHERE origin = ?",
                    (marks.origin,)).fetchone()
                if row is None or row[0] < marks.watermark or row[1] != marks.gc_floor \
                        or row[2] != marks.resync_from:
                    return False
        return True

    def persist_effects(self, effects: Sequence[Effect], own_origin: str = "",
                        own: Mapping[str, LocalRecord] | None = None,
                        lost: Sequence[tuple[str, int]] = ()) -> tuple[int, list[str]]:
        """Apply the replication core's effects to the log, in order, in one durable
        transaction, journalling the replicas Chroma must bring in line. Returns the
        journal seq written (0 if none) and the memory ids to sync (replicas, and own
        memories taken back).

        Effects on ``own_origin``'s memories (a restored node taking back its events)
        are journalled as local puts (``own``: memory id -> the record to store; a memory
        a later effect of the batch forgets has none) and forgets; ``lost`` (memory id,
        seq) records which of them came without text.
        OwnSeqLearned ends the restore (meta ``restore``)."""
        to_sync: list[str] = []
        own = own or {}
        with self._tx() as c:
            for effect in effects:
                if isinstance(effect, UpsertReplica) and effect.event.origin == own_origin:
                    self._put_event(c, effect.event, own=True)
                    record = own.get(effect.event.memory_id)
                    if record is not None:  # else a later effect here forgets it
                        journal_put(c, record, self.sealer)
                        to_sync.append(effect.event.memory_id)
                elif isinstance(effect, DeleteReplica) and effect.memory_id.startswith(
                        own_origin + "/") and own_origin:
                    c.execute("DELETE FROM events WHERE memory_id = ?", (effect.memory_id,))
                    if effect.forget is not None:
                        self._put_event(c, effect.forget)
                    journal_forget(c, effect.memory_id, self.sealer)
                    c.execute("DELETE FROM lost_texts WHERE memory_id = ?", (effect.memory_id,))
                    to_sync.append(effect.memory_id)
                elif isinstance(effect, KeepErasures):  # latin-1: the bytes as signed
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('erasures', ?)",
                              (effect.record.decode("latin-1"),))
                elif isinstance(effect, OwnSeqLearned):
                    c.execute("INSERT OR REPLACE INTO meta VALUES ('restore', ?)",
                              (f"done: own seq {effect.watermark}, peers held {effect.learned}",))
                elif isinstance(effect, UpsertReplica):
                    self._put_event(c, effect.event)
                    listing.add(c, effect.event.memory_id, replica=True)
                    to_sync.append(effect.event.memory_id)
                elif isinstance(effect, DeleteReplica):
                    c.execute("DELETE FROM events WHERE memory_id = ?", (effect.memory_id,))
                    listing.remove(c, effect.memory_id, replica=True)
                    if effect.forget is not None:
                        self._put_event(c, effect.forget)
                    to_sync.append(effect.memory_id)
                elif isinstance(effect, DropTombstone):
                    c.execute("DELETE FROM events WHERE origin = ? AND seq = ? AND kind = ?",
                              (effect.origin, effect.seq, int(EventKind.FORGET)))
                elif isinstance(effect, OriginMarks):
                    c.execute(
                        "INSERT INTO origins (origin, watermark, gc_floor, resync_from) "
                        "VALUES (?, ?, ?, ?) ON CONFLICT (origin) DO UPDATE SET "
                        "watermark = MAX(watermark, excluded.watermark), "
                        "gc_floor = excluded.gc_floor, resync_from = excluded.resync_from",
                        (effect.origin, effect.watermark, effect.gc_floor, effect.resync_from),
                    )
            c.executemany("INSERT OR REPLACE INTO lost_texts VALUES (?, ?)", lost)
            c.executemany("INSERT INTO journal (op, memory_id) VALUES ('replica', ?)",
                          [(m,) for m in to_sync if not m.startswith(own_origin + "/")
                           or not own_origin])
            row = c.execute("SELECT MAX(jseq) FROM journal").fetchone()
        return (int(row[0] or 0) if to_sync else 0), to_sync

    def drop_own_events(self, origin: str, refuse: Callable[[Event], RejectReason | None]
                        ) -> list[tuple[Event, RejectReason]]:
        """Delete ``origin``'s retained events that ``refuse`` finds a reason against,
        in one transaction; the watermark stays, so runs vouch for those seqs as
        compacted. Returns what was dropped."""
        dropped: list[tuple[Event, RejectReason]] = []
        with self._tx() as c:
            rows = c.execute("SELECT body FROM events WHERE origin = ? ORDER BY seq",
                             (origin,)).fetchall()
            for (body,) in rows:
                event = event_of(c, body, self.sealer)
                reason = refuse(event)
                if reason is not None:
                    c.execute("DELETE FROM events WHERE origin = ? AND seq = ?",
                              (origin, event.seq))
                    dropped.append((event, reason))
        return dropped

    def restart_state(self) -> tuple[list[Event], list[OriginMarks]]:
        """The compacted log as light events (no embedding, no metadata) and the marks:
        what the replication core needs to restart."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT origin, seq, memory_id, kind FROM events ORDER BY origin, seq"
            ).fetchall()
            marks = self._conn.execute(
                "SELECT origin, watermark, gc_floor, resync_from FROM origins"
            ).fetchall()
        events = [
            Event(origin=o, seq=q, kind=EventKind(k), local_id=local_id_of(m),
                  timestamp_ms=0, privacy=SharedPrivacy.TEAM)
            for o, q, m, k in rows
        ]
        return events, [OriginMarks(o, w, g, r) for o, w, g, r in marks]

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int
                  ) -> EventRun:
        """Retained events of ``origin`` above ``after_seq`` (the EventSource contract of
        federation.eventsource: bounded, at least one event if any remains, ``through_seq`` the
        watermark when everything remaining fit)."""
        with self._lock:
            watermark = self._watermark(self._conn, origin)
            if after_seq >= watermark or max_events <= 0:
                return EventRun(origin, after_seq, after_seq, ())
            rows = self._conn.execute(
                "SELECT body FROM events WHERE origin = ? AND seq > ? AND seq <= ? "
                "ORDER BY seq LIMIT ?",
                (origin, after_seq, watermark, max_events + 1),
            ).fetchall()
            # opened under the lock: a forget committing meanwhile would destroy the
            # data key of a sealed own event between the read and its opening
            events = [event_of(None, body, self.sealer) for (body,) in rows]
        return bounded_run(origin, after_seq, watermark, events, max_events, max_bytes)

    def seal_own_events(self, origin: str) -> int:
        """Seal the stored own events of ``origin`` that are still in clear (a log from
        before encryption at rest, being restored): their bodies rewritten as
        :func:`~memnode.storage.records.event_body` stores them now, in one transaction
        (``secure_delete`` zeroes the old pages). Returns how many changed."""
        assert self.sealer is not None, "sealing needs the store's sealer"
        changed = 0
        with self._tx() as c:
            rows = c.execute("SELECT seq, body FROM events WHERE origin = ?",
                             (origin,)).fetchall()
            for seq, body in rows:
                event = event_of(c, body, self.sealer)
                sealed = event_body(c, event, self.sealer)
                if sealed != body:
                    c.execute("UPDATE events SET body = ? WHERE origin = ? AND seq = ?",
                              (sealed, origin, seq))
                    changed += 1
        return changed

    def backup_to(self, path: Path) -> None:
        """A consistent copy of the whole log (SQLite's online backup API)."""
        with self._lock:
            dst = sqlite3.connect(path)
            try:
                self._conn.backup(dst)
            finally:
                dst.close()

    def journal_replicas(self, own_origin: str) -> int:
        """Journal every live replica (the newest event of another origin's memory),
        so that replaying the journal rebuilds Chroma's replicas (a restore)."""
        with self._tx() as c:
            cur = c.execute(
                "INSERT INTO journal (op, memory_id) SELECT 'replica', memory_id FROM events "
                "WHERE origin != ? AND kind != ? ORDER BY origin, seq",
                (own_origin, int(EventKind.FORGET)))
            return int(cur.rowcount)

    def pending_journal(self, limit: int = -1) -> list[JournalEntry]:
        """Local mutations not yet confirmed applied to Chroma, in order (the first
        ``limit`` of them; all with -1)."""
        with self._lock:
            rows = self._conn.execute(
                "SELECT jseq, op, memory_id, payload, embedding FROM journal ORDER BY jseq "
                "LIMIT ?", (limit,)
            ).fetchall()
            keys = None if self.sealer is None else self.sealer.keys(
                [r[2] for r in rows if r[1] == "put"], self._conn)
        return [JournalEntry(jseq, op, memory_id, record_from_row(
                    memory_id, payload, blob, keys, self.sealer) if op == "put" else None)
                for jseq, op, memory_id, payload, blob in rows]

    def listing_after(self, replica: bool, last_id: str, limit: int) -> list[str]:
        """Ids of own memories (or replicas) after ``last_id``, in order (List's pages)."""
        with self._lock:
            return listing.after(self._conn, replica, last_id, limit)

    def fill_listing(self, own_ids: Callable[[], Iterable[str]], own_origin: str) -> bool:
        """Fill the listing of a log from before it (once); True if it did. A filled
        log (every start but the first) costs one read, no write transaction."""
        with self._lock:
            if listing.is_filled(self._conn):
                return False
            with self._tx() as c:
                listing.fill(c, own_ids(), own_origin, int(EventKind.FORGET))
            return True

    def journal_done(self, through_jseq: int) -> None:
        """Chroma holds everything journalled up to ``through_jseq``: drop those rows."""
        with self._tx() as c:
            c.execute("DELETE FROM journal WHERE jseq <= ?", (through_jseq,))

    # -- events ---------------------------------------------------------------------------

    @staticmethod
    def _watermark(c: sqlite3.Connection, origin: str) -> int:
        row = c.execute("SELECT watermark FROM origins WHERE origin = ?", (origin,)).fetchone()
        return 0 if row is None else int(row[0])

    def watermark(self, origin: str) -> int:
        with self._lock:
            return self._watermark(self._conn, origin)

    def version_vector(self) -> dict[str, int]:
        with self._lock:
            rows = self._conn.execute("SELECT origin, watermark FROM origins").fetchall()
        return {origin: int(seq) for origin, seq in rows if seq > 0}

    def gc_floors(self) -> dict[str, int]:
        """Per origin, the highest seq of a tombstone collected (or known collected)."""
        with self._lock:
            rows = self._conn.execute("SELECT origin, gc_floor FROM origins").fetchall()
        return {origin: int(floor) for origin, floor in rows if floor > 0}

    def latest_event(self, memory_id: str) -> Event | None:
        with self._lock:
            row = self._conn.execute(
                "SELECT body FROM events WHERE memory_id = ? ORDER BY seq DESC LIMIT 1",
                (memory_id,),
            ).fetchone()
            return None if row is None else event_of(self._conn, row[0], self.sealer)

    def count_events(self, *, origin: str | None = None, kind: EventKind | None = None) -> int:
        """Retained events (of ``origin``, of ``kind``, when given)."""
        where = " AND ".join(c for c, v in (("origin = ?", origin), ("kind = ?", kind))
                             if v is not None) or "1"
        args = [v if not isinstance(v, EventKind) else int(v) for v in (origin, kind)
                if v is not None]
        with self._lock:
            row = self._conn.execute(f"SELECT COUNT(*) FROM events WHERE {where}",
                                     args).fetchone()
        return int(row[0])

    def count_lost_texts(self) -> int:
        with self._lock:
            return int(self._conn.execute("SELECT COUNT(*) FROM lost_texts").fetchone()[0])
