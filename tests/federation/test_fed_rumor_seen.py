"""Rumors carry who was sent them, so a small mesh receives each event exactly once."""

from __future__ import annotations

from federation.config import FederationConfig
from federation.rumor import seen_bit, seen_by, seen_mask
from federation.sim.simulation import Simulation

QUIET = FederationConfig.local(anti_entropy_interval_ticks=1000, suspect_after_ticks=3000,
                               dead_after_ticks=4000, reap_after_ticks=8000)


def test_seen_mask_marks_exactly_its_members() -> None:
    ids = [f"node{i:02d}" for i in range(5)]
    mask = seen_mask(ids[:2])
    assert seen_by(ids[:2], mask) == ids[:2]
    assert all(mask & seen_bit(i) for i in ids[:2])
    assert seen_mask([]) == 0 and seen_by(ids, 0) == []


def test_three_nodes_with_fanout_two_receive_each_rumor_once() -> None:
    sim = Simulation(3, config=QUIET, seed=7)
    sim.step(20)
    before = [n.core.metrics.events_duplicate for n in sim.nodes]
    for i in range(3):
        for _ in range(5):
            sim.put(i)
    report = sim.run_until_converged(max_rounds=0.05)  # rumors only: no periodic round
    assert report.converged, report
    assert [n.core.metrics.events_duplicate for n in sim.nodes] == before
    assert sum(n.core.metrics.rumors_forwarded for n in sim.nodes) == 0
    # every replicated entry crossed the wire once: 15 writes x 2 replicas
    assert sum(n.core.metrics.events_received for n in sim.nodes) == 30


def test_up_to_push_direct_max_peers_receive_each_event_once_in_one_hop() -> None:
    sim = Simulation(16, config=QUIET, seed=5)
    sim.step(50)
    before = sum(n.core.metrics.events_duplicate for n in sim.nodes)
    for i in (0, 3, 9, 15):
        sim.put(i)
    report = sim.run_until_converged(max_rounds=0.05)  # rumors only: no periodic round
    assert report.converged, report
    assert sum(n.core.metrics.events_duplicate for n in sim.nodes) == before
    assert sum(n.core.metrics.rumors_forwarded for n in sim.nodes) == 0
    assert sum(n.core.metrics.events_received for n in sim.nodes) == 4 * 15


def test_bigger_meshes_still_forward_to_peers_the_push_missed() -> None:
    sim = Simulation(16, config=QUIET.with_(rumor_max_hops=10, push_direct_max=0), seed=3)
    sim.step(50)
    sim.put(0)
    sim.step(20)  # rumors only: no periodic round in this window
    assert sum(n.core.metrics.rumors_forwarded for n in sim.nodes) > 0
    reached = sum(1 for n in sim.nodes[1:] if n.core.metrics.events_received)
    assert reached > QUIET.fanout  # beyond the origin's own push
    assert sim.run_until_converged(max_rounds=3).converged  # anti-entropy does the rest
