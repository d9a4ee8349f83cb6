"""The node: memories on local disk, written through a signed, durable log.

Domain code only: the gRPC servicer converts messages and calls this; nothing here knows
about gRPC. Writes are serialised (one origin, one seq order); reads run concurrently.

Write path of a persisted memory: validate -> redact PII -> embed -> (commit queue,
write lock) sign events -> journal + events of every queued write in one synced SQLite
transaction -> into the index tail (visible to reads) -> answer the client; the indexer
moves the tail into Chroma in bulk and drops the journal rows. A crash after the commit
is repaired at start by rebuilding the tail from the journal; before it, nothing was
acknowledged.
"""

from __future__ import annotations

import base64
import logging
import os
import secrets
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from federation.config import FederationConfig
from federation.effects import Effect, OwnSeqLearned
from federation.errors import MetadataKeyError
from federation.events import Event, EventKind, ModelId, SharedPrivacy, local_id_of, origin_of, sign
from federation.io.cpu import StageCpu
from federation.io.keyring import KeyFile
from federation.validate import Limits
from memnode._version import __version__
from memnode.config import NodeConfig
from memnode.embedders import Embedder, load_embedder
from memnode.errors import (
    DataDirError,
    FailedPrecondition,
    InvalidArgument,
    NotFound,
    ResourceExhausted,
)
from memnode.node import commits, reads, rekey, restore, subject, validation
from memnode.node.commits import Overlay, Staged
from memnode.node.domain import LocalRecord, Privacy, ReplicaRecord
from memnode.node.ephemeral import EphemeralStore
from memnode.node.health import WriteHealth
from memnode.node.identity import KEY_FILE, Identity, load_or_create
from memnode.node.ingest import RememberInput, RememberResult, prepare
from memnode.node.metrics import NodeMetrics
from memnode.node.paging import Page
from memnode.node.reads import Recall
from memnode.node.restore import RestoreState
from memnode.storage import backup
from memnode.storage.atrest import open_atrest
from memnode.storage.chroma import ChromaStore
from memnode.storage.durable import Durable, StoreWriteError
from memnode.storage.eventlog import EventLog
from memnode.storage.indexer import Indexer
from memnode.storage.lock import DataDirLock
from memnode.storage.tail import IndexTail
from memnode.storage.visible import VisibleStore

log = logging.getLogger("memnode.node")

#: Bumped when the door's rules change: the log is then scanned once more at start.
ADMISSION_VERSION = "1"
#: How long a backup waits for the indexer to move the tail into Chroma.
BACKUP_FLUSH_SECONDS = 5.0


def wall_clock_ms() -> int:
    return time.time_ns() // 1_000_000


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
        sealer = open_atrest(data_dir, config.master_key_file, os.environ,  # before any write
                             encrypt=config.encrypt_at_rest)
        self.identity: Identity
        self.identity, created = load_or_create(data_dir)
        self.node_id = self.identity.node_id
        self.log = EventLog.open(data_dir, synchronous=config.sync.upper(), sealer=sealer)
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
        validation.drop_unreplicable_own_events(self.log, self.node_id, self.limits,
                                                self.metrics, ADMISSION_VERSION)
        self.log.set_meta("node_id", self.node_id)
        self.log.set_meta("model", str(self.model))
        self.restore = RestoreState(self.log, self.metrics,
                                    without_peers=config.restore_without_peers)
        self.store = ChromaStore(data_dir, self.model.dim, sealer,
                                 process=config.chroma == "process")
        try:
            self.metakey = KeyFile(config.metadata_key_file, os.environ)
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
        self.durable = Durable(self.log, self.store, self.tail, self.node_id)
        self.health = WriteHealth(self.metrics, self.data_dir, config.min_free_bytes)
        self._commits = commits.CommitQueue(
            self._write_lock, lambda group: self._commit_group(group))
        self._seq = self.log.watermark(self.node_id)
        self._event_listeners: list[Callable[[list[Event]], None]] = []
        self.metrics.track_memories("local", self.visible.count_local)
        self.metrics.track_memories("replicas", self.visible.count_replicas)
        self.metrics.track_memories("ephemeral", self.ephemeral.count)
        self.metrics.track_tail(self.tail)
        self.cpu = StageCpu()  # ingest, write, persist here; index in the indexer
        self.metrics.track_stages(self.cpu)
        with self._write_lock:
            try:
                rebuilt = self.durable.rebuild()
            except Exception as exc:  # e.g. a full disk: stay up, serve reads, retry
                self.durable.defer_replay()
                self.health.failed(exc, committed=True, what="store")
                rebuilt = 0
        if rebuilt:
            self.metrics.journal_replayed.inc(rebuilt)
            log.info("rebuilt the index tail from %d journal entries", rebuilt)
        self.indexer = Indexer(self.tail, self.store, self.log,
                               batch_max=config.index_batch_max,
                               batch_window=config.index_batch_window_seconds,
                               on_batch=self.metrics.observe_index_batch,
                               on_error=lambda exc: commits.indexer_failed(self, exc),
                               on_recovered=lambda: commits.indexer_ok(self),
                               room=(self.data_dir, config.min_free_bytes), cpu=self.cpu)
        self.indexer.start()
        self.republisher = rekey.Republisher(self)
        self.metrics.registry.register(rekey.KeyCollector(self, self.republisher))
        self.republisher.start()

    # -- lifecycle ----------------------------------------------------------------------

    def close(self) -> None:
        self.republisher.stop()
        self.indexer.stop()
        with self._write_lock:
            self.log.close()
            self.store.close()
        self._lock.release()

    def _commit_group(self, group: list[commits.Pending[object]]) -> None:
        with self.cpu.stage("write"):
            commits.group_commit(self, group)

    def persist_replication(self, effects: Sequence[Effect]) -> None:
        """The replication core's effects: durably into the log, then into the index
        tail (visible at once; indexed in bulk). Waits while the tail is full."""
        if self.log.is_noop(effects):
            return  # e.g. the marks of our own events, which the commit already wrote
        with self._write_lock:
            self.tail.wait_until_room(self.config.index_backpressure_seconds or 1.0)
            own: dict[str, LocalRecord] = {}
            lost: list[tuple[str, int]] = []
            ends_restore = any(isinstance(e, OwnSeqLearned) for e in effects)
            if self.restore.active:
                own, lost = self.restore.own_records(effects, self.node_id,
                                                     self.visible.get_local)
            elif ends_restore or restore.touches_own(effects, self.node_id):
                raise FailedPrecondition("effects on this node's own memories, but it "
                                         "is not restoring")
            try:
                with self.cpu.stage("persist"):
                    self.durable.persist(effects, self.node_id, own, lost)
            except StoreWriteError as exc:
                raise self.health.failed(exc, committed=exc.committed, what=exc.what) from exc
            if not self.durable.apply_failed:
                self.health.ok()
            if self.restore.active:
                self._seq = self.log.watermark(self.node_id)
                if ends_restore:
                    self.restore.finished()

    def probe_writes(self) -> str | None:
        """While writes are failing, try again (WriteHealth.probe). Returns the problem
        left, None if none."""
        if self.health.problem is None:
            return None
        with self._write_lock:
            self.health.probe(self.durable)
        return self.health.problem

    def _writable(self) -> None:
        """Before a new write (write lock held): refuse while restoring or while the
        store cannot write."""
        self.restore.refuse()
        if self.durable.apply_failed:
            try:
                self.durable.probe()
            except StoreWriteError as exc:
                raise self.health.failed(exc, committed=False, what=exc.what) from None

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

    def _announce(self, events: list[Event]) -> None:
        for event in events:
            self.metrics.events_appended.labels(kind=event.kind.name.lower()).inc()
        if events:
            for listener in self._event_listeners:
                listener(events)

    def remember(self, items: Sequence[RememberInput]) -> list[RememberResult]:
        """Store a batch atomically: every item is written or none is."""
        cfg = self.config
        with self.cpu.stage("ingest"):  # validate, redact, embed
            batch = prepare(items, cfg, self.metadata_limits, self.embedder, self.metrics,
                            self._clock_ms(), self._new_id)
        ephemeral = [r for r in batch.records if r.privacy == Privacy.EPHEMERAL]
        persisted = [r for r in batch.records if r.privacy != Privacy.EPHEMERAL]
        def write(overlay: Overlay) -> tuple[Staged, None]:
            # All or nothing: ephemeral ones first (a full store refuses the whole
            # batch), taken back if the persisted ones fail.
            if ephemeral and not self.ephemeral.put_all(ephemeral):
                raise ResourceExhausted(
                    f"ephemeral store is full ({cfg.ephemeral_max_items} memories): "
                    f"{len(ephemeral)} more do not fit; forget some or wait for TTLs")
            events = [self._event(EventKind.PUT, r) for r in persisted if r.privacy.replicated]
            return Staged(puts=list(persisted), events=events,
                          undo=[lambda: self.ephemeral.remove([r.id for r in ephemeral])]), None

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
                if not self.ephemeral.put(record):  # it expired meanwhile and the store is full
                    raise NotFound(f"no memory {memory_id} (it expired)")
                return Staged(), record
            events = [self._event(EventKind.UPDATE, record)] if record.privacy.replicated else []
            return Staged(puts=[record], events=events, changed={memory_id}), record

        result: LocalRecord = self._commits.submit(write)
        return result

    def forget(self, memory_id: str) -> None:
        validation.memory_id(memory_id)

        def write(overlay: Overlay) -> tuple[Staged, None]:
            record = self._own_record(memory_id, overlay)
            if record.privacy == Privacy.EPHEMERAL:
                self.ephemeral.forget(memory_id)
                return Staged(), None
            record.updated_at_ms = self._clock_ms()
            events = [self._event(EventKind.FORGET, record)] if record.privacy.replicated else []
            return Staged(forgets=[memory_id], events=events), None

        self._commits.submit(write)

    def forget_where(self, where: Mapping[str, object]) -> int:
        """Forget every own memory whose metadata equals ``where`` (node.subject)."""
        return subject.forget_where(self, where)

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

    # -- reads (memnode.node.reads) -----------------------------------------------------

    def recall(self, query: str, k: int = 10, *, mesh: bool = False,
               where: Mapping[str, object] | None = None, embedding: bytes = b"") -> Recall:
        return reads.recall(self, query, k, mesh=mesh, where=where, embedding=embedding)

    def get(self, memory_id: str) -> LocalRecord | ReplicaRecord:
        return reads.get(self, memory_id)

    def list(self, page_size: int, token: str, *, mesh: bool = False,
             where: Mapping[str, object] | None = None) -> Page:
        """Pages over ephemeral, then own persisted, then (mesh) replica memories (those
        whose metadata equals ``where``, matched as recall does)."""
        return reads.page(self, page_size, token, mesh=mesh, where=where)

    def backup(self, out: Path) -> dict[str, Any]:
        """An online, consistent backup into ``out`` (storage.backup); its manifest."""
        with self._write_lock:  # the tail in Chroma first: the manifest counts Chroma's
            self.indexer.flush(BACKUP_FLUSH_SECONDS)
            with self.tail.indexing:  # and no batch moves Chroma's rows while it pages
                snapshot = backup.take_snapshot(self.log, self.store, out)
        log.info("backup snapshot of %d own memories took %.2f s (writes paused)",
                 snapshot.own_memories, snapshot.seconds)
        return backup.finish(out, self.data_dir / KEY_FILE, self.config.metadata_key_file,
                             snapshot, f"memnode {__version__}, online")

    def version_vector(self) -> dict[str, int]:
        return self.log.version_vector()

    def now_ms(self) -> int:
        return self._clock_ms()

    def uptime_seconds(self) -> float:
        return time.monotonic() - self.started_at

    @property
    def data_dir(self) -> Path:
        return self.config.data_dir

