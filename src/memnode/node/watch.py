"""The change feed: clients follow the node's log (the Watch RPC).

A watcher holds a position per origin (a version vector: origin -> highest seq seen)
and reads the log from there **on demand**, one bounded run at a time: first what the
log holds after its position (the catch-up), then each new change as it becomes
visible. Nothing is queued per watcher, so a slow client costs one run of events in
memory, never more: while gRPC's flow control holds the stream, the feed waits.

Wake-ups, not data, come from the two places the log grows: this node's own commits
(:meth:`ReplicaBackend.watch`, the same subscription the sidecar follows, which also
tells how far own changes are visible: they are read only up to there, so their text
is always found) and the replication core's persists (``ReplicaBackend.on_persisted``).

What a watcher sees, per origin in seq order and each position once: the *retained*
log (:mod:`memnode.storage.eventlog`): a memory changed again before the watcher read
it shows only its newest state (a put followed by an update comes as one update), and
a forgotten one as a forget. A position resumes exactly (nothing missed, nothing twice),
as long as the tombstones after it are still in the log: a resume point below an
origin's GC floor (a forget there may have been collected) is refused with
FAILED_PRECONDITION, and a stream that falls that far behind ends with it; the client
starts again from an empty vector (a full replay). Forgets that a node learns by
reconciliation (it was away past the GC horizon: docs/REPLICATION.md) leave no tombstone
and are not streamed.

Scope ``local``: this node's own memories, with text and clear metadata. ``mesh``:
also every replica, without text, with metadata as replicated. PRIVATE and EPHEMERAL
memories have no place in the log and are not streamed.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from federation.events import NODE_ID_LEN, Event, EventKind
from memnode.errors import FailedPrecondition, InvalidArgument, ResourceExhausted, Unavailable
from memnode.node.domain import LocalRecord, MetaValue, Privacy

if TYPE_CHECKING:
    from memnode.node.node import Node
    from memnode.node.replica_port import ReplicaBackend

#: Events read from the log per origin per step (about 1.6 KB each with the vector).
RUN_EVENTS = 256
RUN_BYTES = 1 << 20
#: Origins a resume vector may name (a mesh has far fewer).
MAX_FROM_ORIGINS = 10_000
#: A waiting watcher looks again this often even with no wake-up (a safety net).
IDLE_SECONDS = 5.0
_SEQ_MAX = (1 << 63) - 1
_NODE_ID_CHARS = set("abcdefghijklmnopqrstuvwxyz234567")


@dataclass(frozen=True)
class Change:
    origin: str
    seq: int
    kind: EventKind
    id: str
    privacy: Privacy
    local: bool
    updated_at_ms: int  # when the change was made
    created_at_ms: int = 0  # own memories, and replicas' puts; 0 where not known
    text: str = ""
    metadata: dict[str, MetaValue] = field(default_factory=dict)


def check_vector(vector: Mapping[str, int]) -> dict[str, int]:
    """A resume vector as a client sends it, checked: InvalidArgument naming the fault."""
    if len(vector) > MAX_FROM_ORIGINS:
        raise InvalidArgument(f"from_version_vector names {len(vector)} origins; at most "
                              f"{MAX_FROM_ORIGINS}")
    for origin, seq in vector.items():
        if len(origin) != NODE_ID_LEN or not set(origin) <= _NODE_ID_CHARS:
            raise InvalidArgument(f"from_version_vector: {origin!r} is not a node id "
                                  f"({NODE_ID_LEN} characters a-z, 2-7)")
        if not 0 <= seq <= _SEQ_MAX:
            raise InvalidArgument(f"from_version_vector: seq {seq} of {origin} is out of "
                                  "range")
    return {o: s for o, s in vector.items() if s > 0}


def check_floor(origin: str, after: int, floors: Mapping[str, int]) -> None:
    """FailedPrecondition when a watcher past ``after`` of ``origin`` (it has seen some of
    its memories) may have missed a forget: the log collected tombstones above it."""
    floor = floors.get(origin, 0)
    if 0 < after < floor:
        raise FailedPrecondition(
            f"cannot follow {origin} after seq {after}: tombstones up to seq {floor} "
            "were collected, so a forget may be missing; watch again from an empty "
            "version vector (a full replay)")


class ChangeFeed:
    """Every Watch stream of one node. Thread-safe."""

    def __init__(self, node: Node, replication: ReplicaBackend, max_watchers: int) -> None:
        self.node = node
        self.max_watchers = max_watchers
        self._cond = threading.Condition()
        self._version = 0  # bumped by every wake-up
        self._closed = False
        self._open: set[Watcher] = set()
        with node._write_lock:  # everything committed so far is visible
            self._own_visible = node.log.watermark(node.node_id)
        self._stop_own = replication.watch(self._own_visible, self._own_committed)
        replication.on_persisted(self._persisted)
        node.metrics.watchers.set_function(lambda: len(self._open))

    def _own_committed(self, events: list[Event]) -> None:
        # called under the node's write lock, once the events are visible
        with self._cond:
            self._own_visible = max(self._own_visible, events[-1].seq)
            self._wake()

    def _persisted(self) -> None:
        node = self.node
        if node.log.watermark(node.node_id) > self._own_visible:
            # own events arrived by replication (a restore), or a commit is announcing:
            # the write lock makes them visible first
            with node._write_lock, self._cond:
                self._own_visible = max(self._own_visible, node.log.watermark(node.node_id))
        with self._cond:
            self._wake()

    def _wake(self) -> None:
        self._version += 1
        self._cond.notify_all()

    def open(self, start: Mapping[str, int], mesh: bool) -> Watcher:
        """A watcher from ``start``; InvalidArgument for a bad vector,
        FailedPrecondition for one below a GC floor, ResourceExhausted when full."""
        cursor = check_vector(start)
        floors = self.node.log.gc_floors()
        for origin, seq in sorted(cursor.items()):
            check_floor(origin, seq, floors)
        with self._cond:
            if self._closed:
                raise Unavailable("the node is shutting down")
            if len(self._open) >= self.max_watchers:
                raise ResourceExhausted(f"{len(self._open)} Watch streams are open, the "
                                        f"most this node allows (--max-watchers "
                                        f"{self.max_watchers}); close one or retry later")
            watcher = Watcher(self, cursor, mesh)
            self._open.add(watcher)
        return watcher

    def _release(self, watcher: Watcher) -> None:
        with self._cond:
            self._open.discard(watcher)
            self._wake()

    def close(self) -> None:
        """At shutdown: every stream ends (cleanly) at its next step; no new one opens."""
        self._stop_own()
        with self._cond:
            self._closed = True
            self._wake()


class Watcher:
    """One stream: iterate for changes; ``close`` (from any thread) ends it."""

    def __init__(self, feed: ChangeFeed, cursor: dict[str, int], mesh: bool) -> None:
        self.feed = feed
        self.cursor = cursor
        self.mesh = mesh
        self._closed = False

    def close(self) -> None:
        self._closed = True
        self.feed._release(self)

    def _done(self) -> bool:
        return self._closed or self.feed._closed

    def __iter__(self) -> Iterator[Change]:
        feed = self.feed
        try:
            while not self._done():
                with feed._cond:
                    seen, own_top = feed._version, feed._own_visible
                sent = yield from self._step(own_top)
                with feed._cond:
                    while not sent and feed._version == seen and not self._done():
                        feed._cond.wait(IDLE_SECONDS)
        finally:
            self.close()

    def _step(self, own_top: int) -> Generator[Change, None, bool]:
        """Whatever the log holds past the cursor, a bounded run per origin. Returns
        whether anything was sent."""
        node = self.feed.node
        own = node.node_id
        heads = node.log.version_vector() if self.mesh else {}
        heads[own] = own_top
        floors = node.log.gc_floors()
        sent = False
        for origin in sorted(heads, key=lambda o: (o != own, o)):
            after, top = self.cursor.get(origin, 0), heads[origin]
            if after >= top:
                continue
            if self._done():  # e.g. the node is closing its log
                return sent
            check_floor(origin, after, floors)  # a watcher far behind the log
            run = node.log.run_after(origin, after, RUN_EVENTS, RUN_BYTES)
            texts = node.visible.get_local_many(
                [e.memory_id for e in run.events if e.kind != EventKind.FORGET]
            ) if origin == own else {}
            for event in run.events:
                if event.seq > top:
                    break
                if self._done():
                    return sent
                yield self._change(event, origin == own, texts.get(event.memory_id))
                self.cursor[origin] = event.seq
                sent = True
            # seqs the run vouches were compacted away: nothing to send for them
            self.cursor[origin] = max(self.cursor.get(origin, 0), min(run.through_seq, top))
        return sent

    def _change(self, event: Event, own: bool, record: LocalRecord | None) -> Change:
        node = self.feed.node
        node.metrics.watch_changes.labels(kind=event.kind.name.lower()).inc()
        base = Change(origin=event.origin, seq=event.seq, kind=event.kind,
                      id=event.memory_id, privacy=Privacy(int(event.privacy)), local=own,
                      updated_at_ms=event.timestamp_ms)
        if event.kind == EventKind.FORGET:
            return base
        if not own:
            created = event.timestamp_ms if event.kind == EventKind.PUT else 0
            return replace(base, metadata=dict(event.metadata), created_at_ms=created)
        if record is None:  # forgotten since this run was read: its forget follows
            return base
        return replace(base, text=record.text, metadata=dict(record.metadata),
                       created_at_ms=record.created_at_ms)
