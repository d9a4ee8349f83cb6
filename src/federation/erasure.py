"""Erasure orders: the federation's CA tells every member to erase an origin's memories.

Pure (no I/O, no crypto): the sidecar verifies the CA's signature
(:mod:`federation.io.erasesign`) and hands the orders to the core
(:meth:`federation.engine.FederationCore.erase`). An order names an ``origin`` and
optionally memory ids of it (none: every memory of that origin), with its serial and
the time it was issued. Orders are only ever added.

What an order does on a member (never to the member's own memories: an order is about
the copies others hold of a lost or departed origin):

- its replicas of the covered memories are deleted (``DeleteReplica`` effects with no
  tombstone kept), live entries and tombstones alike; the watermark stays;
- from then on, every covered event that arrives from any peer, whatever its seq or
  timestamp, is refused as :attr:`~federation.validate.RejectReason.ERASED` (after the
  usual validation, signature included) and skipped: the watermark moves past it as
  past a compacted seq, so peers do not send it again and again.

So an order for a whole origin refuses every event of that origin, also those written
after the order was issued: an origin that comes back needs a new node id (a new data
directory). An order for some ids refuses only those memories' events; the rest of the
origin replicates as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

from federation.effects import DeleteReplica, Effect
from federation.events import Event, origin_of
from federation.origin import OriginState
from federation.validate import RejectReason


@dataclass(frozen=True)
class ErasureOrder:
    serial: int
    origin: str
    ids: frozenset[str] = frozenset()
    """Memory ids (``origin/local_id``) of ``origin``; empty: every memory of it."""
    issued_ms: int = 0

    def covers(self, memory_id: str) -> bool:
        return origin_of(memory_id) == self.origin and (not self.ids or memory_id in self.ids)


class Erasures:
    """The orders a member enforces, and the check the apply rule runs."""

    def __init__(self, orders: Iterable[ErasureOrder] = ()) -> None:
        self._serials: set[int] = set()
        self._origins: set[str] = set()  # erased whole
        self._ids: set[str] = set()
        self.add(orders)

    def add(self, orders: Iterable[ErasureOrder]) -> list[ErasureOrder]:
        """Take in ``orders``; returns those not held before (by serial)."""
        new = []
        for order in orders:
            if order.serial in self._serials:
                continue
            self._serials.add(order.serial)
            if order.ids:
                self._ids.update(order.ids)
            else:
                self._origins.add(order.origin)
            new.append(order)
        return new

    def __len__(self) -> int:
        return len(self._serials)

    def covers(self, memory_id: str) -> bool:
        if not self._serials:
            return False
        return memory_id in self._ids or origin_of(memory_id) in self._origins

    def check(self, event: Event) -> RejectReason | None:
        """ERASED when an order covers ``event``'s memory, else None."""
        return RejectReason.ERASED if self.covers(event.memory_id) else None


def purge(st: OriginState, order: ErasureOrder) -> list[Effect]:
    """Drop from ``st`` (the order's origin) every live entry and tombstone the order
    covers; the effects that delete them from the node's store and log."""
    effects: list[Effect] = []
    for held in (st.live, st.tombstones):
        for memory_id in [m for m in held if order.covers(m)]:
            st.release(held.pop(memory_id).seq)
            effects.append(DeleteReplica(memory_id, None))
    return effects
