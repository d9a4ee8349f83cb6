"""In-memory twins of the sidecar's edges: a network of transports and a node.

- :class:`MemoryNetwork` + :class:`MemoryTransport`: the Transport port with no
  sockets. Delivery is synchronous (the receiver's ``on_message`` runs in the sender's
  thread, as the gRPC adapter runs it in a server thread); who reaches whom, and what
  is lost, is decided by a :class:`~federation.sim.network.SimNetwork` (its
  ``partition`` / ``heal`` / ``down`` and its ``drop`` probability), so the threaded
  sidecar meets the same faults as the simulated cores.
- :class:`MemoryReplicaPort`: the ReplicaPort of a node that keeps its durable state
  in a :class:`~federation.sim.store.SimStore`: own events written with :meth:`write`,
  the core's effects applied by ``persist``.

Thread-safe: the sidecar's threads and a test's thread use them at once.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Callable, Mapping, Sequence

from federation.effects import Effect
from federation.errors import TransportError
from federation.events import Event, ModelId
from federation.eventsource import bounded_run
from federation.messages import EventRun, Message
from federation.ports import Hello, NodeInfo, PeerInfo, TransportStats
from federation.replica import RestartState
from federation.sim.network import SimNetwork
from federation.sim.store import SimStore
from federation.sizes import message_size


class MemoryNetwork:
    """Transports by address; faults from ``net`` (a SimNetwork, by transport index)."""

    def __init__(self, net: SimNetwork | None = None, *, seed: int = 0) -> None:
        self.net = net if net is not None else SimNetwork(random.Random(seed))
        self._lock = threading.Lock()
        self._by_address: dict[str, MemoryTransport] = {}
        self._count = 0

    def attach(self, transport: MemoryTransport) -> int:
        with self._lock:
            index = self._count
            self._count += 1
            self._by_address[f"mem:{index}"] = transport
            return index

    def detach(self, transport: MemoryTransport) -> None:
        with self._lock:
            self._by_address.pop(transport.address, None)

    def route(self, src: MemoryTransport, address: str) -> MemoryTransport | None:
        """The transport at ``address`` if ``src`` reaches it now, else None."""
        with self._lock:
            dst = self._by_address.get(address)
            if dst is None or not self.net.connected(src.index, dst.index):
                return None
            drop = self.net.config.drop
            if drop and self.net.rng.random() < drop:
                self.net.stats.dropped += 1
                return None
        return dst


class MemoryTransport:
    """The Transport port over a :class:`MemoryNetwork`. Address ``mem:INDEX``."""

    def __init__(self, network: MemoryNetwork) -> None:
        self.network = network
        self.index = network.attach(self)
        self._stats = TransportStats()
        self._on_message: Callable[[str, Message], None] | None = None
        self._identity: Callable[[], Hello] | None = None
        self.peers: set[str] = set()  # peers we have sent to and not forgotten
        self._lock = threading.Lock()

    @property
    def address(self) -> str:
        return f"mem:{self.index}"

    @property
    def port(self) -> int:
        return self.index

    @property
    def stats(self) -> TransportStats:
        return self._stats

    def start(self, on_message: Callable[[str, Message], None],
              identity: Callable[[], Hello]) -> None:
        self._on_message, self._identity = on_message, identity

    def stop(self) -> None:
        self._on_message = self._identity = None
        self.network.detach(self)

    def send(self, to: str, address: str, message: Message) -> None:
        with self._lock:
            self.peers.add(to)
        size = message_size(message)
        self._stats.bytes_sent += size
        self._stats.by_peer_bytes_sent[to] = self._stats.by_peer_bytes_sent.get(to, 0) + size
        dst = self.network.route(self, address)
        deliver = dst._on_message if dst is not None else None
        if deliver is None:
            self._stats.messages_dropped += 1
            return
        dst._stats.bytes_received += size  # type: ignore[union-attr]
        deliver(message.sender, message)

    def identify(self, address: str, me: Hello, timeout: float) -> Hello:
        dst = self.network.route(self, address)
        identity = dst._identity if dst is not None else None
        if identity is None:
            self._stats.identify_failures += 1
            raise TransportError(f"identify {address}: unreachable")
        return identity()

    def connect(self, to: str, address: str) -> None:
        """Nothing to open in memory."""

    def forget_peer(self, peer: str) -> None:
        with self._lock:
            self.peers.discard(peer)


class MemoryReplicaPort:
    """A node whose disk is a SimStore. ``write`` appends an own (signed) event."""

    def __init__(self, node_id: str, model: ModelId, public_key: bytes = b"") -> None:
        self.info = NodeInfo(node_id, model, public_key)
        self.store = SimStore(node_id)
        self.peers: list[PeerInfo] = []
        self.persist_calls = 0
        self._own: list[Event] = []  # every own event, in seq order
        self._watchers: list[tuple[list[int], Callable[[list[Event]], None]]] = []
        self._lock = threading.RLock()

    def write(self, event: Event) -> None:
        with self._lock:
            if event.origin != self.info.node_id or event.seq != self.store.own_seq + 1:
                raise ValueError(f"own event {event.origin}/{event.seq} out of order")
            self.store.own_event(event)
            self._own.append(event)
            watchers = list(self._watchers)
        for sent, on_events in watchers:
            self._deliver(sent, on_events)

    def _deliver(self, sent: list[int], on_events: Callable[[list[Event]], None]) -> None:
        with self._lock:  # in seq order, none twice (the callback only queues)
            fresh = [e for e in self._own if e.seq > sent[0]]
            if fresh:
                sent[0] = fresh[-1].seq
                on_events(fresh)

    # -- the ReplicaPort ------------------------------------------------------------------

    def hello(self) -> NodeInfo:
        return self.info

    def restart_state(self) -> RestartState:
        with self._lock:
            return self.store.restart_state()

    def persist(self, effects: Sequence[Effect]) -> None:
        with self._lock:
            self.persist_calls += 1
            self.store.apply(effects)

    def version_vector(self) -> Mapping[str, int]:
        with self._lock:
            vv = {o: m.watermark for o, m in self.store.marks.items() if m.watermark}
            if self.store.own_seq:
                vv[self.info.node_id] = self.store.own_seq
            return vv

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int
                  ) -> EventRun:
        with self._lock:
            watermark = self.version_vector().get(origin, 0)
            pool = [*self.store.replicas.values(), *self.store.tombstones.values(),
                    *self.store.own.values()]
        retained = sorted((e for e in pool if e.origin == origin and after_seq < e.seq
                           <= watermark), key=lambda e: e.seq)
        return bounded_run(origin, after_seq, watermark, retained, max_events, max_bytes)

    def watch(self, after_seq: int, on_events: Callable[[list[Event]], None]
              ) -> Callable[[], None]:
        entry = ([after_seq], on_events)
        with self._lock:
            self._watchers.append(entry)
        self._deliver(*entry)

        def stop() -> None:
            with self._lock:
                if entry in self._watchers:
                    self._watchers.remove(entry)

        return stop

    def report_peers(self, peers: Sequence[PeerInfo]) -> None:
        with self._lock:
            self.peers = list(peers)
