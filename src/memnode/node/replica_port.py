"""The node's side of replication: what the sidecar reaches through the Replica API.

The sidecar (in-process or in its own container) runs the pure replication core; the
node owns the data. This object is the in-process ReplicaPort (federation.ports), and
the gRPC Replica servicer (memnode.api.replica_servicer) exposes the same methods on a
loopback or unix socket for a sidecar in its own process.

- ``hello``: node id, model identity, public key.
- ``restart_state``: the compacted log (light events), the marks and the erasure orders
  kept, to restart the core.
- ``persist``: the core's effects, in order, in one durable log transaction; then the
  replica collection in Chroma is brought in line (journalled, replayed after a crash).
- ``run_after`` / ``version_vector``: the log as the core's EventSource.
- ``watch``: this node's own new events, from a seq on, as they become durable.
- ``on_persisted``: a function called after each persist (the change feed's wake-up).
- ``report_peers``: the sidecar's view of its peers, shown by ``memnode status``.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING

from federation.effects import Effect
from federation.events import Event
from federation.messages import EventRun
from federation.ports import NodeInfo, PeerInfo
from federation.replica import RestartState

if TYPE_CHECKING:
    from memnode.node.node import Node


class ReplicaBackend:
    """Thread-safe: the node serialises writes; reads go to the log."""

    def __init__(self, node: Node) -> None:
        self.node = node
        self._peers: list[PeerInfo] = []
        self._lock = threading.Lock()
        self._persisted: list[Callable[[], None]] = []

    def hello(self) -> NodeInfo:
        return NodeInfo(self.node.node_id, self.node.model, self.node.identity.public_key,
                        restoring=self.node.restore.active)

    def restart_state(self) -> RestartState:
        events, marks = self.node.log.restart_state()
        return RestartState(events=events, marks=marks,
                            erasure_record=(self.node.log.meta("erasures") or ""
                                            ).encode("latin-1"))

    def persist(self, effects: Sequence[Effect]) -> None:
        self.node.persist_replication(effects)
        for listener in self._persisted:
            listener()

    def on_persisted(self, listener: Callable[[], None]) -> None:
        self._persisted.append(listener)

    def version_vector(self) -> Mapping[str, int]:
        return self.node.log.version_vector()

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int
                  ) -> EventRun:
        return self.node.log.run_after(origin, after_seq, max_events, max_bytes)

    def watch(self, after_seq: int, on_events: Callable[[list[Event]], None]
              ) -> Callable[[], None]:
        """Call ``on_events`` with own events of seq > ``after_seq``: first those already
        in the log, then new ones as they are committed (in seq order, none twice).
        Returns a function to stop."""
        node = self.node
        sent = after_seq
        lock = threading.Lock()

        def deliver(events: list[Event]) -> None:
            nonlocal sent
            with lock:
                fresh = [e for e in events if e.seq > sent]
                if fresh:
                    sent = fresh[-1].seq
                    on_events(fresh)

        with node._write_lock:  # no commit between the catch-up read and the subscription
            node._event_listeners.append(deliver)
            while True:
                run = node.log.run_after(node.node_id, sent, 1000, 1 << 62)
                if not run.events:
                    break
                deliver(list(run.events))

        def stop() -> None:
            with node._write_lock:
                if deliver in node._event_listeners:
                    node._event_listeners.remove(deliver)

        return stop

    def report_peers(self, peers: Sequence[PeerInfo]) -> None:
        with self._lock:
            self._peers = list(peers)

    def peers(self) -> list[PeerInfo]:
        with self._lock:
            return list(self._peers)
