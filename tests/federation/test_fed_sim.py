"""Simulator scenarios: partitions, the GC horizon, late joiners, loss, scale, restarts."""

from __future__ import annotations

import random

import pytest

from federation.config import FederationConfig
from federation.events import EventKind
from federation.sim.network import NetConfig
from federation.sim.simulation import Simulation


def _write_mix(sim: Simulation, nodes: list[int], n: int, tag: str) -> None:
    """PUTs, UPDATEs and FORGETs on the given nodes."""
    for k in range(n):
        i = nodes[k % len(nodes)]
        local = f"{tag}{k}"
        sim.put(i, local)
        if k % 3 == 1:
            sim.update(i, local)
        if k % 4 == 2:
            sim.forget(i, local)


def _live_ids(sim: Simulation, i: int) -> set[str]:
    return {e.memory_id for e in sim.nodes[i].core.live_entries()}


def test_a_partition_with_writes_on_both_sides_heals_to_one_state() -> None:
    sim = Simulation(8, config=FederationConfig.local(), seed=11)
    sim.rounds(2)
    _write_mix(sim, list(range(8)), 8, "before")
    assert sim.run_until_converged(10).converged
    sim.partition([{0, 1, 2, 3}, {4, 5, 6, 7}])
    _write_mix(sim, [0, 1, 2, 3], 12, "left")
    _write_mix(sim, [4, 5, 6, 7], 12, "right")
    sim.forget(1, "before1")  # a FORGET of a memory both sides hold
    sim.rounds(15)  # each side converges on its own (half the peers are unreachable)
    left, right = _live_ids(sim, 0), _live_ids(sim, 4)
    assert left != right and left == _live_ids(sim, 3) and right == _live_ids(sim, 7)
    sim.heal()
    report = sim.run_until_converged(10)
    assert report.converged, report
    states = {frozenset(_live_ids(sim, i)) for i in range(8)}
    assert len(states) == 1
    assert not any(m.endswith("/before1") for m in states.pop())


GC = FederationConfig.local(
    anti_entropy_interval_ticks=5,
    suspect_after_ticks=20,
    dead_after_ticks=40,
    reap_after_ticks=60,
    dead_retry_ticks=15,
    tombstone_gc_interval_ticks=10,
)


@pytest.mark.parametrize("restart", [True, False], ids=["restarted-from-disk", "paused"])
def test_a_node_away_longer_than_the_gc_horizon_does_not_resurrect_deletes(restart: bool) -> None:
    sim = Simulation(5, config=GC, seed=12, discovery_interval_ticks=50)
    sim.rounds(2)
    doomed = sim.put(0, "doomed")
    sim.put(1, "kept")
    assert sim.run_until_converged(10).converged
    sim.kill(4)  # it still holds "doomed" (in memory and in its store)
    forget = sim.forget(0, "doomed")
    sim.put(2, "while-away")
    sim.update(1, "kept")
    forgotten: set[int] = set()  # nodes that applied the FORGET: never live there again
    for _ in range(400):
        sim.step()
        for node in sim.nodes[:4]:
            if node.core.replica.watermark(forget.origin) >= forget.seq:
                forgotten.add(node.index)
            if node.index in forgotten:
                assert node.core.replica.get_live(doomed.memory_id) is None
    assert forgotten == {0, 1, 2, 3}
    for node in sim.nodes[:4]:  # node 4 reaped, the tombstone collected everywhere
        core = node.core
        assert core.membership.get(sim.nodes[4].node_id) is None
        assert not core.replica.is_forgotten(doomed.memory_id)
        assert core.replica.gc_floors().get(forget.origin, 0) >= forget.seq
    away = sim.nodes[4]
    assert away.store.replicas.get(doomed.memory_id) == doomed
    sim.revive(4, restart=restart)
    for _ in range(200):
        sim.step()
        for node in sim.nodes[:4]:
            assert node.core.replica.get_live(doomed.memory_id) is None
        if sim.converged():
            break
    assert sim.converged()
    assert away.core.replica.get_live(doomed.memory_id) is None
    assert doomed.memory_id not in away.store.replicas  # the vector left its store too
    assert away.core.metrics.replicas_reconciled == 1
    assert {m.rsplit("/", 1)[1] for m in _live_ids(sim, 4)} == {"kept", "while-away"}


def test_a_late_joiner_receives_exactly_what_it_lacks() -> None:
    config = FederationConfig.local(tombstone_gc_interval_ticks=100_000)
    sim = Simulation(8, config=config, seed=13)
    sim.rounds(2)
    _write_mix(sim, list(range(8)), 40, "m")
    assert sim.run_until_converged(10).converged
    sim.rounds(3)  # quiet
    source = sim.nodes[0].core.replica
    lacked = sum(st.retained_count for st in source.origins())
    assert lacked == len(sim.expected_live) + sum(1 for _ in _tombstones(sim))
    joiner = sim.add_node(seeds=[0])
    report = sim.run_until_converged(5)
    assert report.converged and report.ticks <= 4, report
    assert sim.net.stats.events_to[joiner] == lacked
    assert sim.nodes[joiner].core.metrics.events_duplicate == 0
    # a node that was away briefly (no one noticed) gets exactly the events above its
    # watermarks in the compacted log
    sim.kill(3)
    before = dict(sim.nodes[3].core.version_vector())
    _write_mix(sim, [0, 1, 2], 9, "late")
    assert sim.run_until_converged(10).converged  # among the others
    lacked = sum(
        1 for st in source.origins() for e in st.retained_after(before.get(st.origin, 0))
    )
    sent_before = sim.net.stats.events_to.get(3, 0)
    sim.revive(3, restart=True)
    report = sim.run_until_converged(5)
    assert report.converged and report.ticks <= 4, report
    assert sim.net.stats.events_to[3] - sent_before == lacked


def _tombstones(sim: Simulation) -> list[str]:
    return [m for st in sim.nodes[0].core.replica.origins() for m in st.tombstones]


def test_a_64_node_mesh_converges() -> None:
    config = FederationConfig.lan()
    sim = Simulation(64, config=config, seed=14, seeds_per_node=6)
    sim.rounds(5)  # membership spreads from 6 seeds per node
    assert all(len(n.core.membership) >= 40 for n in sim.nodes)
    single = sim.put(7)
    report = sim.run_until_converged(10)
    assert report.converged
    # One write: a rumor with fanout 3 reaches most nodes in about log3(64) + 2 = 6
    # hops (ticks); the few it misses (about exp(-3) = 5%, more while membership is
    # still partial) get it at their next exchange, and every node starts one exchange
    # per round (10 ticks) and is picked by about one other. So 1-2 rounds. Measured
    # over simulator seeds 1-10: 12-22 ticks, residue after round 1 of 2-16%; 20
    # writes at once: 10-20 ticks. The bounds leave a round for an unlucky node.
    assert report.ticks <= 30, report
    assert report.residue[0] < 0.25
    for n in range(20):
        sim.put((n * 13) % 64)
    report = sim.run_until_converged(10)
    assert report.converged and report.ticks <= 40, report
    assert all(n.core.replica.get_live(single.memory_id) for n in sim.nodes)
    assert sum(n.core.metrics.events_rejected_total for n in sim.nodes) == 0


def test_loss_duplicates_and_reordering_still_converge() -> None:
    net = NetConfig(drop=0.10, duplicate=0.05, min_delay=1, max_delay=4)
    sim = Simulation(16, config=FederationConfig.local(), seed=15, net=net)
    sim.rounds(3)
    _write_mix(sim, list(range(16)), 48, "w")
    report = sim.run_until_converged(30)
    assert report.converged, report
    assert sim.net.stats.dropped > 0 and sim.net.stats.duplicated > 0
    assert sum(n.core.metrics.events_duplicate for n in sim.nodes) > 0
    assert sum(n.core.metrics.events_rejected_total for n in sim.nodes) == 0


def test_a_node_crashed_in_the_middle_of_a_catch_up_restarts_from_its_store() -> None:
    config = FederationConfig.local(
        max_batch_events=8, max_events_per_exchange=16, tombstone_gc_interval_ticks=100_000
    )
    sim = Simulation(4, config=config, seed=16, net=NetConfig(min_delay=1, max_delay=3))
    sim.rounds(2)
    sim.kill(3)
    for k in range(60):
        sim.put(k % 3, f"bulk{k}")
        if k % 5 == 0:
            sim.update(k % 3, f"bulk{k}")
    sim.rounds(2)
    sim.revive(3, restart=True)
    while not sim.nodes[3].store.replicas:
        sim.step()  # part of the catch-up is applied and persisted...
    assert len(sim.nodes[3].store.replicas) < 60
    sim.kill(3)  # ...and the sidecar dies with batches in flight
    sim.step(2)
    sim.revive(3, restart=True)
    report = sim.run_until_converged(20)
    assert report.converged, report  # converged() also compares the store with the core
    store = sim.nodes[3].store
    assert len(store.replicas) == 60
    assert all(store.replicas[m] == sim.expected_live[m] for m in store.replicas)


def test_forget_removes_the_replica_everywhere() -> None:
    sim = Simulation(6, config=FederationConfig.local(), seed=17)
    sim.rounds(2)
    event = sim.put(2, "secret")
    assert sim.run_until_converged(5).converged
    assert all(event.memory_id in n.store.replicas for n in sim.nodes if n.index != 2)
    forget = sim.forget(2, "secret")
    assert forget.kind is EventKind.FORGET
    assert sim.run_until_converged(5).converged
    for node in sim.nodes:
        assert event.memory_id not in node.store.replicas
        if node.index != 2:
            assert node.store.tombstones[event.memory_id] == forget


def test_the_simulator_is_deterministic() -> None:
    def run() -> tuple[int, int, int, list[float]]:
        net = NetConfig(drop=0.1, duplicate=0.1, min_delay=1, max_delay=3)
        sim = Simulation(12, config=FederationConfig.local(), seed=18, net=net)
        sim.rounds(2)
        _write_mix(sim, list(range(12)), 12, "d")
        report = sim.run_until_converged(20)
        return report.ticks, report.messages, report.bytes, report.residue

    assert run() == run()


def _random_schedule(seed: int) -> Simulation:
    """Writes (PUT/UPDATE/FORGET), crashes, restarts, pauses, partitions, loss, small
    batches and buffers and fast tombstone GC, all drawn from ``seed``; then heal."""
    rng = random.Random(seed)
    n = rng.randint(3, 8)
    config = FederationConfig.local(
        anti_entropy_interval_ticks=rng.choice([3, 5, 10]),
        suspect_after_ticks=30,
        dead_after_ticks=rng.choice([40, 80]),
        reap_after_ticks=rng.choice([30, 100]),
        dead_retry_ticks=10,
        tombstone_gc_interval_ticks=rng.choice([5, 20, 1000]),
        max_batch_events=rng.choice([2, 8, 512]),
        max_events_per_exchange=rng.choice([512, 8192]),
        max_buffered_per_origin=rng.choice([2, 16, 1024]),
        insecure_skip_signature_verification=rng.random() < 0.8,
    )
    net = NetConfig(
        drop=rng.choice([0, 0.1, 0.3]), duplicate=rng.choice([0, 0.1]),
        max_delay=rng.choice([1, 3, 6]),
    )
    sim = Simulation(n, config=config, seed=seed, net=net,
                     seeds_per_node=rng.choice([None, 2]), discovery_interval_ticks=50)
    live: dict[int, list[str]] = {}
    for _ in range(rng.randint(5, 40)):
        action = rng.random()
        up = [i for i in range(n) if sim.nodes[i].up]
        if action < 0.5:
            i = rng.choice(up)
            ids = live.setdefault(i, [])
            if ids and rng.random() < 0.3:
                sim.forget(i, ids.pop(rng.randrange(len(ids))))
            elif ids and rng.random() < 0.3:
                sim.update(i, rng.choice(ids))
            else:
                ids.append(sim.put(i).local_id)
        elif action < 0.6 and len(up) > 1:
            sim.kill(rng.choice(up))
        elif action < 0.75:
            down = [i for i in range(n) if not sim.nodes[i].up]
            if down:
                sim.revive(rng.choice(down), restart=rng.random() < 0.6)
        elif action < 0.85:
            order = list(range(n))
            rng.shuffle(order)
            k = rng.randint(1, n - 1)
            sim.partition([set(order[:k]), set(order[k:])])
        elif action < 0.9:
            sim.heal()
        sim.step(rng.randint(1, 60))
    sim.heal()
    for i in range(n):
        if not sim.nodes[i].up:
            sim.revive(i, restart=rng.random() < 0.5)
    return sim


# Seeds 0-999 of this generator all converge (checked while developing, ~6 minutes);
# the suite keeps a sample, including schedules that once exposed reconciliation bugs.
@pytest.mark.parametrize("seed", [3, 8, 36, 55, 77, 115, 135, 146])
def test_random_schedules_converge_without_resurrection(seed: int) -> None:
    sim = _random_schedule(seed)
    report = sim.run_until_converged(300)
    assert report.converged, report  # same vectors, live sets and stores, no resync left
