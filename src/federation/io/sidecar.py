"""The sidecar: the pure replication core driven by a clock, the network and the node.

One thread (the *core thread*) owns the :class:`~federation.engine.FederationCore`
and is the only one to touch it. Everything else posts to its inbox:

- the Gossip server's threads post messages from peers;
- the node's event watch posts this node's own new events (push-on-write);
- discovery (static peers, zeroconf, DNS: :class:`~federation.ports.Discovery` adapters)
  proposes addresses; one identify loop per address asks who is there (over mTLS when
  on: :mod:`federation.io.candidates`) and the sidecar admits the peers it may.
  Discovery never admits a peer itself.

The CA-signed deny list travels beside the core, not through it: outgoing digests are
stamped with the version this sidecar holds, a peer whose digest shows an older one is
sent the signed list, and a list received is verified and adopted
(:class:`~federation.io.deny_gossip.DenyGossip`). The CA-signed erasure orders travel the
same way and are then handed to the core (:mod:`federation.io.erasure_gossip`).

After each input, and at every tick, the core thread drains the core's ``Ready``:
messages go to the transport (best effort, queued per peer), effects go to the node
through the ReplicaPort (durable before ``advance``). The sidecar keeps no durable
state: on start, and after losing its node, it rebuilds the core from the node's
restart state with a new incarnation, so it can crash and restart freely.
"""

from __future__ import annotations

import logging
import queue
import random
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from typing import Any

from federation.engine import FederationCore
from federation.events import Event
from federation.io.candidates import Candidates, discovery_from_config
from federation.io.cpu import StageCpu
from federation.io.deny_gossip import DenyGossip
from federation.io.denylist import DenyList, make_authorizer
from federation.io.erasesign import ErasureList
from federation.io.erasure_gossip import ErasureGossip
from federation.io.sidecar_config import SidecarConfig
from federation.io.transport import GossipTransport, Security
from federation.messages import (
    PROTOCOL_VERSION,
    Digest,
    Message,
    SignedDenyList,
    SignedErasures,
)
from federation.ports import (
    Announcement,
    Discovery,
    Hello,
    NodeInfo,
    PeerInfo,
    ReplicaPort,
    Transport,
    TransportStats,
)

log = logging.getLogger("memnode.sidecar")

_MAX_INBOX_BATCH = 256
_LAG_TIMESTAMPS = 4096
_REPORT_SECONDS = 1.0  # the longest the node's view of its peers (status, lag) may lag


class Sidecar:
    def __init__(self, port: ReplicaPort, config: SidecarConfig, security: Security,
                 *, seed: int | None = None, deny: DenyList | None = None,
                 discovery: Sequence[Discovery] | None = None,
                 transport: Transport | None = None,
                 erasures: ErasureList | None = None) -> None:
        """``erasures``: the CA-signed erasure orders; by default those of the deny
        list's credentials directory (none without one: they need the CA)."""
        if security.insecure:
            log.warning("gossip is PLAINTEXT (--insecure): peers' traffic can be read on "
                        "the network; use a federation's certificates for anything real")
        self.port = port
        self.config = config
        self.security = security
        self.core_config = config.core_config()
        self.core: FederationCore | None = None
        self.info: NodeInfo | None = None
        self.last_step_seconds = 0.0
        self._failure = ""  # why the core thread cannot work now ("" while it can)
        self._seed = seed if seed is not None else random.SystemRandom().randrange(1 << 30)
        self._inbox: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stop = threading.Event()
        self._stop_watch: Callable[[], None] = lambda: None
        self._own_times: OrderedDict[int, int] = OrderedDict()  # own seq -> wall ms
        self._known_peers: dict[str, str] = {}
        self._exchanges: dict[str, float] = {}  # peer -> when our digest left
        self.exchange_count = 0
        self.exchange_seconds_total = 0.0
        self.cpu = StageCpu()  # core here; decode and encode in the gossip transport
        self.transport: Transport = transport or GossipTransport(
            config.gossip_listen, security=security,
            authorize=make_authorizer(deny) if deny is not None else None,
            max_queue=config.transport_queue, workers=config.transport_workers,
            cpu=self.cpu,
        )
        host = config.gossip_listen.rpartition(":")[0]
        self.address = config.advertise or f"{host}:{self.transport.port}"
        self._threads: list[threading.Thread] = []
        self._federation_id = security.federation_id
        self._deny = deny
        self.denials = DenyGossip(deny, self.transport)
        if erasures is None and deny is not None:
            erasures = ErasureList(deny.dir)
        self.erasures = ErasureGossip(erasures, self.transport)
        self.candidates = Candidates(
            discovery if discovery is not None else discovery_from_config(config, self.address),
            self.transport, config.identify_interval_seconds, self._identified, self._spawn)
        self._node_found_by: dict[str, str] = {}  # node id -> how it was found
        self._members: set[str] = set()  # the core's peers at the last report
        self._reported_shape: tuple[tuple[str, str, object], ...] = ()
        self._reported_at = 0.0

    # -- lifecycle ------------------------------------------------------------------------

    def start(self) -> None:
        self._build_core()
        self.transport.start(self._on_message, self._identity)
        self._spawn(self._run, "sidecar-core")
        me = Announcement(self.node_id, self.address, self._federation_id, PROTOCOL_VERSION)
        self.candidates.start(me, lambda: Hello(self.node_id, self.address))
        log.info("sidecar of %s gossiping on %s (discovery: %s)", self.node_id, self.address,
                 ", ".join(d.name for d in self.candidates.discovery)
                 or "none: peers must find us")

    def stop(self) -> None:
        self._stop.set()
        self.candidates.stop()
        self._inbox.put(("stop",))
        self._stop_watch()
        for thread in self._threads:
            thread.join(5)
        self.transport.stop()

    def _spawn(self, target: Callable[[], None], name: str) -> None:
        thread = threading.Thread(target=target, name=name, daemon=True)
        thread.start()
        self._threads.append(thread)

    @property
    def node_id(self) -> str:
        return self.info.node_id if self.info else ""

    def _build_core(self) -> None:
        """A fresh core from the node's durable state, with a new incarnation."""
        self._stop_watch()
        self.info = self.port.hello()
        restart = self.erasures.restored(self.port.restart_state())
        self.core = FederationCore(
            node_id=self.info.node_id, model=self.info.model, address=self.address,
            incarnation=time.time_ns() // 1_000_000, config=self.core_config,
            seed=self._seed, restart=restart, source=self.port,
            restoring=self.info.restoring,
        )
        self.erasures.feed(self.core)  # orders newer than those the node keeps
        for node_id, address in self._known_peers.items():
            self.core.peer_discovered(node_id, address)
        own = self.core.version_vector().get(self.info.node_id, 0)
        self._stop_watch = self.port.watch(own, lambda events: self._inbox.put(("local", events)))

    # -- inputs from other threads ----------------------------------------------------------

    def _on_message(self, sender: str, message: Message) -> None:
        if isinstance(message, SignedDenyList):  # verified here, never shown to the core
            self.denials.offer(message.payload, sender)
            return
        if isinstance(message, SignedErasures):  # verified here; the core gets the orders
            self.erasures.offer(message.payload, sender)
            self._inbox.put(("erasures",))
            return
        self._inbox.put(("message", sender, message))

    def _identity(self) -> Hello:
        info = self.info
        assert info is not None
        return Hello(info.node_id, self.address, info.model)

    def _identified(self, reply: Hello, address: str, found_by: str) -> None:
        """A proposed address answered who it is: admitted unless denied, ourselves, or
        running another model."""
        info = self.info
        if self.denials.lists(reply.node_id):
            return  # denied: never admitted, whatever discovery proposes
        if info is None or reply.node_id == info.node_id:
            return
        if reply.model != info.model:
            log.warning("peer %s at %s runs model %s, not ours %s: ignored",
                        reply.node_id, address, reply.model, info.model)
            return
        self._node_found_by[reply.node_id] = found_by
        self._inbox.put(("discovered", reply.node_id, reply.address or address))

    # -- the core thread --------------------------------------------------------------------

    def _run(self) -> None:
        tick = self.core_config.tick_ms / 1000.0
        next_tick = time.monotonic() + tick
        backoff = 0.1
        lost = False  # the core is not the node's: rebuild it before anything else
        while not self._stop.is_set():
            try:
                if lost:
                    self._build_core()
                    lost = False
                self._step(next_tick)
                now = time.monotonic()
                if now >= next_tick:
                    assert self.core is not None
                    self.erasures.feed(self.core)  # e.g. the file was copied in
                    with self.cpu.stage("core"):
                        self.core.tick()
                    self._flush()
                    self._report()
                    next_tick = max(next_tick + tick, now)
                backoff = 0.1
                self._failure = ""
            except Exception as exc:
                # The node went away (or refused our effects): start over from its disk,
                # and step no core until that worked (a failed rebuild has stopped the
                # old core's watch of the node's events: it would never hear of them)
                self._failure = f"lost its node ({exc})"
                if lost:
                    log.warning("node not reachable yet: %s", exc)
                else:
                    log.exception("sidecar lost its node; rebuilding in %.1f s", backoff)
                lost = True
                self._stop.wait(backoff)
                backoff = min(backoff * 2, 5.0)

    def _step(self, deadline: float) -> None:
        timeout = max(0.0, deadline - time.monotonic())
        try:
            item = self._inbox.get(timeout=timeout)
        except queue.Empty:
            return
        started = time.perf_counter()
        items = [item]
        while len(items) < _MAX_INBOX_BATCH:
            try:
                items.append(self._inbox.get_nowait())
            except queue.Empty:
                break
        core = self.core
        assert core is not None
        local: list[Event] = []
        for kind, *args in items:
            if kind == "message":
                sender, message = args
                if isinstance(message, Digest):
                    if message.reply:
                        self._exchange_done(sender)
                    self.denials.share(self.node_id, sender, message)
                    self.erasures.share(self.node_id, sender, message, self.denials.holds_back)
                with self.cpu.stage("core"):
                    core.on_message(sender, message)
            elif kind == "local":
                local += args[0]
            elif kind == "erasures":
                self.erasures.feed(core)
            elif kind == "discovered":
                node_id, address = args
                self._known_peers[node_id] = address
                core.peer_discovered(node_id, address)
        if local:
            now_ms = time.time_ns() // 1_000_000
            for event in local:
                self._own_times[event.seq] = now_ms
            while len(self._own_times) > _LAG_TIMESTAMPS:
                self._own_times.popitem(last=False)
            with self.cpu.stage("core"):
                core.local_events(local)
        self._flush()
        self.last_step_seconds = time.perf_counter() - started

    def _flush(self) -> None:
        core = self.core
        assert core is not None
        while core.has_ready():
            ready = core.ready()
            for out in ready.messages:
                if self.denials.holds_back(out.to):
                    continue
                message = out.message
                if isinstance(message, Digest):
                    if not message.reply:
                        self._exchanges[out.to] = time.monotonic()
                    message = self.erasures.stamp(self.denials.stamp(message))
                self.transport.send(out.to, out.address, message)
            if ready.effects:
                self.port.persist(ready.effects)
            core.advance()

    @property
    def messages_denied(self) -> int:
        return self.denials.messages_denied

    @property
    def deny_lists_rejected(self) -> int:
        return self.denials.rejected

    @property
    def deny_version(self) -> int:
        return self.denials.version

    @property
    def erasure_version(self) -> int:
        return self.erasures.version

    def _exchange_done(self, peer: str) -> None:
        """A peer answered our digest: one anti-entropy exchange, timed end to end."""
        started = self._exchanges.pop(peer, None)
        if started is not None:
            self.exchange_count += 1
            self.exchange_seconds_total += time.monotonic() - started

    def _report(self) -> None:
        """On a tick that changed who the peers are, where they are or their states, or
        every ``_REPORT_SECONDS``: the node learns its peers' state (for ``memnode
        status``: its lag figures are that old at most), the transport connects ahead
        to alive peers, and forgets the peers the core has reaped (their streams and
        sender threads go with them). Not on every tick: working out 16 peers' lag
        took a tenth of a busy sidecar's CPU."""
        core = self.core
        assert core is not None
        shape = tuple((m.node_id, m.address, m.state) for m in core.membership)
        now = time.monotonic()
        if shape == self._reported_shape and now - self._reported_at < _REPORT_SECONDS:
            return
        self._reported_shape, self._reported_at = shape, now
        peers = self.peers()
        current = {p.node_id for p in peers}
        for peer in peers:  # a connection opened ahead: a first push waits for no handshake
            if peer.state == "alive":
                self.transport.connect(peer.node_id, peer.address)
        for gone in self._members - current:
            self.transport.forget_peer(gone)
            self._known_peers.pop(gone, None)
            self._node_found_by.pop(gone, None)
        self._members = current
        self.port.report_peers(peers)

    # -- views ------------------------------------------------------------------------------

    def problem(self) -> str | None:
        """Why this sidecar is not replicating now, or None when it is (for health)."""
        if self._stop.is_set():
            return "sidecar stopped"
        if not self._threads or not self._threads[0].is_alive():
            return "sidecar core thread is not running"
        if self._failure:
            return f"sidecar {self._failure}"[:500]
        return None

    def peers(self) -> list[PeerInfo]:
        core = self.core
        if core is None:
            return []
        return [PeerInfo(p.node_id, p.address, p.state.value, p.events_behind or 0,
                         self._node_found_by.get(p.node_id, ""))
                for p in core.peers()]

    def lag_seconds(self, peer: str) -> float:
        """Age of our oldest event the peer's last digest did not cover (0 if none)."""
        core = self.core
        if core is None:
            return 0.0
        member = core.membership.get(peer)
        if member is None or member.version_vector is None:
            return 0.0
        covered = member.version_vector.get(self.node_id, 0)
        written = self._own_times.get(covered + 1)
        if written is None:
            return 0.0
        return max(0.0, (time.time_ns() // 1_000_000 - written) / 1000.0)

    def transport_stats(self) -> TransportStats:
        return self.transport.stats

