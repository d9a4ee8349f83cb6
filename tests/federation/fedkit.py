"""Helpers for the federation core tests: deterministic keys, signed events, pumps."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping, Sequence
from functools import cache, lru_cache

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.config import FederationConfig
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
from federation.messages import EventBatch, EventRun
from federation.replica import ReplicaState
from federation.validate import Limits

MODEL = ModelId("test-model", 8, "feedface")
OTHER_MODEL = ModelId("other-model", 8, "deadbeef")


@cache
def key(n: int) -> Ed25519PrivateKey:
    return Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"fed-test-%d" % n).digest())


@cache
def node_id(n: int) -> str:
    return node_id_from_public_key(public_key_bytes(key(n)))


def embedding(origin: int, seq: int, dim: int = MODEL.dim) -> bytes:
    return hashlib.shake_128(b"%d/%d" % (origin, seq)).digest(4 * dim)


@lru_cache(maxsize=4096)
def _event(
    origin: int, seq: int, kind: EventKind, local_id: str, meta: tuple[tuple[str, MetaValue], ...]
) -> Event:
    forget = kind is EventKind.FORGET
    event = Event(
        origin=node_id(origin),
        seq=seq,
        kind=kind,
        local_id=local_id,
        timestamp_ms=1_700_000_000_000 + seq,
        privacy=SharedPrivacy.TEAM,
        model=None if forget else MODEL,
        embedding=b"" if forget else embedding(origin, seq),
        metadata={} if forget else dict(meta),
    )
    return sign(event, key(origin))


def make_event(
    origin: int,
    seq: int,
    kind: EventKind = EventKind.PUT,
    local_id: str = "m",
    metadata: Mapping[str, MetaValue] | None = None,
) -> Event:
    meta = tuple(sorted((metadata if metadata is not None else {"v": seq}).items()))
    return _event(origin, seq, kind, local_id, meta)


class Origin:
    """Writes the signed log of origin number ``n`` (seq 1, 2, 3...)."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.node_id = node_id(n)
        self.seq = 0
        self.events: list[Event] = []

    def _next(
        self, kind: EventKind, local_id: str, metadata: Mapping[str, MetaValue] | None
    ) -> Event:
        self.seq += 1
        event = make_event(self.n, self.seq, kind, local_id, metadata)
        self.events.append(event)
        return event

    def put(self, local_id: str, metadata: Mapping[str, MetaValue] | None = None) -> Event:
        return self._next(EventKind.PUT, local_id, metadata)

    def update(self, local_id: str, metadata: Mapping[str, MetaValue] | None = None) -> Event:
        return self._next(EventKind.UPDATE, local_id, metadata)

    def forget(self, local_id: str) -> Event:
        return self._next(EventKind.FORGET, local_id, None)


def replica(n: int = 100, *, max_buffered: int = 1024, verify: bool = True) -> ReplicaState:
    limits = Limits(model=MODEL, verify_signatures=verify)
    return ReplicaState(node_id(n), limits, max_buffered_per_origin=max_buffered)


def reference_live(events: Iterable[Event]) -> frozenset[tuple[str, int]]:
    """What a replica that applied ``events`` in seq order must hold: (memory id, seq)."""
    latest: dict[str, Event] = {}
    forgotten: set[str] = set()
    for event in sorted(events, key=lambda e: (e.origin, e.seq)):
        if event.kind is EventKind.FORGET:
            forgotten.add(event.memory_id)
            latest.pop(event.memory_id, None)
        elif event.memory_id not in forgotten:
            latest[event.memory_id] = event
    return frozenset((e.memory_id, e.seq) for e in latest.values())


def live_of(state: ReplicaState) -> frozenset[tuple[str, int]]:
    return frozenset((e.memory_id, e.seq) for e in state.live_entries())


def rumor(sender: str, event: Event, hops: int = 99) -> EventBatch:
    return EventBatch(sender, (EventRun(event.origin, event.seq - 1, event.seq, (event,)),), hops)


def core(n: int, config: FederationConfig | None = None, **kwargs: object) -> FederationCore:
    return FederationCore(
        node_id=node_id(n),
        model=MODEL,
        address=f"addr-{n}",
        config=config if config is not None else FederationConfig.local(),
        seed=n,
        **kwargs,  # type: ignore[arg-type]
    )


def pump(cores: Sequence[FederationCore], max_steps: int = 10_000) -> int:
    """Deliver every message at once (no loss) until quiet. Returns messages moved."""
    by_id = {c.node_id: c for c in cores}
    moved = 0
    for _ in range(max_steps):
        progress = False
        for c in cores:
            if c.has_ready():
                rd = c.ready()
                c.advance()
                for out in rd.messages:
                    target = by_id.get(out.to)
                    if target is not None:
                        target.on_message(c.node_id, out.message)
                        moved += 1
                        progress = True
        if not progress:
            return moved
    raise AssertionError("pump did not quiesce")
