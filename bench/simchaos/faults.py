"""The real drill's fault drivers (bench/chaos/parallel_driver_*.py), on simulated
time: one anti-entropy round stands for one second of the real drill. Each driver is
seeded on its own, holds one fault at a time, tries a step every ``interval`` rounds
with ``probability``, and heals at the end whatever is in force.

- kill: crash 1..``max(1, 2% of N)`` random nodes (stop ticking, receive nothing) and
  restart them 0.5..4 rounds later from their durable SimStore (a new incarnation);
  a node whose store is still marked restoring comes back restoring.
- partition: random halves, one node isolated, or one way (the first side's messages
  to the rest are lost, the rest's reach it), healed after 2..10 rounds; while it
  holds, a memory written on the cut-off side is forgotten there.
- loss: 1..``max(1, 2% of N)`` nodes lose 5-30 % of the messages they send or receive
  and get up to 1..10 ticks of extra delay, for 3..12 rounds.
- restore: a backup (a snapshot of a node's SimStore), writes going on for 3..10
  rounds, then the node wiped and brought back from the backup in restoring mode: it
  takes back its own events and learns its own seq from peers before it writes.

Not simulated, and why: wall-clock steps (parallel_driver_clock.py) - the core has no
clock, time is its count of tick() calls, so a jump of the wall clock cannot reach it;
full disks (parallel_driver_disk.py) - the simulator has no disk, a store never fails
a write.
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from federation.sim.store import SimStore

if TYPE_CHECKING:
    from bench.simchaos.drill import SimDrill

NOT_SIMULATED = {
    "clock": "no wall clock in a tick-driven core: time is the count of tick() calls",
    "disk": "no disk in the simulator: the SimStore never refuses a write",
}


@dataclass
class Fault:
    tick: int
    kind: str
    detail: str
    ticks: int = 0  # how long it was in force


@dataclass
class SimDriver:
    drill: SimDrill
    seed: int
    interval: float = 5.0  # rounds
    probability: float = 0.5
    faults: list[Fault] = field(default_factory=list)
    name = "driver"

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.name}/{self.seed}")
        self.until: int | None = None  # tick the fault in force ends
        self.started = 0
        self._next = self._ticks(self.interval)

    def _ticks(self, rounds: float) -> int:
        return max(1, round(rounds * self.drill.sim.config.anti_entropy_interval_ticks))

    def _hold(self, lo: float, hi: float) -> None:
        self.started = self.drill.sim.now
        self.until = self.started + self._ticks(self.rng.uniform(lo, hi))

    def tick(self, now: int) -> None:
        if self.until is not None:
            if now >= self.until:
                self.heal()
            return
        if now >= self._next:
            self._next = now + self._ticks(self.interval)
            if self.rng.random() < self.probability:
                self.step()

    def note(self, kind: str, detail: str, ticks: int = 0) -> None:
        self.faults.append(Fault(self.started, kind, detail, ticks))

    def step(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """End the fault in force, if any."""
        self.until = None

    def _some(self, share: float) -> list[int]:
        n = len(self.drill.sim.nodes)
        k = self.rng.randint(1, max(1, round(share * n)))
        return sorted(self.rng.sample(range(n), k))


@dataclass
class KillDriver(SimDriver):
    probability: float = 0.3
    name = "kill"

    def step(self) -> None:
        self.down = [i for i in self._some(0.02) if self.drill.sim.nodes[i].up]
        for i in self.down:
            self.drill.sim.kill(i)
        self._hold(0.5, 4.0)

    def heal(self) -> None:
        if self.until is None:
            return
        for i in self.down:
            self.drill.revive(i)
        self.note("kill", f"{len(self.down)} nodes {self.down[:5]}",
                  self.drill.sim.now - self.started)
        self.until = None


KINDS = ("partition_halves", "partition_isolate", "partition_one_way")


@dataclass
class PartitionDriver(SimDriver):
    interval: float = 6.0
    name = "partition"

    def step(self) -> None:
        sim = self.drill.sim
        nodes = list(range(len(sim.nodes)))
        self.rng.shuffle(nodes)
        kind = self.rng.choice(KINDS)
        cut = 1 if kind == "partition_isolate" else self.rng.randrange(1, len(nodes))
        a = nodes[:cut]
        sim.partition([a, nodes[cut:]], one_way=kind == "partition_one_way")
        self.kind, self.sides = kind, (len(a), len(nodes) - cut)
        self._hold(2.0, 10.0)
        forgot = self.drill.load.forget_on(set(a)) if self.drill.load else None
        if forgot is not None:
            self.note("forget_while_partitioned", forgot)

    def heal(self) -> None:
        if self.until is None:
            return
        self.drill.sim.heal()
        arrow = "->" if self.kind == "partition_one_way" else "|"
        self.note(self.kind, f"{self.sides[0]} nodes {arrow} {self.sides[1]} nodes",
                  self.drill.sim.now - self.started)
        self.until = None


@dataclass
class LossDriver(SimDriver):
    interval: float = 7.0
    name = "loss"

    def step(self) -> None:
        net = self.drill.sim.net
        self.on = self._some(0.02)
        self.pct = self.rng.randint(5, 30)
        self.delay = self.rng.randint(1, 10)
        for i in self.on:
            net.node_loss[i] = self.pct / 100
            net.node_delay[i] = self.delay
        self._hold(3.0, 12.0)

    def heal(self) -> None:
        if self.until is None:
            return
        net = self.drill.sim.net
        net.node_loss.clear()
        net.node_delay.clear()
        self.note("loss", f"{len(self.on)} nodes {self.pct}% + up to {self.delay} ticks",
                  self.drill.sim.now - self.started)
        self.until = None


@dataclass
class RestoreDriver(SimDriver):
    interval: float = 20.0
    max_restores: int = 3
    #: node index -> (backup tick, wipe tick) of each restore done
    windows: dict[int, list[tuple[float, float]]] = field(default_factory=dict)
    name = "restore"

    def step(self) -> None:
        sim = self.drill.sim
        done = sum(map(len, self.windows.values()))
        ups = [n.index for n in sim.nodes if n.up and not n.core.restoring]
        if done >= self.max_restores or not ups:
            return
        self.node = self.rng.choice(ups)
        self.backup: SimStore = sim.nodes[self.node].store.snapshot()
        self._hold(3.0, 10.0)

    def heal(self) -> None:
        if self.until is None:
            return
        sim = self.drill.sim
        self.windows.setdefault(self.node, []).append((self.started, sim.now))
        self.drill.restore(self.node, self.backup)
        self.note("wipe_restore", f"node {self.node} from the backup of tick {self.started}",
                  sim.now - self.started)
        self.until = None


DRIVERS: dict[str, type[SimDriver]] = {"kill": KillDriver, "partition": PartitionDriver,
                                       "loss": LossDriver, "restore": RestoreDriver}
