"""A deterministic simulator: N FederationCores in one process over a SimNetwork.

Everything is driven by one tick counter and one seeded RNG: no threads, no clock.
Each node's effects are applied to a :class:`SimStore` (its "disk"), so a node can
be crashed and restarted from what it persisted, as the real sidecar is, or wiped and
restored from an earlier snapshot of its store (``restore``: the core's restoring mode).

Writes are real signed events (Ed25519 keys, one per node). With thousands of nodes,
pass ``FederationConfig(insecure_skip_signature_verification=True)`` to skip the
per-node verification cost; tests verify signatures in smaller simulations.

Per tick: deliver the messages due, tick every live node, flush every node's Ready
(effects to its store, messages to the network). Work per tick is O(N + messages);
a digest costs O(origins + max_digest_members). A *round* is one anti-entropy
interval (``anti_entropy_interval_ticks`` ticks).
"""

from __future__ import annotations

import bisect
import random
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.config import FederationConfig
from federation.effects import Effect
from federation.engine import FederationCore
from federation.events import (
    Event,
    EventKind,
    MetaValue,
    ModelId,
    SharedPrivacy,
    node_id_from_public_key,
    public_key_bytes,
    sign,
)
from federation.replica import RestartState
from federation.sim.network import NetConfig, SimNetwork
from federation.sim.store import SimStore

SIM_MODEL = ModelId("sim-model", 384, "0123456789abcdef")


@dataclass
class SimNode:
    index: int
    key: Ed25519PrivateKey
    node_id: str
    address: str
    core: FederationCore
    store: SimStore
    seeds: list[int]
    up: bool = True
    incarnation: int = 1


@dataclass
class ConvergenceReport:
    converged: bool
    ticks: int
    rounds: float
    """ticks / anti_entropy_interval_ticks."""
    messages: int
    bytes: int
    events_sent: int
    messages_by_kind: dict[str, int] = field(default_factory=dict)
    residue: list[float] = field(default_factory=list)
    """After each round: mean over tracked writes of the share of live nodes lacking it."""


class Simulation:
    def __init__(
        self,
        n: int,
        *,
        config: FederationConfig | None = None,
        seed: int = 0,
        net: NetConfig | None = None,
        seeds_per_node: int | None = None,
        model: ModelId = SIM_MODEL,
        discovery_interval_ticks: int | None = None,
    ) -> None:
        """``seeds_per_node``: peers each node is told about at start (plus its ring
        successor, so the mesh is connected); None: every other node.
        ``discovery_interval_ticks``: every this many ticks each node's discovery proposes
        its seeds again, as the real discovery adapters do (None: never)."""
        self.discovery_interval_ticks = discovery_interval_ticks
        self.config = config if config is not None else FederationConfig.lan()
        self.model = model
        self.rng = random.Random(seed)
        self.net = SimNetwork(random.Random(self.rng.getrandbits(64)), net)
        self.now = 0
        self.nodes: list[SimNode] = []
        self.index: dict[str, int] = {}
        self.expected_vv: dict[str, int] = {}
        self.expected_live: dict[str, Event] = {}
        self.tracked: list[tuple[str, int]] = []
        self._local_counter = 0
        self._seeds_per_node = seeds_per_node
        self.on_effects: Callable[[SimNode, Sequence[Effect]], None] | None = None
        """Called with each node's effects as they reach its store (an observer)."""
        for _ in range(n):
            self._create()
        for node in self.nodes:
            node.seeds = self._pick_seeds(node.index, n)
        for node in self.nodes:
            for j in node.seeds:
                node.core.peer_discovered(self.nodes[j].node_id, self.nodes[j].address)
        self._flush()

    # nodes -------------------------------------------------------------------------
    def _pick_seeds(self, i: int, n: int) -> list[int]:
        if n <= 1:
            return []
        k = self._seeds_per_node
        if k is None or k >= n - 1:
            return [j for j in range(n) if j != i]
        seeds = {(i + 1) % n}
        while len(seeds) < k:
            j = self.rng.randrange(n)
            if j != i:
                seeds.add(j)
        return sorted(seeds)

    def _create(self) -> SimNode:
        i = len(self.nodes)
        key = Ed25519PrivateKey.from_private_bytes(self.rng.randbytes(32))  # reproducible
        node_id = node_id_from_public_key(public_key_bytes(key))
        store = SimStore(node_id)
        address = f"sim:{i}"
        node = SimNode(i, key, node_id, address, self._core(node_id, address, 1, None), store, [])
        self.nodes.append(node)
        self.index[node_id] = i
        return node

    def _core(
        self, node_id: str, address: str, inc: int, snap: RestartState | None,
        restoring: bool = False,
    ) -> FederationCore:
        return FederationCore(
            restoring=restoring,
            node_id=node_id,
            model=self.model,
            address=address,
            incarnation=inc,
            config=self.config,
            seed=self.rng.getrandbits(64),
            restart=snap,
        )

    def add_node(self, seeds: Iterable[int]) -> int:
        """A late joiner with an empty store, told about ``seeds`` only."""
        node = self._create()
        node.seeds = list(seeds)
        for j in node.seeds:
            node.core.peer_discovered(self.nodes[j].node_id, self.nodes[j].address)
        self._flush()
        return node.index

    def kill(self, i: int) -> None:
        """Crash node i: it stops ticking and receives nothing. Its store survives."""
        self.nodes[i].up = False
        self.net.down.add(i)

    def revive(self, i: int, *, restart: bool = True) -> None:
        """Bring node i back. restart=True: a new sidecar (new incarnation) rebuilt from
        its store, which re-discovers its seeds. restart=False: the process resumes."""
        node = self.nodes[i]
        node.up = True
        self.net.down.discard(i)
        if restart:
            node.incarnation += 1
            state = node.store.restart_state()
            node.core = self._core(node.node_id, node.address, node.incarnation, state,
                                   restoring=node.store.restoring)
            for j in node.seeds:
                node.core.peer_discovered(self.nodes[j].node_id, self.nodes[j].address)
            self._flush()

    def restore(self, i: int, backup: SimStore) -> None:
        """Wipe node i and bring it back from ``backup`` (an earlier
        ``store.snapshot()``): a new incarnation in restoring mode, which takes back
        its own events from peers and learns its own seq before it may write again
        (``core.restoring``; federation.restore)."""
        node = self.nodes[i]
        node.store = backup.snapshot()
        node.store.restoring = True
        node.up = True
        self.net.down.discard(i)
        node.incarnation += 1
        node.core = self._core(node.node_id, node.address, node.incarnation,
                               node.store.restart_state(), restoring=True)
        for j in node.seeds:
            node.core.peer_discovered(self.nodes[j].node_id, self.nodes[j].address)
        self._flush()

    def partition(self, groups: Iterable[Iterable[int]], *, one_way: bool = False) -> None:
        """Cut the network (``one_way``: only the first group's messages to the rest)."""
        self.net.partition(groups, one_way=one_way)

    def heal(self) -> None:
        self.net.heal()

    # writes ------------------------------------------------------------------------
    def _write(
        self, i: int, kind: EventKind, local_id: str, metadata: Mapping[str, MetaValue] | None
    ) -> Event:
        node = self.nodes[i]
        seq = node.store.own_seq + 1
        forget = kind is EventKind.FORGET
        event = Event(
            origin=node.node_id,
            seq=seq,
            kind=kind,
            local_id=local_id,
            timestamp_ms=self.now,
            privacy=SharedPrivacy.TEAM,
            model=None if forget else self.model,
            embedding=b"" if forget else self.rng.randbytes(4 * self.model.dim),
            metadata={} if forget else dict(metadata or {"topic": local_id}),
        )
        event = sign(event, node.key)
        node.store.own_event(event)
        node.core.local_event(event)
        self._flush_node(node)
        self.expected_vv[node.node_id] = seq
        if forget:
            self.expected_live.pop(event.memory_id, None)
        else:
            self.expected_live[event.memory_id] = event
        self.tracked.append((node.node_id, seq))
        return event

    def put(
        self, i: int, local_id: str | None = None, metadata: Mapping[str, MetaValue] | None = None
    ) -> Event:
        if local_id is None:
            self._local_counter += 1
            local_id = f"m{self._local_counter}"
        return self._write(i, EventKind.PUT, local_id, metadata)

    def update(
        self, i: int, local_id: str, metadata: Mapping[str, MetaValue] | None = None
    ) -> Event:
        return self._write(i, EventKind.UPDATE, local_id, metadata or {"topic": local_id, "v": 2})

    def forget(self, i: int, local_id: str) -> Event:
        return self._write(i, EventKind.FORGET, local_id, None)

    # time --------------------------------------------------------------------------
    def _flush_node(self, node: SimNode) -> None:
        core = node.core
        if not core.has_ready():
            return
        ready = core.ready()
        node.store.apply(ready.effects)
        if self.on_effects is not None and ready.effects:
            self.on_effects(node, ready.effects)
        send, now, index, i = self.net.send, self.now, self.index, node.index
        for out in ready.messages:
            send(now, i, index[out.to], out.message)
        core.advance()

    def _flush(self) -> None:
        for node in self.nodes:
            if node.up:
                self._flush_node(node)

    def step(self, ticks: int = 1) -> None:
        for _ in range(ticks):
            self.now += 1
            nodes = self.nodes
            for src, dst, message in self.net.due(self.now):
                node = nodes[dst]
                if node.up:
                    node.core.on_message(nodes[src].node_id, message)
            for node in nodes:
                if node.up:
                    node.core.tick()
            every = self.discovery_interval_ticks
            if every and self.now % every == 0:
                self.rediscover()
            self._flush()

    def rediscover(self) -> None:
        """Every live node's discovery proposes its seeds again - those it can reach, as
        the transport's handshake must succeed before a peer is proposed to the core."""
        connected = self.net.connected
        for node in self.nodes:
            if node.up:
                for j in node.seeds:  # a handshake needs both ways
                    if connected(node.index, j) and connected(j, node.index):
                        seed = self.nodes[j]
                        node.core.peer_discovered(seed.node_id, seed.address)

    def rounds(self, n: float) -> None:
        self.step(int(n * self.config.anti_entropy_interval_ticks))

    # observation -------------------------------------------------------------------
    def up_nodes(self) -> list[SimNode]:
        return [n for n in self.nodes if n.up]

    def converged(self) -> bool:
        """Every live node has every write: same version vector and live set as the
        reference, nothing under reconciliation, and a store that matches."""
        expected = self.expected_vv
        up = self.up_nodes()
        for node in up:
            replica = node.core.replica
            for origin, seq in expected.items():
                if replica.watermark(origin) != seq:
                    return False
        live = {(e.memory_id, e.seq) for e in self.expected_live.values()}
        for node in up:
            replica = node.core.replica
            if replica.live_count() != len(live) or replica.resync_cursors():
                return False
            if {(e.memory_id, e.seq) for e in replica.live_entries()} != live:
                return False
            foreign = {m for m, _ in live if not m.startswith(node.node_id + "/")}
            if set(node.store.replicas) != foreign:
                return False
        return True

    def residue(self) -> float:
        """Mean over tracked writes of the share of live nodes whose watermark lacks it."""
        up = self.up_nodes()
        if not self.tracked or not up:
            return 0.0
        by_origin: dict[str, list[int]] = {}
        for origin, _ in self.tracked:
            if origin not in by_origin:
                by_origin[origin] = sorted(n.core.replica.watermark(origin) for n in up)
        total = 0.0
        for origin, seq in self.tracked:
            wms = by_origin[origin]
            total += bisect.bisect_left(wms, seq) / len(wms)
        return total / len(self.tracked)

    def totals(self) -> tuple[int, int, int, dict[str, int]]:
        messages = size = events = 0
        kinds: dict[str, int] = {}
        for node in self.nodes:
            m = node.core.metrics
            messages += sum(m.messages_sent.values())
            size += m.bytes_sent
            events += m.events_sent
            for kind, count in m.messages_sent.items():
                kinds[kind] = kinds.get(kind, 0) + count
        return messages, size, events, kinds

    def run_until_converged(self, max_rounds: float = 100) -> ConvergenceReport:
        """Step until converged or ``max_rounds`` rounds passed; costs counted from now
        (restarted cores reset their counters, so keep restarts out of a measurement)."""
        interval = self.config.anti_entropy_interval_ticks
        m0, b0, e0, k0 = self.totals()
        start = self.now
        residue: list[float] = []
        limit = int(max_rounds * interval)
        converged = self.converged()
        while not converged and self.now - start < limit:
            self.step()
            if (self.now - start) % interval == 0:
                residue.append(self.residue())
            converged = self.converged()
        m1, b1, e1, k1 = self.totals()
        ticks = self.now - start
        return ConvergenceReport(
            converged=converged,
            ticks=ticks,
            rounds=ticks / interval,
            messages=m1 - m0,
            bytes=b1 - b0,
            events_sent=e1 - e0,
            messages_by_kind={k: v - k0.get(k, 0) for k, v in k1.items() if v - k0.get(k, 0)},
            residue=residue,
        )
