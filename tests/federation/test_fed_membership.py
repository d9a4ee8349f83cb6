"""Membership: documented timers, reaping, rejoin (unit level and in the simulator)."""

from __future__ import annotations

import random

from federation.config import FederationConfig
from federation.membership import Membership, MemberState
from federation.messages import MemberHeartbeat
from federation.sim.simulation import Simulation

TIMERS = FederationConfig.local(
    anti_entropy_interval_ticks=2,
    suspect_after_ticks=5,
    dead_after_ticks=20,
    reap_after_ticks=50,
    dead_retry_ticks=7,
)


def _membership() -> Membership:
    return Membership("me", "addr-me", 1, TIMERS, random.Random(0))


def test_timers_to_the_tick() -> None:
    ms = _membership()
    assert ms.discovered("p", "addr-p", now=0)
    seen: dict[int, MemberState | None] = {}
    retries = []
    reaped_at = None
    for now in range(1, 80):
        changes = ms.tick(now)
        retries += [now] * len(changes.retry)
        if changes.reaped:
            reaped_at = now
        m = ms.get("p")
        seen[now] = m.state if m else None
    assert seen[4] is MemberState.ALIVE and seen[5] is MemberState.SUSPECT
    assert seen[19] is MemberState.SUSPECT and seen[20] is MemberState.DEAD
    assert reaped_at == 20 + 50 and seen[69] is MemberState.DEAD and seen[70] is None
    assert retries == list(range(27, 70, 7))  # a retry digest every dead_retry_ticks
    assert ms.live_count() == 0 and len(ms) == 0


def test_heartbeats_keep_a_member_alive_and_bring_it_back() -> None:
    ms = _membership()
    ms.observe_direct("p", 1, 1, "addr-p", now=0)
    for now in range(1, 60):
        ms.tick(now)
        if now % 4 == 0 and now < 30:  # third-party news of a higher heartbeat
            ms.observe_gossip([MemberHeartbeat("p", 1, now, "addr-p")], now)
    m = ms.get("p")
    assert m is not None and m.state is MemberState.DEAD  # silent since 28: dead at 48
    assert ms.observe_gossip([MemberHeartbeat("p", 1, 28, "addr-p")], 60) == []  # stale
    assert ms.observe_gossip([MemberHeartbeat("p", 1, 99, "addr-p")], 60) == ["p"]
    assert m.state is MemberState.ALIVE and "p" in ms.live_ids()


def test_reaped_members_are_not_resurrected_by_stale_gossip() -> None:
    ms = _membership()
    ms.observe_direct("p", 1, 10, "addr-p", now=0)
    for now in range(1, 72):
        ms.tick(now)
    assert ms.get("p") is None
    ms.observe_gossip([MemberHeartbeat("p", 1, 10, "addr-p")], 72)
    assert ms.get("p") is None
    ms.observe_gossip([MemberHeartbeat("p", 2, 0, "addr-p")], 72)  # it restarted
    assert ms.get("p") is not None


def test_direct_contact_reports_a_rejoin_and_a_restart() -> None:
    ms = _membership()
    assert ms.observe_direct("p", 1, 5, "a", now=0)  # join
    assert not ms.observe_direct("p", 1, 6, "a", now=1)
    assert ms.observe_direct("p", 2, 0, "a", now=2)  # new incarnation
    for now in range(3, 40):
        ms.tick(now)
    assert ms.get("p").state is MemberState.DEAD  # type: ignore[union-attr]
    assert ms.observe_contact("p", 40)  # any message: alive again
    assert ms.get("p").state is MemberState.ALIVE  # type: ignore[union-attr]


def test_gossip_entries_rotate_over_live_members() -> None:
    config = TIMERS.with_(max_digest_members=3)
    ms = Membership("me", "a", 1, config, random.Random(0))
    for i in range(7):
        ms.observe_direct(f"p{i}", 1, 1, "a", now=0)
    seen: set[str] = set()
    for _ in range(3):
        entries = ms.gossip_entries()
        assert len(entries) == 3
        seen |= {e.node_id for e in entries}
    assert seen == {f"p{i}" for i in range(7)}
    sample = ms.sample_live(3, exclude={"p0", "p1"})
    assert len(set(sample)) == 3 and not {"p0", "p1"} & set(sample)


SIM_TIMERS = FederationConfig.local(
    anti_entropy_interval_ticks=5,
    suspect_after_ticks=30,
    dead_after_ticks=80,
    reap_after_ticks=100,
    dead_retry_ticks=40,
)


def test_a_killed_node_goes_suspect_then_dead_then_is_reaped() -> None:
    sim = Simulation(5, config=SIM_TIMERS, seed=3)
    sim.step(50)
    victim = sim.nodes[4].node_id
    killed_at = sim.now
    sim.kill(4)
    first: dict[str, dict[int, int]] = {"suspect": {}, "dead": {}, "reaped": {}}
    for _ in range(300):
        sim.step()
        for node in sim.nodes[:4]:
            m = node.core.membership.get(victim)
            state = m.state.value if m else "reaped"
            if state in first:
                first[state].setdefault(node.index, sim.now - killed_at)
    staleness = 2 * SIM_TIMERS.anti_entropy_interval_ticks + 2
    for i in range(4):
        # The timers run from the last time *this* node saw the victim's heartbeat rise:
        # at most ``staleness`` before the kill (digests carry it every round), or up to
        # ``staleness`` after it (a third party relaying the victim's last heartbeat).
        suspect, dead, reaped = first["suspect"][i], first["dead"][i], first["reaped"][i]
        assert abs(suspect - 30) <= staleness, suspect
        assert dead - suspect == 80 - 30
        assert reaped == dead + 100
        assert sim.nodes[i].core.peers_by_state() == {"alive": 3, "suspect": 0, "dead": 0}


SLOW_ROUNDS = FederationConfig.local(  # periodic anti-entropy every 100 ticks only
    anti_entropy_interval_ticks=100,
    suspect_after_ticks=300,
    dead_after_ticks=500,
    reap_after_ticks=2000,
    dead_retry_ticks=25,
)


def test_rejoin_triggers_anti_entropy_at_once() -> None:
    sim = Simulation(5, config=SLOW_ROUNDS, seed=4)
    sim.step(20)
    sim.kill(4)
    for i in range(4):
        sim.put(i)
        sim.put(i)
    sim.step(700)  # node 4 is dead for everyone; the others converged
    assert all(n.core.peers_by_state()["dead"] == 1 for n in sim.nodes[:4])
    assert sim.now % 100 not in range(90, 100)  # no periodic round is about to help
    sim.revive(4, restart=True)  # a new incarnation re-discovers its peers
    report = sim.run_until_converged(max_rounds=0.1)
    assert report.converged and report.ticks <= 4, report  # digest, batch: 2 hops
    lagging = sim.nodes[4].core
    assert lagging.metrics.events_applied == 8


def test_a_healed_partition_rejoins_through_dead_peer_retries() -> None:
    sim = Simulation(4, config=SLOW_ROUNDS, seed=5)
    sim.step(20)
    sim.partition([{0, 1, 2}, {3}])
    sim.put(0)
    sim.put(3)
    sim.step(700)
    assert sim.nodes[3].core.peers_by_state()["dead"] == 3
    assert all(n.core.peers_by_state()["dead"] == 1 for n in sim.nodes[:3])
    sim.heal()
    report = sim.run_until_converged(max_rounds=0.5)
    # the first dead-peer retry (every 25 ticks) reaches a live peer: the exchange it
    # starts is immediate, well before the next periodic round
    assert report.converged and report.ticks <= 25 + 4, report


def test_a_partition_longer_than_reaping_heals_through_rediscovery() -> None:
    config = SLOW_ROUNDS.with_(reap_after_ticks=100)
    sim = Simulation(4, config=config, seed=6)
    sim.step(20)
    sim.partition([{0, 1}, {2, 3}])
    sim.put(0)
    sim.put(3)
    sim.step(900)
    across = {0: {2, 3}, 1: {2, 3}, 2: {0, 1}, 3: {0, 1}}
    reaped = 0
    for i, others in across.items():
        for j in others:
            m = sim.nodes[i].core.membership.get(sim.nodes[j].node_id)
            assert m is None or m.state is not MemberState.ALIVE
            reaped += m is None
    assert reaped >= 4  # most of the other side is forgotten
    sim.heal()
    sim.step(300)
    assert not sim.converged()  # nobody remembers anybody across the old cut
    sim.discovery_interval_ticks = 150  # discovery keeps proposing the seeds
    report = sim.run_until_converged(max_rounds=3)
    assert report.converged and report.ticks <= 150 + 4, report
