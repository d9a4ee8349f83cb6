"""The sidecar's port to its node: a ``typing.Protocol`` with two adapters.

- in process (``memnode serve``, the default): the node's ``memnode.replication.
  ReplicaBackend`` satisfies this protocol as it is;
- in another process (``memnode sidecar --node ADDR``, the Kubernetes shape):
  :class:`federation.replica_client.GrpcReplicaPort` speaks the node-local Replica API.

Both are synchronous and called from the sidecar's core thread only (``watch`` calls
back from another thread).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from federation.effects import Effect
from federation.events import Event, ModelId
from federation.messages import EventRun
from federation.replica import ReplicaSnapshot


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    model: ModelId
    public_key: bytes


@dataclass(frozen=True)
class PeerInfo:
    """What ``memnode status`` shows of a peer."""

    node_id: str
    address: str
    state: str  # alive | suspect | dead
    events_behind: int


class ReplicaPort(Protocol):
    def hello(self) -> NodeInfo:
        """Who the node is."""
        ...

    def snapshot(self) -> ReplicaSnapshot:
        """The compacted log (events without embeddings) and the marks, to start from."""
        ...

    def persist(self, effects: Sequence[Effect]) -> None:
        """Apply the core's effects in order, durably, before returning."""
        ...

    def version_vector(self) -> Mapping[str, int]:
        """EventSource: per origin, the highest seq the log can serve runs up to."""
        ...

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int
                  ) -> EventRun:
        """EventSource: retained events above ``after_seq`` (see federation.log)."""
        ...

    def watch(self, after_seq: int, on_events: Callable[[list[Event]], None]
              ) -> Callable[[], None]:
        """Call ``on_events`` with the node's own events above ``after_seq``, then with
        each new one once durable. Returns a function that stops watching."""
        ...

    def report_peers(self, peers: Sequence[PeerInfo]) -> None:
        """Tell the node what its peers look like (for its Status)."""
        ...
