"""The sidecar's port to its node: a ``typing.Protocol`` with two adapters.

- in process (``memnode serve``, the default): the node's ``memnode.node.replica_port.
  ReplicaBackend`` satisfies this protocol as it is;
- in another process (``memnode sidecar --node ADDR``, the Kubernetes shape):
  :class:`federation.io.replica_client.GrpcReplicaPort` speaks the node-local Replica API.

Both are synchronous and called from the sidecar's core thread only (``watch`` calls
back from another thread).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol

from federation.effects import Effect
from federation.events import Event, ModelId
from federation.messages import EventRun, Message
from federation.replica import RestartState


@dataclass(frozen=True)
class NodeInfo:
    node_id: str
    model: ModelId
    public_key: bytes
    restoring: bool = False  # restored from a backup: learning its own seq from peers


@dataclass(frozen=True)
class PeerInfo:
    """What ``memnode status`` shows of a peer."""

    node_id: str
    address: str
    state: str  # alive | suspect | dead
    events_behind: int
    found_by: str = ""  # static | zeroconf | dns:NAME (empty: learnt from gossip)


class ReplicaPort(Protocol):
    def hello(self) -> NodeInfo:
        """Who the node is."""
        ...

    def restart_state(self) -> RestartState:
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
        """EventSource: retained events above ``after_seq`` (see federation.eventsource)."""
        ...

    def watch(self, after_seq: int, on_events: Callable[[list[Event]], None]
              ) -> Callable[[], None]:
        """Call ``on_events`` with the node's own events above ``after_seq``, then with
        each new one once durable. Returns a function that stops watching."""
        ...

    def report_peers(self, peers: Sequence[PeerInfo]) -> None:
        """Tell the node what its peers look like (for its Status)."""
        ...


@dataclass(frozen=True)
class Announcement:
    """What this sidecar may tell a discovery mechanism about itself."""

    node_id: str
    address: str  # HOST:PORT peers should dial for gossip
    federation_id: str  # the CA certificate's SHA-256 fingerprint (hex), or "insecure"
    protocol_version: int


class Discovery(Protocol):
    """Proposes candidate peer addresses. It never admits a peer: the sidecar asks each
    candidate who it is (Identify, over mTLS when on) and only then tells the core.

    Adapters live in ``federation.io.discovery`` (static, zeroconf, dns); the sidecar
    takes a list of them. ``candidates`` is called from the sidecar's threads at any
    time and must be cheap and thread-safe; ``on_change`` may be called from any
    thread of the adapter's when the set changes (the sidecar then re-reads it).
    """

    @property
    def name(self) -> str:
        """How a peer was found, for ``memnode status`` ("static", "zeroconf",
        "dns:NAME")."""
        ...

    def start(self, me: Announcement, on_change: Callable[[], None]) -> None:
        """Begin announcing ``me`` (where the mechanism announces) and looking."""
        ...

    def candidates(self) -> frozenset[str]:
        """The HOST:PORT addresses proposed now; vanished ones are no longer listed.
        Never this node's own address."""
        ...

    def stop(self) -> None:
        """Withdraw announcements and stop looking (idempotent)."""
        ...


@dataclass(frozen=True)
class Hello:
    """Who a sidecar says it is, in the Identify handshake."""

    node_id: str
    address: str
    model: ModelId | None = None


@dataclass
class TransportStats:
    """Counters the sidecar exports (read from another thread: plain ints)."""

    bytes_sent: int = 0
    bytes_received: int = 0
    messages_dropped: int = 0
    malformed: int = 0
    stream_errors: int = 0
    identify_failures: int = 0
    by_peer_bytes_sent: dict[str, int] = field(default_factory=dict)


class Transport(Protocol):
    """The sidecar's edge to its peers. Adapters: ``federation.io.transport.
    GossipTransport`` (gRPC streams, mTLS) and the in-memory twin ``federation.io.memory.
    MemoryTransport``. ``send`` is best effort (a message may be dropped: anti-entropy
    repairs it) and never blocks for long; ``on_message`` is called from the
    transport's threads."""

    @property
    def port(self) -> int:
        """The port this transport listens on (bound at construction)."""
        ...

    @property
    def stats(self) -> TransportStats:
        """Its counters (read from other threads)."""
        ...

    def start(self, on_message: Callable[[str, Message], None],
              identity: Callable[[], Hello]) -> None:
        """Begin delivering peers' messages (``on_message(sender, message)``) and
        answering Identify with ``identity()``."""
        ...

    def stop(self) -> None:
        """Close every stream and stop listening."""
        ...

    def send(self, to: str, address: str, message: Message) -> None:
        """Queue ``message`` for peer ``to`` at ``address``."""
        ...

    def connect(self, to: str, address: str) -> None:
        """Open the connection to peer ``to`` ahead of its first message (a push to a
        peer just seen alive then waits for no handshake)."""
        ...

    def identify(self, address: str, me: Hello, timeout: float) -> Hello:
        """Ask who listens at ``address``. Raises ``TransportError`` when unreachable or
        refused."""
        ...

    def forget_peer(self, peer: str) -> None:
        """Drop what is kept for ``peer`` (its stream, its sender thread)."""
        ...
