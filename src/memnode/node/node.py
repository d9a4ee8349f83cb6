"""The node: memories on local disk, written through a signed, durable log.

Domain code only: the gRPC servicer converts messages and calls this; nothing here knows
about gRPC. Writes are serialised (one origin, one seq order); reads run concurrently.

Write path of a persisted memory: validate -> redact PII -> embed -> (write lock,
group commit) sign events -> journal + events of every queued write committed in one
synced SQLite transaction -> into the index tail (visible to reads) -> answer the
client; the indexer moves the tail into Chroma in bulk and drops the journal rows. A
crash anywhere after the commit is repaired at the next start by rebuilding the tail
from the journal; before it, nothing was acknowledged.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from federation.config import FederationConfig
from federation.effects import Effect
from federation.errors import MetadataKeyError
from federation.events import Event, EventKind, ModelId, SharedPrivacy, local_id_of, origin_of, sign
from federation.io.metakey import MetadataKey
from federation.validate import Limits, check_event
from memnode.config import NodeConfig
from memnode.embedders import Embedder, load_embedder
from memnode.errors import (
    DataDirError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from memnode.node import validation
from memnode.node.commits import CommitQueue, Overlay, Pending, Staged
from memnode.node.domain import Hit, LocalRecord, Metadata, MetaValue, Privacy, ReplicaRecord
from memnode.node.ephemeral import EphemeralStore
from memnode.node.identity import Identity, load_or_create
from memnode.node.ingest import RememberInput, RememberResult, admit, prepare
from memnode.node.metrics import NodeMetrics
from memnode.storage.chroma import ChromaStore
from memnode.storage.durable import Durable
from memnode.storage.eventlog import EventLog
from memnode.storage.indexer import Indexer
from memnode.storage.lock import DataDirLock
from memnode.storage.tail import IndexTail
from memnode.storage.visible import Page, VisibleStore, list_pages

log = logging.getLogger("memnode.node")

#: Bumped when the door's rules change: the log is then scanned once more at start.
ADMISSION_VERSION = "1"
#: How long a new listing waits for the indexer to move the tail into Chroma.
LIST_SETTLE_SECONDS = 5.0


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


@dataclass(frozen=True)
class Recall:
    hits: list[Hit]
    embed_seconds: float
    search_seconds: float


class Node:
    def __init__(
        self,
        config: NodeConfig,
        *,
        embedder: Embedder | None = None,
        metrics: NodeMetrics | None = None,
        clock_ms: Callable[[], int] = wall_clock_ms,
        federation: FederationConfig | None = None,
    ) -> None:
        self.config = config
        self.federation = federation or FederationConfig()
        self.metadata_limits = validation.MetadataLimits.of(self.federation)
        self.metrics = metrics or NodeMetrics()
        self._clock_ms = clock_ms
        self.started_at = time.monotonic()
        data_dir = config.data_dir
        if data_dir.exists() and not data_dir.is_dir():
            raise DataDirError(f"{data_dir} is not a directory")
        data_dir.mkdir(parents=True, exist_ok=True)
        self._lock = DataDirLock(data_dir)
        self._lock.acquire()
        try:
            self._open(config, embedder)
        except BaseException:
            self._lock.release()
            raise

    def _open(self, config: NodeConfig, embedder: Embedder | None) -> None:
        data_dir = config.data_dir
        self.identity: Identity
        self.identity, created = load_or_create(data_dir)
        self.node_id = self.identity.node_id
        self.log = EventLog.open(data_dir, synchronous=config.sync.upper())
        if not created and self.log.meta("node_id") not in (None, self.node_id):
            raise DataDirError(f"{data_dir}: log belongs to another node; refusing to start")
        self.embedder = embedder or load_embedder(config.embedder)
        self.model: ModelId = self.embedder.model
        recorded = self.log.meta("model")
        if recorded is not None and recorded != str(self.model):
            raise DataDirError(
                f"{data_dir} holds vectors of model {recorded}; this node runs {self.model}. "
                "Start with the same --embedder, or use a new data directory."
            )
        self.limits = Limits.from_config(self.federation, self.model)
        self._drop_unreplicable_own_events()
        self.log.set_meta("node_id", self.node_id)
        self.log.set_meta("model", str(self.model))
        self.store = ChromaStore(data_dir, self.model.dim)
        try:
            self.metakey = MetadataKey.load(config.metadata_key_file, os.environ)
        except MetadataKeyError as exc:
            raise InvalidArgument(str(exc)) from exc
        if self.metakey.is_development:
            log.warning("metadata key: %s; set one for a real federation",
                        self.metakey.describe())
        self.ephemeral = EphemeralStore(self._clock_ms, config.ephemeral_max_items)
        self._write_lock = threading.Lock()
        self.tail = IndexTail(self.model.dim, max_items=config.index_tail_max_items,
                              max_bytes=config.index_tail_max_bytes)
        self.visible = VisibleStore(self.store, self.tail)
        self.durable = Durable(self.log, self.store, self.tail)
        self._commits = CommitQueue(self._write_lock, self._run_group)
        self._seq = self.log.watermark(self.node_id)
        self._event_listeners: list[Callable[[list[Event]], None]] = []
        self.metrics.track_memories("local", self.visible.count_local)
        self.metrics.track_memories("replicas", self.visible.count_replicas)
        self.metrics.track_memories("ephemeral", self.ephemeral.count)
        self.metrics.track_tail(self.tail)
        with self._write_lock:
            rebuilt = self.durable.rebuild()
        if rebuilt:
            self.metrics.journal_replayed.inc(rebuilt)
            log.info("rebuilt the index tail from %d journal entries", rebuilt)
        self.indexer = Indexer(self.tail, self.store, self.log,
                               batch_max=config.index_batch_max,
                               batch_window=config.index_batch_window_seconds,
                               on_batch=self.metrics.observe_index_batch)
        self.indexer.start()

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        """Index what the tail holds, then close the log (the journal keeps anything the
        indexer could not finish)."""
        self.indexer.stop()
        with self._write_lock:
            self.log.close()
        self._lock.release()

    def _drop_unreplicable_own_events(self) -> None:
        """Once per log: own events that the mesh would refuse (written before the node
        checked writes at the door) leave the log, so its runs vouch for their seqs as
        compacted and peers go on past them. Their memories stay here, unreplicated
        (an update with valid metadata replicates them again)."""
        if self.log.meta("admission") == ADMISSION_VERSION:
            return
        for event, reason in self.log.drop_own_events(
                self.node_id, lambda e: check_event(e, self.limits)):
            self.metrics.own_events_unreplicable.labels(reason=reason.value).inc()
            log.warning("own event %d (memory %s) could never replicate (%s): dropped from "
                        "the log; the memory stays on this node only", event.seq,
                        event.memory_id, reason.value)
        self.log.set_meta("admission", ADMISSION_VERSION)

    def persist_replication(self, effects: Sequence[Effect]) -> None:
        """The replication core's effects: durably into the log, then into the index tail
        (visible at once; the indexer moves them into Chroma). Waits while the tail is full."""
        if self.log.is_noop(effects):
            return  # e.g. the marks of our own events, which the commit already wrote
        with self._write_lock:
            while not self.tail.wait_for_room(self.config.index_backpressure_seconds or 1.0):
                log.warning("index tail full (%d changes): replication waits for the "
                            "indexer", self.tail.count())
            self.durable.persist(effects)

    def watch_events(self, after_seq: int, on_events: Callable[[list[Event]], None]
                     ) -> Callable[[], None]:
        """Own events with seq > ``after_seq``: those in the log, then new ones as they
        are committed (in seq order, none twice). Returns a function that stops it."""
        sent = after_seq
        lock = threading.Lock()

        def deliver(events: list[Event]) -> None:
            nonlocal sent
            with lock:
                fresh = [e for e in events if e.seq > sent]
                if fresh:
                    sent = fresh[-1].seq
                    on_events(fresh)

        with self._write_lock:  # no commit between the catch-up read and the subscription
            self._event_listeners.append(deliver)
            while True:
                run = self.log.run_after(self.node_id, sent, 1000, 1 << 62)
                if not run.events:
                    break
                deliver(list(run.events))

        def stop() -> None:
            with self._write_lock:
                if deliver in self._event_listeners:
                    self._event_listeners.remove(deliver)

        return stop

    # -- writes -------------------------------------------------------------------------

    def _new_id(self) -> str:
        suffix = base64.b32encode(secrets.token_bytes(8)).decode().rstrip("=").lower()
        return f"{self.node_id}/{suffix}"

    def _event(self, kind: EventKind, record: LocalRecord) -> Event:
        self._seq += 1
        full = kind != EventKind.FORGET
        event_privacy = SharedPrivacy(int(record.privacy))
        event = Event(
            origin=self.node_id,
            seq=self._seq,
            kind=kind,
            local_id=local_id_of(record.id),
            timestamp_ms=record.updated_at_ms,
            privacy=event_privacy,
            model=self.model if full else None,
            embedding=record.embedding.astype("<f4").tobytes() if full else b"",
            metadata=self.metakey.shared_form(record.metadata, event_privacy) if full else {},
        )
        return sign(event, self.identity.key)

    def _run_group(self, group: list[Pending[object]]) -> None:
        """Commit a group of queued writes (CommitQueue, under the write lock): wait for
        room in the tail, stage each write in order (seqs, signatures, the door; a write
        that fails gives its seqs back), then one durable commit for all."""
        cfg = self.config
        if not self.tail.wait_for_room(cfg.index_backpressure_seconds):
            error = ResourceExhausted(
                f"the index tail is full ({self.tail.count()} changes not yet in Chroma, "
                f"limits {cfg.index_tail_max_items} changes / {cfg.index_tail_max_bytes} "
                f"bytes) for {cfg.index_backpressure_seconds}s: the indexer is behind")
            for pending in group:
                pending.fail(error)
            return
        overlay: Overlay = {}
        staged = Staged()
        accepted: list[tuple[Pending[object], object]] = []
        first_seq = self._seq
        for pending in group:
            seq = self._seq
            try:
                mine, result = pending.write(overlay)
                admit(mine.events, self.limits, self.metrics)
            except BaseException as exc:  # noqa: BLE001 - handed to its writer
                self._seq = seq
                pending.fail(exc)
                continue
            overlay.update({r.id: r for r in mine.puts})
            overlay.update(dict.fromkeys(mine.forgets))
            staged.extend(mine)
            accepted.append((pending, result))
        committed = self.log.watermark(self.node_id)
        try:
            if staged.puts or staged.forgets:
                self.durable.commit_local(staged.puts, staged.forgets, staged.events,
                                          staged.changed)
        except BaseException as exc:
            if not staged.events or self.log.watermark(self.node_id) == committed:
                self._seq = first_seq
            else:
                self._announce(staged.events)
            for pending, _ in accepted:
                pending.fail(exc)
            return
        for after in staged.after:
            after()
        self._announce(staged.events)
        for pending, result in accepted:
            pending.succeed(result)

    def _announce(self, events: list[Event]) -> None:
        for event in events:
            self.metrics.events_appended.labels(kind=event.kind.name.lower()).inc()
        if events:
            for listener in self._event_listeners:
                listener(events)

    def remember(self, items: Sequence[RememberInput]) -> list[RememberResult]:
        """Store a batch atomically: every item is written or none is."""
        cfg = self.config
        batch = prepare(items, cfg, self.metadata_limits, self.embedder, self.metrics,
                        self._clock_ms(), self._new_id)
        ephemeral = [r for r in batch.records if r.privacy == Privacy.EPHEMERAL]
        persisted = [r for r in batch.records if r.privacy != Privacy.EPHEMERAL]
        if ephemeral and self.ephemeral.count() + len(ephemeral) > cfg.ephemeral_max_items:
            raise ResourceExhausted(
                f"ephemeral store is full ({cfg.ephemeral_max_items} memories)"
            )

        def write(overlay: Overlay) -> tuple[Staged, None]:
            events = [self._event(EventKind.PUT, r) for r in persisted if r.privacy.replicated]
            return Staged(puts=list(persisted), events=events,
                          after=[lambda: [self.ephemeral.put(r) for r in ephemeral]]), None

        self._commits.submit(write)
        return [RememberResult(r.id, n)
                for r, n in zip(batch.records, batch.redactions, strict=True)]

    def update(self, memory_id: str, metadata: Mapping[str, object],
               remove_keys: Sequence[str] = ()) -> LocalRecord:
        validation.memory_id(memory_id)

        def write(overlay: Overlay) -> tuple[Staged, LocalRecord]:
            record = self._own_record(memory_id, overlay)
            merged: dict[str, object] = {k: v for k, v in record.metadata.items()
                                         if k not in set(remove_keys)}
            merged.update(metadata)
            record.metadata = validation.metadata(merged, self.metadata_limits)
            record.updated_at_ms = self._clock_ms()
            if record.privacy == Privacy.EPHEMERAL:
                return Staged(after=[lambda: self.ephemeral.put(record)]), record
            events = [self._event(EventKind.UPDATE, record)] if record.privacy.replicated else []
            return Staged(puts=[record], events=events, changed={memory_id}), record

        result: LocalRecord = self._commits.submit(write)
        return result

    def forget(self, memory_id: str) -> None:
        validation.memory_id(memory_id)

        def write(overlay: Overlay) -> tuple[Staged, None]:
            record = self._own_record(memory_id, overlay)
            if record.privacy == Privacy.EPHEMERAL:
                return Staged(after=[lambda: self.ephemeral.forget(memory_id)]), None
            record.updated_at_ms = self._clock_ms()
            events = [self._event(EventKind.FORGET, record)] if record.privacy.replicated else []
            return Staged(forgets=[memory_id], events=events), None

        self._commits.submit(write)

    def _own_record(self, memory_id: str, overlay: Overlay) -> LocalRecord:
        if memory_id in overlay:  # changed by an earlier write of the same group
            staged = overlay[memory_id]
            if staged is None:
                raise NotFound(f"no memory {memory_id}")
            return replace(staged, metadata=dict(staged.metadata))
        record = self.ephemeral.get(memory_id) or self.visible.get_local(memory_id)
        if record is not None:
            return record
        origin = origin_of(memory_id)
        if origin != self.node_id and self.visible.get_replica(memory_id) is not None:
            raise FailedPrecondition(
                f"memory {memory_id} belongs to node {origin}; only its origin can change it"
            )
        raise NotFound(f"no memory {memory_id}")

    # -- reads --------------------------------------------------------------------------

    def recall(self, query: str, k: int = 10, *, mesh: bool = False,
               where: Mapping[str, object] | None = None, embedding: bytes = b"") -> Recall:
        cfg = self.config
        k = validation.recall_k(k, cfg.max_recall_k)
        wanted: Metadata = validation.metadata(where or {}, self.metadata_limits)
        started = time.perf_counter()
        if embedding:
            vec = validation.embedding(embedding, self.model.dim)
        else:
            validation.decode_text(query.encode(), cfg.max_text_bytes, what="query")
            vec = self.embedder.embed([query])[0]
        embedded = time.perf_counter()
        self.metrics.embed_seconds.observe(embedded - started)
        replica_where: dict[str, list[MetaValue]] = {
            key: self.metakey.match_values(value) for key, value in wanted.items()
        }
        hits = self.visible.query(vec, k, include_replicas=mesh, where_local=wanted,
                                  where_replica=replica_where)
        extra = self.ephemeral.query(vec, k, wanted)
        if extra:
            hits = sorted(hits + extra, key=lambda h: h.score, reverse=True)[:k]
        return Recall(hits, embedded - started, time.perf_counter() - embedded)

    def get(self, memory_id: str) -> LocalRecord | ReplicaRecord:
        validation.memory_id(memory_id)
        found = (self.ephemeral.get(memory_id) or self.visible.get_local(memory_id)
                 or self.visible.get_replica(memory_id))
        if found is None:
            raise NotFound(f"no memory {memory_id}")
        return found

    def list(self, page_size: int, token: str, *, mesh: bool = False) -> Page:
        """Pages over ephemeral, then own persisted, then (mesh) replica memories."""
        return list_pages(self.visible, self.ephemeral.records, page_size, token, mesh=mesh,
                          settle=lambda: self.indexer.flush(LIST_SETTLE_SECONDS))

    def version_vector(self) -> dict[str, int]:
        return self.log.version_vector()

    def now_ms(self) -> int:
        return self._clock_ms()

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

