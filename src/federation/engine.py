"""FederationCore: the pure replication core, driven by ticks and messages.

Shaped like etcd raft's RawNode. Inputs::

    core.tick()                          every config.tick_ms milliseconds
    core.on_message(from_peer, message)  a Digest or EventBatch from an authenticated peer
    core.local_event(event)              our own new event, signed and durable in our log
    core.local_events(events)            several at once (one rumor push)
    core.peer_discovered(node_id, addr)  discovery proposed a peer and the transport
                                         proved its identity
    core.erase(orders, record)           CA-signed erasure orders, verified by the caller
    core.exchange_with(node_id)          start an exchange now (optional)

Outputs, after any input::

    if core.has_ready():
        rd = core.ready()                # Ready(messages=[Outgoing], effects=[Effect])
        persist(rd.effects)              # in order, through the node's Replica API
        for out in rd.messages:
            send(out.to, out.address, out.message)   # best effort; losses are fine
        core.advance()                   # acknowledges exactly what ready() returned

Messages may be sent before the effects are durable: everything sent is signed by
its origin, and a crash before persisting only leaves our watermarks behind, which
our next digests reveal and peers fill. The core never blocks and never raises on
network input (bad input is counted in ``core.metrics``).

When a peer joins or rejoins (new, new incarnation, or back from DEAD) and the
evidence is direct - discovery (see ``peer_discovered`` for bursts) or a message
from the peer itself - an exchange happens at once: a digest from the peer is
answered with what it lacks and our reply digest; any other message from a DEAD peer
makes us send it a digest. Rejoins learned only from third-party gossip do not
trigger exchanges (every node would flood the returning peer with the same events);
its own digests, our periodic rounds and dead-peer retries reach it.

Restarting (the sidecar keeps no state): build a new core with a higher
``incarnation``, the node's ``restart_state`` (compacted log and OriginMarks) and its log
as ``source``, then propose the known peers with ``peer_discovered``. When ``source``
is given the restart state's events may omit embeddings and metadata: the core keeps
them only for ids, seqs and kinds, and reads what it sends from the source.
"""

from __future__ import annotations

import random
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import replace

from federation.antientropy import AntiEntropy
from federation.config import FederationConfig
from federation.effects import DropTombstone, Effect
from federation.erasure import ErasureOrder
from federation.events import Event, ModelId
from federation.eventsource import EventSource, MemoryEventSource
from federation.membership import Member, Membership
from federation.messages import (
    Digest,
    EventBatch,
    Message,
    batch_is_well_formed,
    digest_is_well_formed,
)
from federation.metrics import Metrics
from federation.ready import Outgoing, PeerStatus, Ready
from federation.replica import ApplyResult, ReplicaState, RestartState
from federation.restore import OwnSeqLearning
from federation.rumor import Rumors, seen_by, seen_mask
from federation.sizes import batch_size, digest_size, message_size
from federation.validate import Limits, RejectReason
from federation.versions import VersionVector, stable

MAX_DIGEST_ORIGINS = 1 << 20
"""Digests with more version-vector entries than this are dropped as malformed."""


class FederationCore:
    def __init__(
        self,
        *,
        node_id: str,
        model: ModelId,
        address: str = "",
        incarnation: int = 0,
        config: FederationConfig | None = None,
        seed: int = 0,
        restart: RestartState | None = None,
        source: EventSource | None = None,
        restoring: bool = False,
    ) -> None:
        """``incarnation`` must grow at every start of this node's sidecar (e.g. the
        wall clock in ms at start); ``seed`` drives every random choice (peers).
        ``restoring``: restored from a backup, learn our own seq (federation.restore)."""
        self.config = config if config is not None else FederationConfig()
        self.config.validate()
        self.node_id, self.now = node_id, 0
        rng = random.Random(seed)
        self.replica = ReplicaState(
            node_id,
            Limits.from_config(self.config, model),
            max_buffered_per_origin=self.config.max_buffered_per_origin,
            restoring=restoring,
        )
        if restart is not None:
            self.replica.restore(restart)
        self.source: EventSource = source if source is not None else MemoryEventSource(self.replica)
        self.membership = Membership(node_id, address, incarnation, self.config, rng)
        self.antientropy = AntiEntropy(self.config, rng, self.source)
        self.rumors = Rumors(self.config)
        self.metrics = Metrics()
        self._messages: list[Outgoing] = []
        self._effects: list[Effect] = []
        self._taken = (0, 0)
        self._next_gc = self.config.tombstone_gc_interval_ticks
        self._last_discovery_exchange: int | None = None
        self._restore = OwnSeqLearning(node_id, {o.origin for o in self.replica.origins()},
                                       self.config.restore_wait_ticks)

    # ------------------------------------------------------------------ inputs
    def tick(self) -> None:
        self.now += 1
        now = self.now
        self._check_restored()  # restoring: the wait for the backup's origins may run out
        changes = self.membership.tick(now)
        for peer in changes.reaped:
            self.antientropy.forget_peer(peer)
        for peer in changes.retry:
            self._start_exchange(peer)
        if self.antientropy.round_due(now):
            self.antientropy.round_started(now)
            self.metrics.anti_entropy_rounds += 1
            peers = (self.antientropy.pulling(now, self.membership.live_ids())
                     or self.membership.sample_live(self.config.anti_entropy_peers))
            if self.replica.restoring:  # ask the origins the restore waits for
                asks = self.config.restore_asks_per_round
                peers += self._restore.to_ask(self.membership.live_ids(), asks, peers)
            for peer in peers:
                self._start_exchange(peer)
        if now >= self._next_gc:
            self._next_gc = now + self.config.tombstone_gc_interval_ticks
            self.collect_tombstones()

    def on_message(self, from_peer: str, message: Message) -> None:
        if isinstance(message, Digest):
            self._on_digest(from_peer, message)
        elif isinstance(message, EventBatch):
            self._on_batch(from_peer, message)
        else:
            self.metrics.messages_malformed += 1

    def local_event(self, event: Event) -> None:
        self.local_events((event,))

    def local_events(self, events: Iterable[Event]) -> None:
        """Our own new events, in seq order, pushed at once to every live peer (or
        ``fanout`` of them past ``push_direct_max``).
        Raises LocalEventError on the first one out of order or not ours (a caller
        bug); those before it are kept and pushed. One the mesh would refuse is
        counted in ``own_events_skipped`` and skipped (see ReplicaState.append_local)."""
        appended: list[Event] = []
        try:
            for event in events:
                result = self.replica.append_local(event)
                self._effects.extend(result.effects)
                if result.rejected:
                    self.metrics.own_events_skipped += 1
                    continue
                appended.append(event)
        finally:
            if appended:
                self._push(appended)

    def _push(self, events: list[Event]) -> None:
        live, c = self.membership.live_count(), self.config
        direct = c.fanout and live <= c.push_direct_max  # fanout 0: anti-entropy only
        targets = self.membership.sample_live(live if direct else c.fanout)
        seen = seen_mask([self.node_id, *targets])
        pushes = [replace(r, rumor_seen=seen) for r in self.rumors.push(self.node_id, events)]
        for peer in targets:
            for rumor in pushes:
                self._send(peer, rumor, "rumor")
                self.metrics.rumors_pushed += 1

    def peer_discovered(self, node_id: str, address: str) -> None:
        """A new (or not alive) peer gets an exchange at once - except during a
        discovery burst (several peers proposed at once, e.g. a restart with static
        peers): then only the first does, within ``inflight_timeout_ticks``, and the
        others are left to the periodic rounds (the next one an interval later), so
        that a node does not pull the same catch-up from several peers at once."""
        if node_id == self.node_id:
            return
        new = self.membership.get(node_id) is None
        if self.membership.discovered(node_id, address, self.now):
            if new:
                self.metrics.joins += 1
            last = self._last_discovery_exchange
            if last is None or self.now - last >= self.config.inflight_timeout_ticks:
                self._last_discovery_exchange = self.now
                self._start_exchange(node_id)
                # that exchange is this interval's round: a periodic one right after it
                # would fetch the same catch-up again from another peer
                self.antientropy.round_started(self.now)

    def erase(self, orders: Sequence[ErasureOrder], record: bytes) -> None:
        """CA-signed erasure orders (verified by the caller; ``record``: their signed
        form, for the node to keep): erase what they cover and refuse it from now on
        (federation.erasure)."""
        self._effects.extend(self.replica.erase(orders, record))

    def exchange_with(self, peer: str) -> None:
        """Start an anti-entropy exchange with ``peer`` now (e.g. the transport just
        reconnected to it). Periodic rounds do this by themselves."""
        if peer != self.node_id:
            self._start_exchange(peer)

    # ------------------------------------------------------------------ outputs
    def has_ready(self) -> bool:
        return bool(self._messages or self._effects)

    def ready(self) -> Ready:
        self._taken = (len(self._messages), len(self._effects))
        return Ready(list(self._messages), list(self._effects))

    def advance(self) -> None:
        """Acknowledge the last ready(): its effects are persisted, messages handed off."""
        m, e = self._taken
        del self._messages[:m]
        del self._effects[:e]
        self._taken = (0, 0)

    @property
    def restoring(self) -> bool:
        """True until a restored node holds its own origin as far as its peers do."""
        return self.replica.restoring

    def _check_restored(self) -> None:
        done = self._restore.check(self.replica, self.now,
                                   lambda o: self.membership.get(o) is not None)
        if done is not None:
            self._effects.append(done)

    # ------------------------------------------------------------------ queries
    def version_vector(self) -> VersionVector:
        return self.replica.version_vector()

    def live_entries(self) -> Iterator[Event]:
        return self.replica.live_entries()

    def buffered_events(self) -> int:
        return self.replica.buffered_events()

    def peers_by_state(self) -> dict[str, int]:
        return {state.value: n for state, n in self.membership.counts().items()}

    def peer_lag(self, peer: str) -> int | None:
        m = self.membership.get(peer)
        if m is None or m.version_vector is None:
            return None
        theirs = m.version_vector
        return sum(max(0, seq - theirs.get(o, 0)) for o, seq in self.version_vector().items())

    def peers(self) -> list[PeerStatus]:
        return [self._status(m) for m in self.membership]

    def _status(self, m: Member) -> PeerStatus:
        return PeerStatus(
            m.node_id, m.address, m.state, m.incarnation, m.heartbeat, m.last_heard,
            self.peer_lag(m.node_id),
        )

    # ------------------------------------------------------------------ internals
    def _send(self, to: str, message: Message, kind: str) -> None:
        m = self.membership.get(to)
        self._messages.append(Outgoing(to, m.address if m is not None else "", message))
        self.metrics.sent(kind, message_size(message))
        if isinstance(message, EventBatch):
            self.metrics.events_sent += message.event_count
            if message.rumor_hops:  # a digest crossing it is answered from where it ends
                self.antientropy.sent(to, message.runs, self.now)

    def _digest(self, reply: bool) -> Digest:
        ms = self.membership
        return Digest(
            sender=self.node_id,
            incarnation=ms.incarnation,
            heartbeat=ms.heartbeat,
            address=ms.address,
            version_vector=self.replica.version_vector(),
            members=ms.gossip_entries(),
            reply=reply,
            gc_floors=self.replica.gc_floors(),
            resync=self.replica.resync_cursors(),
        )

    def _start_exchange(self, peer: str) -> None:
        self.metrics.exchanges_started += 1
        self._send(peer, self._digest(False), "digest")

    def _absorb(self, result: ApplyResult) -> None:
        self._effects.extend(result.effects)
        self.metrics.add_result(result)

    def _on_digest(self, peer: str, digest: Digest) -> None:
        ok = digest_is_well_formed(
            digest,
            max_origins=MAX_DIGEST_ORIGINS,
            max_members=max(self.config.max_digest_members, 1) * 4,
        )
        if not ok or digest.sender != peer:
            self.metrics.messages_malformed += 1
            return
        self.metrics.received("digest_reply" if digest.reply else "digest", digest_size(digest))
        now = self.now
        before = self.membership.get(peer)
        old_incarnation = before.incarnation if before is not None else None
        if self.membership.observe_direct(
            peer, digest.incarnation, digest.heartbeat, digest.address, now
        ):
            if before is None:
                self.metrics.joins += 1
            else:
                self.metrics.rejoins += 1
        if old_incarnation is not None and digest.incarnation > old_incarnation:
            self.antientropy.forget_peer(peer)  # a restarted peer lost what was in flight
        self.metrics.rejoins += len(self.membership.observe_gossip(digest.members, now))
        member = self.membership.get(peer)
        if member is not None:
            member.version_vector = VersionVector(digest.version_vector)
            member.digest_tick = now
        if self.replica.restoring:
            self._restore.heard(peer, digest.version_vector, now)
            self._check_restored()
        result = ApplyResult()
        for origin, floor in digest.gc_floors.items():
            self.replica.learn_floor(origin, floor, result)
        self._absorb(result)
        resync_now = result.resyncs_started > 0 and digest.reply
        batches = self.antientropy.batches_for(
            self.node_id,
            peer,
            digest,
            self.replica.version_vector(),  # a source lagging behind returns shorter runs
            self.replica.gc_floors(),
            now,
            self.replica.resync_cursors(),
        )
        for batch in batches:
            self._send(peer, batch, "events")
        if not digest.reply:
            self._send(peer, self._digest(True), "digest_reply")  # carries our cursors
        elif resync_now:
            self._start_exchange(peer)  # reconcile with the peer that told us, now

    def _on_batch(self, peer: str, batch: EventBatch) -> None:
        c = self.config
        if not batch_is_well_formed(batch, max_events=1 << 62) or batch.sender != peer:
            self.metrics.messages_malformed += 1
            result = ApplyResult()
            result.reject(RejectReason.MALFORMED, max(1, _safe_count(batch)))
            self.metrics.add_result(result)
            return
        size = batch_size(batch)
        kind = "rumor" if batch.rumor_hops else "events"
        self.metrics.received(kind, size)
        self.metrics.events_received += batch.event_count
        if batch.event_count > c.max_batch_events or size > c.max_batch_bytes:
            result = ApplyResult()
            result.reject(RejectReason.OVERSIZED, max(1, batch.event_count))
            self.metrics.add_result(result)
            return
        if self.membership.observe_contact(peer, self.now):
            self.metrics.rejoins += 1
            self._start_exchange(peer)
        result = ApplyResult()
        for origin, floor in batch.gc_floors.items():
            self.replica.learn_floor(origin, floor, result)
        for run in batch.runs:
            self.replica.apply_run(run, result, sender_watermark=batch.watermarks.get(run.origin))
        self._absorb(result)
        if not batch.rumor_hops:  # pull the rest from it: news, and an answer cut short
            self.antientropy.streamed(peer, bool(result.fresh) and any(
                r.through_seq < batch.watermarks.get(r.origin, 0) for r in batch.runs), self.now)
        self._check_restored()
        if result.resyncs_started:
            self._start_exchange(peer)  # reconcile with the peer that told us, now
        forwards = self.rumors.forward(self.node_id, batch, result.fresh)
        if forwards:
            reached = seen_by(self.membership.live_ids(), batch.rumor_seen)
            exclude = {peer, *reached} | {e.origin for e in result.fresh}
            targets = self.membership.sample_live(c.fanout, exclude)
            seen = seen_mask([self.node_id, *targets])
            forwards = [replace(rumor, rumor_seen=seen) for rumor in forwards]
            for target in targets:
                for rumor in forwards:
                    self._send(target, rumor, "rumor")
                    self.metrics.rumors_forwarded += 1

    def collect_tombstones(self) -> int:
        """Collect causally stable tombstones now (also runs every
        tombstone_gc_interval_ticks): those covered by our vector and the last vector of
        every live member that sent us one. Returns how many were dropped."""
        vectors = self.membership.live_version_vectors()
        effects = self.replica.collect_tombstones(stable([*vectors, self.version_vector()]))
        dropped = sum(1 for e in effects if isinstance(e, DropTombstone))
        self.metrics.tombstones_collected += dropped
        self._effects.extend(effects)
        return dropped


def _safe_count(batch: object) -> int:
    try:
        runs = getattr(batch, "runs", ())
        return sum(len(getattr(r, "events", ()) or ()) for r in runs)
    except TypeError:
        return 1
