"""The threaded sidecar, driven through its ports: the in-memory transport on a
simulated network, an in-memory node, a discovery twin; and once over real gRPC, the
sender threads of a reaped peer."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest

from federation.io.memory import MemoryNetwork, MemoryReplicaPort, MemoryTransport
from federation.io.sidecar import Sidecar
from federation.io.sidecar_config import SidecarConfig
from federation.io.transport import GossipTransport, Security
from federation.ports import Announcement

from fedkit import MODEL, Origin, node_id
from helpers import wait_for

# fast timers: 10 ms ticks, dead after 0.4 s, reaped 0.4 s later
FAST = {"suspect_after_ticks": 20, "dead_after_ticks": 40, "reap_after_ticks": 40,
        "dead_retry_ticks": 10}


class ListDiscovery:
    """The Discovery twin: proposes what the test puts in ``addresses``."""

    name = "list"

    def __init__(self, *addresses: str) -> None:
        self.addresses = set(addresses)
        self.me: Announcement | None = None
        self._on_change: Callable[[], None] = lambda: None
        self.stopped = False

    def start(self, me: Announcement, on_change: Callable[[], None]) -> None:
        self.me, self._on_change = me, on_change

    def candidates(self) -> frozenset[str]:
        return frozenset(self.addresses)

    def set(self, *addresses: str) -> None:
        self.addresses = set(addresses)
        self._on_change()

    def stop(self) -> None:
        self.stopped = True


class Node:
    def __init__(self, n: int, network: MemoryNetwork, discovery: ListDiscovery) -> None:
        self.origin = Origin(n)
        self.port = MemoryReplicaPort(node_id(n), MODEL)
        self.transport = MemoryTransport(network)
        self.discovery = discovery
        config = SidecarConfig(preset="local", tick_ms=10, core=FAST,
                               advertise=self.transport.address)
        self.sidecar = Sidecar(self.port, config, Security(), seed=n, discovery=[discovery],
                               transport=self.transport)

    def write(self, local_id: str) -> str:
        event = self.origin.put(local_id)
        self.port.write(event)
        return event.memory_id


@pytest.fixture
def mesh() -> Iterator[tuple[MemoryNetwork, Node, Node]]:
    network = MemoryNetwork(seed=7)
    a = Node(301, network, ListDiscovery("mem:1"))
    b = Node(302, network, ListDiscovery())
    a.sidecar.start()
    b.sidecar.start()
    yield network, a, b
    for node in (a, b):
        node.sidecar.stop()


def test_a_write_reaches_the_peer_and_status_says_how_it_was_found(
        mesh: tuple[MemoryNetwork, Node, Node]) -> None:
    _, a, b = mesh
    memory = a.write("m1")
    wait_for(lambda: memory in b.port.store.replicas, "the write to reach b's node")
    assert a.discovery.me is not None and a.discovery.me.address == "mem:0"
    wait_for(lambda: [(p.node_id, p.state, p.found_by) for p in a.port.peers]
             == [(b.port.info.node_id, "alive", "list")], "a to report b, found by list")
    # b learnt of a from a's messages, not from its own discovery
    wait_for(lambda: [p.found_by for p in b.port.peers] == [""], "b to report a")


def test_a_partition_holds_writes_back_and_anti_entropy_heals_it(
        mesh: tuple[MemoryNetwork, Node, Node]) -> None:
    network, a, b = mesh
    wait_for(lambda: any(p.state == "alive" for p in a.port.peers), "a and b to meet")
    network.net.partition([[a.transport.index], [b.transport.index]])
    dropped = a.transport.stats.messages_dropped
    memory = a.write("cut-off")
    wait_for(lambda: a.transport.stats.messages_dropped > dropped,
             "the push to be dropped by the partition")
    assert memory not in b.port.store.replicas
    network.net.heal()
    wait_for(lambda: memory in b.port.store.replicas, "anti-entropy to deliver the write")


def test_a_reaped_peer_is_forgotten_by_the_transport(
        mesh: tuple[MemoryNetwork, Node, Node]) -> None:
    _, a, b = mesh
    a.write("m")
    gone = b.port.info.node_id
    wait_for(lambda: gone in a.transport.peers, "a to send to b")
    b.sidecar.stop()
    wait_for(lambda: gone not in a.transport.peers and not a.port.peers,
             "a to reap b and forget it in the transport")


def test_discovery_changes_start_and_stop_identify_loops(
        mesh: tuple[MemoryNetwork, Node, Node]) -> None:
    _, a, _b = mesh

    def identifying(address: str) -> bool:
        return any(t.name == f"identify-{address}" and t.is_alive()
                   for t in threading.enumerate())

    wait_for(lambda: identifying("mem:1"), "an identify loop for mem:1")
    a.discovery.set("mem:9")  # nobody there: tried, never admitted
    wait_for(lambda: not identifying("mem:1") and identifying("mem:9"),
             "the loop of the vanished address to end and the new one to start")
    assert a.transport.stats.identify_failures >= 1
    a.sidecar.stop()
    assert a.discovery.stopped


def test_no_sender_thread_outlives_a_reaped_peer_over_grpc() -> None:
    """The real transport: one sender thread per peer, ended when the peer is reaped."""
    nodes = []
    for n in (311, 312):
        port = MemoryReplicaPort(node_id(n), MODEL)
        transport = GossipTransport("127.0.0.1:0", security=Security())
        config = SidecarConfig(gossip_listen="127.0.0.1:0", preset="local", tick_ms=10,
                               core=FAST, advertise=f"127.0.0.1:{transport.port}")
        peer = [f"127.0.0.1:{nodes[0][2].port}"] if nodes else []
        sidecar = Sidecar(port, config, Security(), seed=n,
                          discovery=[ListDiscovery(*peer)], transport=transport)
        sidecar.start()
        nodes.append((port, sidecar, transport))
    (a_port, a, _), (b_port, b, _) = nodes
    try:
        a_port.write(Origin(311).put("x"))
        wait_for(lambda: len(b_port.store.replicas) == 1, "the write to reach b")
        sender = f"gossip-to-{b_port.info.node_id[:8]}"
        assert any(t.name == sender for t in threading.enumerate())
        b.stop()
        wait_for(lambda: not any(t.name == sender and t.is_alive()
                                 for t in threading.enumerate()),
                 "the sender thread of the reaped peer to end", timeout=30)
        assert not a_port.peers
    finally:
        a.stop()
        b.stop()
