"""FederationCore: Ready/advance, digests, push-on-write and forwarding."""

from __future__ import annotations

import pytest

from federation.config import FederationConfig
from federation.effects import OriginMarks, UpsertReplica
from federation.engine import FederationCore
from federation.messages import Digest, EventBatch
from federation.sizes import digest_size

from fedkit import Origin, core, node_id, pump, rumor


def _mesh(n: int, config: FederationConfig | None = None, base: int = 70) -> list[FederationCore]:
    cores = [core(base + i, config) for i in range(n)]
    for c in cores:
        for d in cores:
            if c is not d:
                c.peer_discovered(d.node_id, f"addr-{d.node_id}")
    pump(cores)
    for _ in range(3):  # every node exchanges once more: all vectors known
        for c in cores:
            for d in cores:
                if c is not d:
                    c.exchange_with(d.node_id)
        pump(cores)
    return cores


def test_ready_and_advance_acknowledge_exactly_what_was_returned() -> None:
    a = core(70)
    a.peer_discovered(node_id(71), "addr-71")
    assert a.has_ready()
    rd = a.ready()
    assert [type(o.message) for o in rd.messages] == [Digest]
    assert rd.messages[0].to == node_id(71) and rd.messages[0].address == "addr-71"
    a.local_event(Origin(70).put("x"))  # arrives between ready() and advance()
    a.advance()
    assert a.has_ready()  # the push and the own marks are still pending
    rd2 = a.ready()
    pushes = [o.message for o in rd2.messages if isinstance(o.message, EventBatch)]
    assert pushes and all(p.rumor_hops == 1 for p in pushes)
    assert any(isinstance(e, OriginMarks) for e in rd2.effects)
    assert not any(isinstance(e, UpsertReplica) for e in rd2.effects)  # own memory: node has it
    a.advance()
    assert not a.has_ready()


def _exchange_cost(memories: int) -> tuple[int, int, int]:
    cores = _mesh(3, base=80)
    writers = [Origin(80 + i) for i in range(3)]
    for i, c in enumerate(cores):
        c.local_events([writers[i].put(f"m{k}") for k in range(memories)])
    pump(cores)
    a, b = cores[0], cores[1]
    assert a.version_vector() == b.version_vector()

    def totals() -> tuple[int, int, int]:
        return (
            sum(a.metrics.messages_sent.values()) + sum(b.metrics.messages_sent.values()),
            a.metrics.bytes_sent + b.metrics.bytes_sent,
            a.metrics.events_sent + b.metrics.events_sent,
        )

    before = totals()
    a.exchange_with(b.node_id)
    pump([a, b])
    after = totals()
    return after[0] - before[0], after[1] - before[1], after[2] - before[2]


def test_an_in_sync_exchange_costs_two_digests_whatever_the_number_of_memories() -> None:
    small = _exchange_cost(10)
    large = _exchange_cost(400)
    assert small[0] == large[0] == 2  # digest + reply digest
    assert small[2] == large[2] == 0  # no events
    assert large[1] <= 512
    assert large[1] - small[1] <= 2 * 3 * 2  # seq varints grow by a byte per origin


def test_push_on_write_goes_to_fanout_live_peers_past_push_direct_max() -> None:
    config = FederationConfig.local(fanout=3, push_direct_max=4)  # 5 live peers
    cores = _mesh(6, config, base=90)
    writer = cores[0]
    writer.local_event(Origin(90).put("hello"))
    rd = writer.ready()
    writer.advance()
    pushes = [o for o in rd.messages if isinstance(o.message, EventBatch)]
    assert len(pushes) == 3 and len({o.to for o in pushes}) == 3
    assert all(o.message.rumor_hops == 1 for o in pushes)  # type: ignore[union-attr]


def test_new_events_are_forwarded_once_and_duplicates_never() -> None:
    config = FederationConfig.local(fanout=2, rumor_max_hops=5)
    cores = _mesh(5, config, base=100)
    relay = cores[1]
    event = Origin(100).put("r")
    relay.on_message(cores[0].node_id, rumor(cores[0].node_id, event, hops=1))
    rd = relay.ready()
    relay.advance()
    forwards = [o for o in rd.messages if isinstance(o.message, EventBatch)]
    assert len(forwards) == 2
    assert all(o.to not in (cores[0].node_id, event.origin) for o in forwards)
    assert all(o.message.rumor_hops == 2 for o in forwards)  # type: ignore[union-attr]
    relay.on_message(cores[2].node_id, rumor(cores[2].node_id, event, hops=1))
    assert not [o for o in relay.ready().messages if isinstance(o.message, EventBatch)]
    relay.advance()
    assert relay.metrics.rumors_forwarded == 2 and relay.metrics.events_duplicate == 1


def test_rumors_stop_at_the_hop_limit_and_anti_entropy_is_not_forwarded() -> None:
    config = FederationConfig.local(fanout=2, rumor_max_hops=3)
    cores = _mesh(5, config, base=110)
    relay = cores[1]
    writer = Origin(110)
    relay.on_message(cores[0].node_id, rumor(cores[0].node_id, writer.put("a"), hops=3))
    relay.on_message(cores[0].node_id, rumor(cores[0].node_id, writer.put("b"), hops=0))
    rd = relay.ready()
    relay.advance()
    assert not [o for o in rd.messages if isinstance(o.message, EventBatch)]
    assert relay.metrics.events_applied == 2


def test_a_write_goes_straight_to_every_peer_of_a_small_mesh_once() -> None:
    config = FederationConfig.local(
        anti_entropy_interval_ticks=10_000, suspect_after_ticks=20_000,
        dead_after_ticks=30_000)
    cores = _mesh(8, config, base=125)
    event = Origin(125).put("news")
    cores[0].local_event(event)
    pump(cores)  # no ticks: no anti-entropy round can run
    assert all(c.replica.get_live(event.memory_id) is not None for c in cores)
    assert cores[0].metrics.rumors_pushed == 7
    assert sum(c.metrics.rumors_forwarded for c in cores) == 0
    assert sum(c.metrics.events_duplicate for c in cores) == 0


def test_fanout_zero_pushes_nothing_even_in_a_small_mesh() -> None:
    cores = _mesh(4, FederationConfig.local(fanout=0), base=127)
    cores[0].local_event(Origin(127).put("quiet"))
    assert not [o for o in cores[0].ready().messages if isinstance(o.message, EventBatch)]


def test_a_write_reaches_everyone_by_rumors_alone() -> None:
    config = FederationConfig.local(
        fanout=3, rumor_max_hops=10, anti_entropy_interval_ticks=10_000, push_direct_max=0,
        suspect_after_ticks=20_000, dead_after_ticks=30_000,
    )
    cores = _mesh(8, config, base=120)
    event = Origin(120).put("news")
    cores[0].local_event(event)
    pump(cores)  # no ticks: no anti-entropy round can run
    reached = sum(1 for c in cores if c.replica.get_live(event.memory_id) is not None)
    assert reached >= 7  # fanout 3 among 8 nodes: a miss is possible, but rare for this seed
    total = sum(c.metrics.rumors_pushed + c.metrics.rumors_forwarded for c in cores)
    assert total <= 8 * 3  # every node forwards at most once


def test_peer_status_and_lag() -> None:
    cores = _mesh(3, base=130)
    a, b = cores[0], cores[1]
    assert a.peer_lag(b.node_id) == 0
    writer = Origin(130)
    a.local_events([writer.put(f"m{i}") for i in range(5)])
    a.ready()
    a.advance()  # the pushes are lost
    a.exchange_with(b.node_id)
    digest = a.ready().messages[0].message
    a.advance()
    assert isinstance(digest, Digest) and digest_size(digest) < 512
    b.on_message(a.node_id, digest)  # b answers with its reply digest
    reply = [o.message for o in b.ready().messages if isinstance(o.message, Digest)][0]
    b.advance()
    a.on_message(b.node_id, reply)
    assert a.peer_lag(b.node_id) == 5
    statuses = {p.node_id: p for p in a.peers()}
    assert statuses[b.node_id].state.value == "alive"
    assert statuses[b.node_id].events_behind == 5
    assert a.peers_by_state() == {"alive": 2, "suspect": 0, "dead": 0}


def test_the_package_exports_the_core_api() -> None:
    import federation

    for name in federation.__all__:
        assert getattr(federation, name) is not None
    exported = {getattr(federation, n) for n in federation.__all__}
    from federation import engine, messages

    assert engine.FederationCore in exported and messages.EventBatch in exported


def test_local_events_must_be_ours_and_in_order() -> None:
    from federation.errors import LocalEventError

    me = core(140)
    mine, other = Origin(140), Origin(141)
    first = mine.put("a")
    with pytest.raises(LocalEventError):
        me.local_events([first, mine.put("b"), other.put("x")])
    assert me.version_vector() == {me.node_id: 2}  # the two before the bad one are kept
    skipped = Origin(140)
    skipped.seq = 5
    with pytest.raises(LocalEventError):
        me.local_event(skipped.put("gap"))  # seq 6, expected 3
