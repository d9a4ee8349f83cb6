"""The simulator's in-memory network: seeded loss, duplication, delay, reordering,
partitions and crashed nodes. Deterministic for a given seed.

Nodes are indices. A message sent at tick t is delivered at t + d, d uniform in
``[min_delay, max_delay]`` (so messages overtake each other when the range is wide),
and messages due at the same tick are delivered in a random order. A message is
lost with probability ``drop``, delivered twice (independent delays) with probability
``duplicate``, and never crosses a partition or reaches a crashed node (checked both
when sent and when due). A partition may be one way (``partition(..., one_way=True)``:
messages from the first group to the others are lost, the others' reach it). Per node,
``node_loss`` drops that share of the messages it sends or receives and ``node_delay``
adds up to that many ticks to each (a flaky link or a slow host).
"""

from __future__ import annotations

import random
from collections.abc import Iterable
from dataclasses import dataclass, field

from federation.messages import EventBatch, Message


@dataclass(frozen=True)
class NetConfig:
    drop: float = 0.0
    duplicate: float = 0.0
    min_delay: int = 1
    max_delay: int = 1

    def __post_init__(self) -> None:
        if not (0 <= self.drop < 1 and 0 <= self.duplicate <= 1):
            raise ValueError("drop must be in [0, 1), duplicate in [0, 1]")
        if not 1 <= self.min_delay <= self.max_delay:
            raise ValueError("need 1 <= min_delay <= max_delay")


@dataclass
class NetStats:
    sent: int = 0
    delivered: int = 0
    dropped: int = 0
    duplicated: int = 0
    blocked: int = 0
    events_to: dict[int, int] = field(default_factory=dict)
    """Events carried by batches addressed to each node (sent, before loss)."""


class SimNetwork:
    def __init__(self, rng: random.Random, config: NetConfig | None = None) -> None:
        self.rng = rng
        self.config = config if config is not None else NetConfig()
        self.stats = NetStats()
        self._queue: dict[int, list[tuple[int, int, Message]]] = {}
        self._group: dict[int, int] | None = None
        self._one_way = False
        self.down: set[int] = set()
        self.node_loss: dict[int, float] = {}
        self.node_delay: dict[int, int] = {}

    # topology ----------------------------------------------------------------------
    def partition(self, groups: Iterable[Iterable[int]], *, one_way: bool = False) -> None:
        """Cut the network into groups; nodes in no group form one more group.
        ``one_way``: only messages from the first group to the others are cut."""
        self._group = {}
        self._one_way = one_way
        for g, members in enumerate(groups):
            for node in members:
                self._group[node] = g

    def heal(self) -> None:
        self._group = None
        self._one_way = False

    def connected(self, a: int, b: int) -> bool:
        """Whether a message from a can reach b now."""
        if a in self.down or b in self.down:
            return False
        if self._group is None:
            return True
        ga, gb = self._group.get(a, -1), self._group.get(b, -1)
        if self._one_way:
            return not (ga == 0 and gb != 0)
        return ga == gb

    # traffic -----------------------------------------------------------------------
    def send(self, now: int, src: int, dst: int, message: Message) -> None:
        stats = self.stats
        stats.sent += 1
        if isinstance(message, EventBatch):
            stats.events_to[dst] = stats.events_to.get(dst, 0) + message.event_count
        if not self.connected(src, dst):
            stats.blocked += 1
            return
        c = self.config
        rng = self.rng
        if c.drop and rng.random() < c.drop:
            stats.dropped += 1
            return
        if self.node_loss:
            lost = self.node_loss.get(src, 0.0) + self.node_loss.get(dst, 0.0)
            if lost and rng.random() < lost:
                stats.dropped += 1
                return
        extra = 0
        if self.node_delay:
            extra = self.node_delay.get(src, 0) + self.node_delay.get(dst, 0)
        copies = 2 if c.duplicate and rng.random() < c.duplicate else 1
        if copies == 2:
            stats.duplicated += 1
        for _ in range(copies):
            delay = c.min_delay
            if c.max_delay > c.min_delay:
                delay = rng.randint(c.min_delay, c.max_delay)
            if extra:
                delay += rng.randint(0, extra)
            self._queue.setdefault(now + delay, []).append((src, dst, message))

    def due(self, now: int) -> list[tuple[int, int, Message]]:
        batch = self._queue.pop(now, None)
        if not batch:
            return []
        if len(batch) > 1:
            self.rng.shuffle(batch)
        out = []
        for src, dst, message in batch:
            if self.connected(src, dst):
                out.append((src, dst, message))
            else:
                self.stats.blocked += 1
        self.stats.delivered += len(out)
        return out

