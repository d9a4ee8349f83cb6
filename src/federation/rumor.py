"""Push-on-write: rumor mongering of new events.

- A new local event is pushed at once, as a batch with ``rumor_hops = 1``, to every
  live peer while there are at most ``push_direct_max`` (each receives it once; a
  receiver forwards only to peers outside the rumor's seen mask), else to ``fanout``
  live peers.
- A node that receives a rumor forwards the events that were *new to it* (applied or
  buffered; duplicates never) to ``fanout`` other live peers, with ``hops + 1``,
  unless ``hops`` reached ``rumor_max_hops``.
- Every rumor carries ``rumor_seen``, a 64-bit mask of its sender and the peers that
  sender pushed it to; a receiver forwards only to peers outside it. In a mesh no
  bigger than ``fanout + 1`` the origin's push reaches everyone and nobody forwards:
  each replica receives each event once.

Every node forwards an event at most once (the second copy is a duplicate), so a
write costs at most about N * fanout messages and stops by itself; the hop limit
bounds it further. The share of nodes a rumor misses is roughly exp(-fanout);
anti-entropy delivers to them.

A rumor carries runs of consecutive events only (no compaction gaps), so it needs no
watermarks or GC floors.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from functools import lru_cache

from federation.config import FederationConfig
from federation.events import Event
from federation.messages import EventBatch, EventRun
from federation.sizes import BATCH_OVERHEAD, RUN_OVERHEAD, event_size


@lru_cache(maxsize=1 << 14)
def seen_bit(node_id: str) -> int:
    """The bit of ``node_id`` in a rumor's ``rumor_seen`` mask (cached: a forward tests
    every live member, so a 1,000-node mesh hashed a million ids per write)."""
    digest = hashlib.blake2b(node_id.encode("utf-8"), digest_size=1).digest()
    return 1 << (digest[0] % 64)


def seen_mask(node_ids: Iterable[str]) -> int:
    mask = 0
    for node_id in node_ids:
        mask |= seen_bit(node_id)
    return mask


def seen_by(peers: Iterable[str], mask: int) -> list[str]:
    """The peers a rumor with ``mask`` has (probably) reached already."""
    return [p for p in peers if mask & seen_bit(p)]


def _run_of(events: list[Event]) -> EventRun:
    """The gap-free run of consecutive events of one origin."""
    return EventRun(events[0].origin, events[0].seq - 1, events[-1].seq, tuple(events))


def consecutive_runs(events: Iterable[Event]) -> list[EventRun]:
    """Group events into runs of consecutive seqs per origin (sorted by origin, seq)."""
    unique = {(e.origin, e.seq): e for e in events}
    ordered = [unique[k] for k in sorted(unique)]
    runs: list[EventRun] = []
    current: list[Event] = []
    for event in ordered:
        if current and (event.origin != current[-1].origin or event.seq != current[-1].seq + 1):
            runs.append(_run_of(current))
            current = []
        current.append(event)
    if current:
        runs.append(_run_of(current))
    return runs


class Rumors:
    """Builds rumor batches; the engine picks the peers and sends them."""

    def __init__(self, config: FederationConfig) -> None:
        self._config = config

    @property
    def fanout(self) -> int:
        return self._config.fanout

    def push(self, sender: str, events: Iterable[Event]) -> list[EventBatch]:
        """Batches to push for new local events (hop 1)."""
        return self._pack(sender, events, 1)

    def forward(self, sender: str, received: EventBatch, fresh: list[Event]) -> list[EventBatch]:
        """Batches to forward for a received rumor, or [] (not a rumor, nothing new,
        or the hop limit reached)."""
        hops = received.rumor_hops
        if hops == 0 or not fresh or hops >= self._config.rumor_max_hops:
            return []
        return self._pack(sender, fresh, hops + 1)

    def _pack(self, sender: str, events: Iterable[Event], hops: int) -> list[EventBatch]:
        c = self._config
        batches: list[EventBatch] = []
        runs: list[EventRun] = []
        count, size = 0, BATCH_OVERHEAD
        for run in consecutive_runs(events):
            # split a long run so that each piece fits a batch
            chunk: list[Event] = []
            chunk_size = RUN_OVERHEAD
            for event in run.events:
                es = event_size(event) + 4
                full = count + len(chunk) >= c.max_batch_events
                if full or (chunk or runs) and size + chunk_size + es > c.max_batch_bytes:
                    if chunk:
                        runs.append(_run_of(chunk))
                    if runs:
                        batches.append(EventBatch(sender, tuple(runs), hops))
                    runs, chunk, count, size, chunk_size = [], [], 0, BATCH_OVERHEAD, RUN_OVERHEAD
                chunk.append(event)
                chunk_size += es
            if chunk:
                runs.append(_run_of(chunk))
                count += len(chunk)
                size += chunk_size
        if runs:
            batches.append(EventBatch(sender, tuple(runs), hops))
        return batches
