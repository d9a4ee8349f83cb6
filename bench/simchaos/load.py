"""The simulated drill's load and ledger: remember / update / forget at a steady rate
from every node, as bench/chaos/load.py does against real pods, and the ledger of
every acknowledged operation.

An operation is *acknowledged* when its origin's core accepted it as a local event
(``FederationCore.local_event`` returned and did not skip it). A node that is down or
restoring refuses it, as the real node answers UNAVAILABLE while it learns its own seq
(memnode.node.restore): counted as refused, nothing asked of it. Update and forget go
to the memory's origin, which owns it; the metadata ``v`` of each acknowledged update
is one more than the last, so every version of a memory is told apart.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

from bench.chaos.load import take_free
from federation.events import Event
from federation.sim.simulation import Simulation

KINDS = ("remember", "update", "forget")
MIX = (0.6, 0.25, 0.15)  # the real drill's (bench/chaos/load.py)


@dataclass
class Written:
    id: str  # memory id (origin node id / local id)
    origin: int  # node index
    local_id: str
    seq: int  # seq of its last acknowledged PUT or UPDATE
    version: int = 0  # metadata "v" of that event
    seqs: list[int] = field(default_factory=list)  # every acknowledged PUT/UPDATE seq
    forgotten: bool = False
    forget_seq: int = 0
    t: int = 0  # tick the remember was acknowledged
    t_change: int = 0  # ... the last update or the forget


@dataclass
class Ledger:
    writes: dict[str, Written] = field(default_factory=dict)
    acked: Counter[str] = field(default_factory=Counter)
    refused: Counter[str] = field(default_factory=Counter)
    top_seq: dict[int, list[tuple[int, int]]] = field(default_factory=dict)
    """node index -> (tick, seq) of each acknowledged operation, in order."""
    _free: list[str] = field(default_factory=list)  # live memories, for update/forget

    def take(self, rng: random.Random, origins: set[int] | None = None) -> Written | None:
        return take_free(self._free, self.writes, rng, origins)

    def give_back(self, w: Written) -> None:
        if not w.forgotten:
            self._free.append(w.id)

    def ack(self, kind: str, origin: int, tick: int, seq: int) -> None:
        self.acked[kind] += 1
        self.top_seq.setdefault(origin, []).append((tick, seq))


class SimLoad:
    """``rate`` operations per anti-entropy round in all, spread evenly over its ticks
    (a fractional accumulator: steady, no bursts), each on a random node."""

    def __init__(self, sim: Simulation, ledger: Ledger, rate: float, seed: int) -> None:
        self.sim, self.ledger = sim, ledger
        self.per_tick = rate / sim.config.anti_entropy_interval_ticks
        self.rng = random.Random(f"load/{seed}")
        self._due = 0.0
        self._counter = 0

    def tick(self) -> None:
        self._due += self.per_tick
        while self._due >= 1.0:
            self._due -= 1.0
            self.one(self.rng.choices(KINDS, MIX)[0])

    def _accepts(self, i: int) -> bool:
        node = self.sim.nodes[i]
        return node.up and not node.core.restoring

    def _accepted(self, i: int, write: Callable[[], Event]) -> int | None:
        """Run ``write`` (one local event on node i): its seq if the core accepted it,
        None if it skipped it."""
        core = self.sim.nodes[i].core
        skipped = core.metrics.own_events_skipped
        event = write()
        return None if core.metrics.own_events_skipped != skipped else event.seq

    def one(self, kind: str) -> None:
        led, sim, now = self.ledger, self.sim, self.sim.now
        w = led.take(self.rng) if kind != "remember" else None
        if w is None:
            kind = "remember"
        if kind == "remember":
            origin = self.rng.randrange(len(sim.nodes))
            if not self._accepts(origin):
                led.refused[kind] += 1
                return
            self._counter += 1
            local = f"c{self._counter}"
            seq = self._accepted(origin, lambda: sim.put(origin, local, {"v": 0}))
            if seq is None:
                led.refused[kind] += 1
                return
            mid = f"{sim.nodes[origin].node_id}/{local}"
            led.writes[mid] = Written(mid, origin, local, seq, 0, [seq], t=now, t_change=now)
            led._free.append(mid)
            led.ack(kind, origin, now, seq)
            return
        assert w is not None
        try:
            self.change(w, kind)
        finally:
            led.give_back(w)

    def change(self, w: Written, kind: str) -> bool:
        """Update or forget ``w`` on its origin; whether it was acknowledged."""
        led, sim, now = self.ledger, self.sim, self.sim.now
        if not self._accepts(w.origin):
            led.refused[kind] += 1
            return False
        if kind == "update":
            v = w.version + 1
            seq = self._accepted(w.origin, lambda: sim.update(w.origin, w.local_id, {"v": v}))
        else:
            seq = self._accepted(w.origin, lambda: sim.forget(w.origin, w.local_id))
        if seq is None:
            led.refused[kind] += 1
            return False
        if kind == "update":
            w.seq, w.version = seq, w.version + 1
            w.seqs.append(seq)
        else:
            w.forgotten, w.forget_seq = True, seq
        w.t_change = now
        led.ack(kind, w.origin, now, seq)
        return True

    def forget_on(self, origins: set[int]) -> str | None:
        """Forget one memory written on one of ``origins`` (the partition driver, while
        they are cut off). Returns what it did."""
        w = self.ledger.take(self.rng, origins)
        if w is None:
            return None
        try:
            ok = self.change(w, "forget")
        finally:
            self.ledger.give_back(w)
        return f"{w.local_id} on node {w.origin}" + ("" if ok else " (refused)")
