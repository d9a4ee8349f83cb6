"""One simulated chaos drill: N cores over the simulator's network, the real drill's
load and fault mix on simulated time for ``rounds`` anti-entropy rounds, then every
fault healed and every node up, and the real drill's checks (bench/simchaos/checks.py).

Deterministic: the simulator, the load and each driver have their own seed derived
from ``seed``; the same options give the same report (wall times aside).
:func:`run_drill` returns the report (what ``--json`` writes); the test suite calls it
small with a fixed seed.
"""

from __future__ import annotations

import resource
import time
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench.simchaos import checks
from bench.simchaos.faults import DRIVERS, NOT_SIMULATED, RestoreDriver, SimDriver
from bench.simchaos.load import Ledger, SimLoad
from bench.simulate import VERIFY_UP_TO, config_for
from federation.effects import DeleteReplica, Effect, OwnSeqLearned, UpsertReplica
from federation.events import Event
from federation.sim.network import NetConfig
from federation.sim.simulation import SimNode, Simulation
from federation.sim.store import SimStore


@dataclass(frozen=True)
class SimDrillOptions:
    nodes: int = 50
    rounds: int = 200
    seed: int = 1
    rate: float = 10.0  # operations per round (the real drill: 10/s, a round ~ 1 s)
    preset: str = "lan"
    drivers: tuple[str, ...] = tuple(DRIVERS)
    max_restores: int = 3
    seeds_per_node: int = 8
    agree_rounds: int = 120  # eventually_vectors_agree's bound
    discovery_rounds: float = 10.0  # discovery proposes every node's seeds again


@dataclass
class Costs:
    """Messages and bytes sent, summed over every core a node ran (a restart starts a
    new core with fresh counters)."""

    messages: int = 0
    bytes: int = 0
    kinds: Counter[str] = field(default_factory=Counter)

    def retire(self, node: SimNode) -> None:
        m = node.core.metrics
        self.messages += sum(m.messages_sent.values())
        self.bytes += m.bytes_sent
        self.kinds.update(m.messages_sent)

    def now(self, sim: Simulation) -> tuple[int, int, Counter[str]]:
        messages, size, _, kinds = sim.totals()
        return self.messages + messages, self.bytes + size, self.kinds + Counter(kinds)


class SeqRegistry:
    """Every event any node applied, by (origin, seq): two different events under one
    (origin, seq) anywhere is a seq reused (finally_no_seq_reused)."""

    def __init__(self) -> None:
        self.seen: dict[tuple[str, int], tuple[str, str, bytes]] = {}
        self.reused: list[str] = []

    def event(self, e: Event) -> None:
        key = (e.origin, e.seq)
        ident = (e.memory_id, e.kind.name, e.signature)
        old = self.seen.setdefault(key, ident)
        if old != ident and len(self.reused) < 100:
            self.reused.append(f"{e.origin[:12]} seq {e.seq}: {old[1]} {old[0]} and "
                               f"{ident[1]} {ident[0]}")

    def effects(self, node: SimNode, effects: Sequence[Effect]) -> None:
        for effect in effects:
            if isinstance(effect, UpsertReplica):
                self.event(effect.event)
            elif isinstance(effect, DeleteReplica) and effect.forget is not None:
                self.event(effect.forget)


class SimDrill:
    def __init__(self, o: SimDrillOptions) -> None:
        self.o = o
        config = config_for(o.preset, o.nodes)
        self.interval = config.anti_entropy_interval_ticks
        self.sim = Simulation(o.nodes, config=config, seed=o.seed, net=NetConfig(),
                              seeds_per_node=min(o.nodes - 1, o.seeds_per_node),
                              discovery_interval_ticks=int(o.discovery_rounds
                                                           * self.interval))
        self.costs = Costs()
        self.registry = SeqRegistry()
        self.sim.on_effects = self._effects
        self.ledger = Ledger()
        self.load: SimLoad | None = None
        self.drivers: list[SimDriver] = []
        self.restores: list[dict[str, Any]] = []  # each restore: node, ticks restoring

    # what the drivers call --------------------------------------------------------------
    def revive(self, i: int) -> None:
        node = self.sim.nodes[i]
        if node.up:
            return
        self.costs.retire(node)
        self.sim.revive(i, restart=True)

    def restore(self, i: int, backup: SimStore) -> None:
        node = self.sim.nodes[i]
        self.costs.retire(node)
        self.sim.kill(i)
        self.sim.restore(i, backup)
        self.restores.append({"node": i, "wiped_at": self.sim.now, "ended_at": None})

    def _effects(self, node: SimNode, effects: Sequence[Effect]) -> None:
        self.registry.effects(node, effects)
        for effect in effects:
            if isinstance(effect, OwnSeqLearned):
                for r in self.restores:
                    if r["node"] == node.index and r["ended_at"] is None:
                        r["ended_at"] = self.sim.now
                        r["rounds_restoring"] = round((self.sim.now - r["wiped_at"])
                                                      / self.interval, 1)

    # the run ----------------------------------------------------------------------------
    def run(self, progress: Callable[[str], None] | None = None) -> dict[str, Any]:
        o, sim = self.o, self.sim
        t0, cpu0 = time.perf_counter(), time.process_time()
        sim.rounds(2)  # membership settles, as the real drill waits for its pods
        built = time.perf_counter() - t0
        self.load = SimLoad(sim, self.ledger, o.rate, o.seed)
        for k, name in enumerate(o.drivers):
            driver = DRIVERS[name](self, seed=o.seed * 1000 + k)
            if isinstance(driver, RestoreDriver):
                driver.max_restores = o.max_restores
            self.drivers.append(driver)
        start = sim.now
        every = max(1, o.rounds // 10) * self.interval
        for _ in range(o.rounds * self.interval):
            if progress is not None and (sim.now - start) % every == 0 and sim.now > start:
                progress(f"round {(sim.now - start) // self.interval}, "
                         f"{time.perf_counter() - t0:.0f} s")
            self.load.tick()
            for d in self.drivers:
                d.tick(sim.now)
            sim.step()
        chaos_s = time.perf_counter() - t0 - built
        for d in self.drivers:  # the last heal: every fault ends, every node is up
            d.heal()
        for node in sim.nodes:
            self.revive(node.index)
        healed_at = sim.now
        t1 = time.perf_counter()
        windows = next((d.windows for d in self.drivers if isinstance(d, RestoreDriver)), {})
        agree = checks.eventually_vectors_agree(self, windows, o.agree_rounds)
        agree_s = time.perf_counter() - t1
        results = [agree, *checks.finally_checks(self, windows)]
        messages, size, kinds = self.costs.now(sim)
        n = len(sim.nodes)
        faults = Counter(f.kind for d in self.drivers for f in d.faults)
        return {
            "options": {**o.__dict__, "drivers": list(o.drivers)},
            "ok": all(c.ok for c in results),
            "checks": {c.name: c.to_json() for c in results},
            "operations": {"acknowledged": dict(self.ledger.acked),
                           "refused": dict(self.ledger.refused)},
            "faults": dict(sorted(faults.items())),
            "faults_log": [f.__dict__ for d in self.drivers for f in d.faults][:2000],
            "not_simulated": NOT_SIMULATED,
            "restores": self.restores,
            "ticks": {"chaos": healed_at - start, "healed_at": healed_at,
                      "anti_entropy_interval": self.interval,
                      "tick_ms": sim.config.tick_ms},
            "messages": messages, "bytes": size, "messages_by_kind": dict(kinds),
            "messages_per_node": round(messages / n, 1),
            "bytes_per_node": round(size / n),
            "network": sim.net.stats.__dict__ | {"events_to": None},
            "signatures_verified": o.nodes <= VERIFY_UP_TO,
            "max_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            "seconds": {"build": round(built, 2), "chaos": round(chaos_s, 2),
                        "agree": round(agree_s, 2),
                        "total": round(time.perf_counter() - t0, 2),
                        "cpu": round(time.process_time() - cpu0, 2)},
        }


def run_drill(o: SimDrillOptions, progress: Callable[[str], None] | None = None
              ) -> dict[str, Any]:
    return SimDrill(o).run(progress)
