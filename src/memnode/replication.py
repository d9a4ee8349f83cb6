"""The node's side of replication: what the sidecar reaches through the Replica API.

The sidecar (in-process or in its own container) runs the pure replication core; the
node owns the data. This object is the in-process ReplicaPort (federation.ports), and
the gRPC Replica servicer (memnode.replica_servicer) exposes the same methods on a
loopback or unix socket for a sidecar in its own process.

- ``hello``: node id, model identity, public key.
- ``snapshot``: the compacted log (light events) and the marks, to restart the core.
- ``persist``: the core's effects, in order, in one durable log transaction; then the
  replica collection in Chroma is brought in line (journalled, replayed after a crash).
- ``run_after`` / ``version_vector``: the log as the core's EventSource.
- ``watch``: this node's own new events, from a seq on, as they become durable.
- ``report_peers``: the sidecar's view of its peers, shown by ``memnode status``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

import numpy as np

from federation.effects import DeleteReplica, Effect, UpsertReplica
from federation.events import Event, EventKind
from federation.messages import EventRun
from federation.ports import NodeInfo, PeerInfo
from federation.replica import ReplicaSnapshot
from memnode.domain import Privacy, ReplicaRecord
from memnode.eventlog import EventLog
from memnode.store import ChromaStore

if TYPE_CHECKING:
    from memnode.node import Node


def replica_record(event: Event) -> ReplicaRecord:
    return ReplicaRecord(
        id=event.memory_id, origin=event.origin,
        embedding=np.frombuffer(event.embedding, dtype="<f4").astype(np.float32),
        metadata=dict(event.metadata), privacy=Privacy(int(event.privacy)),
        created_at_ms=event.timestamp_ms, updated_at_ms=event.timestamp_ms,
    )


def sync_replicas(log: EventLog, store: ChromaStore, memory_ids: Sequence[str]) -> None:
    """Make each memory's replica in Chroma match its newest event in the log
    (PUT/UPDATE: upsert; FORGET or nothing: delete). Idempotent."""
    upserts: dict[str, Event] = {}
    deletes: list[str] = []
    for memory_id in dict.fromkeys(memory_ids):
        event = log.latest_event(memory_id)
        if event is not None and event.kind != EventKind.FORGET:
            upserts[memory_id] = event
        else:
            deletes.append(memory_id)
    if upserts:
        changed = {m for m, e in upserts.items() if e.kind == EventKind.UPDATE}
        store.upsert_replicas([replica_record(e) for e in upserts.values()], changed)
    if deletes:
        store.delete_replicas(deletes)


def apply_replica_effects(store: ChromaStore, effects: Sequence[Effect]) -> None:
    """Bring Chroma's replicas in line with a batch of effects just written to the log:
    the last effect on a memory wins (what :func:`sync_replicas` would read back from
    the log, without reading it back)."""
    final: dict[str, Event | None] = {}
    for effect in effects:
        if isinstance(effect, UpsertReplica):
            final[effect.event.memory_id] = effect.event
        elif isinstance(effect, DeleteReplica):
            final[effect.memory_id] = None
    upserts = [e for e in final.values() if e is not None]
    if upserts:
        changed = {e.memory_id for e in upserts if e.kind == EventKind.UPDATE}
        store.upsert_replicas([replica_record(e) for e in upserts], changed)
    deletes = [m for m, e in final.items() if e is None]
    if deletes:
        store.delete_replicas(deletes)


class ReplicaBackend:
    """Thread-safe: the node serialises writes; reads go to the log."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._peers: list[PeerInfo] = []
        self._lock = threading.Lock()

    def hello(self) -> NodeInfo:
        return NodeInfo(self.node.node_id, self.node.model, self.node.identity.public_key)

    def snapshot(self) -> ReplicaSnapshot:
        events, marks = self.node.log.snapshot()
        return ReplicaSnapshot(events=events, marks=marks)

    def persist(self, effects: Sequence[Effect]) -> None:
        self.node.persist_replication(effects)

    def version_vector(self) -> Mapping[str, int]:
        return self.node.log.version_vector()

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int
                  ) -> EventRun:
        return self.node.log.run_after(origin, after_seq, max_events, max_bytes)

    def watch(self, after_seq: int, on_events: Callable[[list[Event]], None]
              ) -> Callable[[], None]:
        """Call ``on_events`` with own events of seq > ``after_seq``: first those already
        in the log, then new ones as they are committed. Returns a function to stop."""
        return self.node.watch_events(after_seq, on_events)

    def report_peers(self, peers: Sequence[PeerInfo]) -> None:
        with self._lock:
            self._peers = list(peers)

    def peers(self) -> list[PeerInfo]:
        with self._lock:
            return list(self._peers)
