"""Regression (``python -m bench simchaos --nodes 50 --rounds 100 --seed 1``): a node
restored from a backup in a mesh of N nodes waits for a digest from every origin its
backup knew that membership still counts (federation.restore). It only heard the
digests peers happened to send it - about two a round - so the wait grew as
N ln N / 2 rounds (72 to 129 rounds at 50 nodes), writes refused all along. The restoring
core now asks the origins it waits for (``restore_asks_per_round`` a round)."""

from __future__ import annotations

from federation.config import FederationConfig
from federation.sim.simulation import Simulation


def test_a_restore_in_a_large_mesh_ends_within_a_few_rounds() -> None:
    n = 100
    sim = Simulation(n, config=FederationConfig.lan(insecure_skip_signature_verification=True),
                     seed=3, seeds_per_node=8)
    sim.rounds(2)
    for i in range(n):  # every node an origin the backup knows
        sim.put(i)
    sim.rounds(10)
    backup = sim.nodes[7].store.snapshot()
    for k in range(3):  # acknowledged after the backup: the mesh holds them
        sim.put(7, f"after{k}")
    sim.rounds(5)
    sim.kill(7)
    sim.restore(7, backup)
    restored = sim.nodes[7].core
    assert restored.restoring
    interval, start = sim.config.anti_entropy_interval_ticks, sim.now
    for _ in range(40 * interval):
        sim.step()
        if not restored.restoring:
            break
    assert not restored.restoring, "still restoring after 40 rounds"
    took = (sim.now - start) / interval
    assert took < 15, f"restore took {took:.1f} rounds"
    assert sim.nodes[7].store.own_seq == 4
    assert sim.put(7, "next").seq == 5  # learned: no seq reused
