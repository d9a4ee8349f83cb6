"""Convergence figures for bench/: rounds, messages and bytes until every node has
every write, for a single write and for a burst, in an N-node simulated mesh."""

from __future__ import annotations

from dataclasses import dataclass

from federation.config import FederationConfig
from federation.sim import ConvergenceReport, Simulation
from federation.simnet import NetConfig


@dataclass
class ConvergenceFigures:
    """What bench/ reports for one mesh size."""

    nodes: int
    single: ConvergenceReport
    """One PUT on one node, in a converged and quiet mesh."""
    burst: ConvergenceReport
    """``writes`` PUTs on random nodes at the same tick."""
    writes: int


def measure_convergence(
    n: int,
    writes: int,
    *,
    config: FederationConfig | None = None,
    seed: int = 0,
    seeds_per_node: int | None = 8,
    warmup_rounds: int = 5,
    max_rounds: float = 100,
    net: NetConfig | None = None,
) -> ConvergenceFigures:
    """Rounds, messages and bytes to full convergence of a single write and of a burst
    of ``writes`` writes, in an N-node mesh bootstrapped from ``seeds_per_node`` seeds
    (membership spreads during ``warmup_rounds``)."""
    sim = Simulation(n, config=config, seed=seed, net=net, seeds_per_node=seeds_per_node)
    sim.rounds(warmup_rounds)
    sim.run_until_converged(max_rounds)
    sim.tracked.clear()
    sim.put(sim.rng.randrange(n))
    single = sim.run_until_converged(max_rounds)
    sim.tracked.clear()
    for _ in range(writes):
        sim.put(sim.rng.randrange(n))
    burst = sim.run_until_converged(max_rounds)
    return ConvergenceFigures(n, single, burst, writes)
