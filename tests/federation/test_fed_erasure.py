"""Erasure orders in the pure core: what they erase, what they refuse, what they leave."""

from __future__ import annotations

from federation.effects import DeleteReplica, KeepErasures, OriginMarks
from federation.erasure import ErasureOrder
from federation.messages import EventBatch, EventRun
from federation.replica import RestartState

from fedkit import Origin, core, node_id, rumor


def _deliver(c, sender: str, events) -> None:  # type: ignore[no-untyped-def]
    origin = events[0].origin
    run = EventRun(origin, events[0].seq - 1, events[-1].seq, tuple(events))
    c.on_message(sender, EventBatch(sender, (run,)))


def test_an_order_for_an_origin_erases_its_replicas_and_refuses_its_events() -> None:
    lost, other = Origin(1), Origin(2)
    c = core(0)
    _deliver(c, node_id(3), [lost.put("a"), lost.put("b"), lost.forget("a")])
    _deliver(c, node_id(3), [other.put("x")])
    c.ready()
    c.advance()
    assert c.version_vector() == {lost.node_id: 3, other.node_id: 1}

    c.erase([ErasureOrder(1, lost.node_id, issued_ms=5)], b"signed orders")
    effects = c.ready().effects
    c.advance()
    deleted = {e.memory_id for e in effects if isinstance(e, DeleteReplica)}
    assert deleted == {f"{lost.node_id}/a", f"{lost.node_id}/b"}  # live and tombstone
    assert all(e.forget is None for e in effects if isinstance(e, DeleteReplica))
    assert effects[-1] == KeepErasures(b"signed orders")
    assert [e.memory_id for e in c.live_entries()] == [f"{other.node_id}/x"]
    assert c.version_vector()[lost.node_id] == 3  # the watermark stays

    # the origin comes back and writes again: refused and counted, once; not forwarded
    fresh = lost.put("c")
    c.on_message(node_id(3), rumor(node_id(3), fresh, hops=1))
    assert c.metrics.events_rejected == {"erased": 1}
    assert c.version_vector()[lost.node_id] == 4  # skipped like a compacted seq
    ready = c.ready()
    assert not any(isinstance(e, DeleteReplica) for e in ready.effects)
    assert not any(isinstance(m.message, EventBatch) for m in ready.messages)
    assert [e for e in ready.effects if isinstance(e, OriginMarks)][-1].watermark == 4
    c.advance()
    c.on_message(node_id(3), rumor(node_id(3), fresh, hops=1))  # again: a duplicate now
    assert c.metrics.events_rejected == {"erased": 1}
    # the same order again changes nothing but the record
    c.erase([ErasureOrder(1, lost.node_id)], b"v2")
    assert c.ready().effects == [KeepErasures(b"v2")]


def test_an_order_for_some_ids_leaves_the_rest_of_the_origin() -> None:
    origin = Origin(1)
    c = core(0)
    _deliver(c, node_id(3), [origin.put("a"), origin.put("b")])
    c.erase([ErasureOrder(7, origin.node_id, frozenset({f"{origin.node_id}/a"}))], b"r")
    _deliver(c, node_id(3), [origin.update("a"), origin.put("c"), origin.update("b")])
    assert {e.memory_id: e.seq for e in c.live_entries()} == {
        f"{origin.node_id}/b": 5, f"{origin.node_id}/c": 4}
    assert c.metrics.events_rejected == {"erased": 1}
    assert c.version_vector()[origin.node_id] == 5


def test_orders_come_back_at_restart_and_never_touch_our_own_memories() -> None:
    other = Origin(1)
    restart = RestartState(events=[other.put("a")], erasures=[ErasureOrder(1, other.node_id)])
    c = core(0, restart=restart)
    assert c.replica.erasures.covers(f"{other.node_id}/zzz")
    _deliver(c, node_id(3), [other.put("b")])
    assert c.metrics.events_rejected == {"erased": 1}
    # an order naming this node: its own memories are not the order's to erase
    mine = Origin(0)
    c.local_events([mine.put("m")])
    c.erase([ErasureOrder(2, mine.node_id)], b"r")
    effects = c.ready().effects
    assert not any(isinstance(e, DeleteReplica) for e in effects)
    assert f"{mine.node_id}/m" in {e.memory_id for e in c.live_entries()}


def test_orders_and_their_record_cross_the_wire() -> None:
    from federation.io.wire import (
        effect_from_proto,
        effect_to_proto,
        message_from_proto,
        message_to_proto,
    )
    from federation.messages import Digest, SignedErasures

    assert effect_from_proto(effect_to_proto(KeepErasures(b"x\x00y"))) == KeepErasures(b"x\x00y")
    message = SignedErasures("n1", 7, b"{}")
    assert message_from_proto(message_to_proto(message)) == message
    digest = Digest("n1", 1, 2, "addr", {}, erasure_version=9)
    assert message_from_proto(message_to_proto(digest)) == digest
