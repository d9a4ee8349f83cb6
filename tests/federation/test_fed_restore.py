"""A node restored from an older copy of its log takes back its own events from its
peers and learns how far its origin went before it writes again (no seq is reused)."""

from __future__ import annotations

from collections.abc import Sequence

from federation.effects import DeleteReplica, Effect, OriginMarks, OwnSeqLearned, UpsertReplica
from federation.engine import FederationCore
from federation.replica import RestartState

from fedkit import Origin, core, node_id, pump, rumor


def _pump_collect(cores: Sequence[FederationCore], watched: FederationCore) -> list[Effect]:
    """Like fedkit.pump, keeping the effects of ``watched``; messages to a core not in
    ``cores`` are lost (it is cut off)."""
    by_id = {c.node_id: c for c in cores}
    effects: list[Effect] = []
    for _ in range(10_000):
        progress = False
        for c in cores:
            if c.has_ready():
                rd = c.ready()
                c.advance()
                if c is watched:
                    effects += rd.effects
                for out in rd.messages:
                    if out.to in by_id:
                        by_id[out.to].on_message(c.node_id, out.message)
                        progress = True
        if not progress:
            return effects
    raise AssertionError("did not quiesce")


def _mesh_with_history() -> tuple[Origin, list, FederationCore]:  # type: ignore[type-arg]
    a, b = core(1), core(2)
    writer = Origin(1)
    events = [writer.put(f"m{i}") for i in range(5)]
    a.peer_discovered(b.node_id, "addr-2")
    b.peer_discovered(a.node_id, "addr-1")
    a.local_events(events)
    pump([a, b])
    assert b.version_vector().get(node_id(1)) == 5
    return writer, events, b


def test_restored_core_takes_back_its_events_then_writes_on() -> None:
    writer, events, b = _mesh_with_history()
    backup = RestartState(events[:3], [OriginMarks(node_id(1), 3, 0, None)])
    restored = core(1, restart=backup, incarnation=2, restoring=True)
    assert restored.restoring
    restored.peer_discovered(b.node_id, "addr-2")
    effects = _pump_collect([restored, b], restored)

    assert not restored.restoring
    back = [e.event.seq for e in effects if isinstance(e, UpsertReplica)]
    assert back == [4, 5]
    assert [e for e in effects if isinstance(e, OwnSeqLearned)] == [OwnSeqLearned(5, 5)]
    assert restored.version_vector() == b.version_vector()
    assert "own_origin" not in restored.metrics.events_rejected

    restored.local_event(writer.put("after"))  # seq 6: new to the mesh, not a duplicate
    pump([restored, b])
    assert b.version_vector().get(node_id(1)) == 6
    assert b.replica.get_live(f"{node_id(1)}/after") is not None


def test_a_peer_that_knows_nothing_of_us_ends_the_restore_at_once() -> None:
    restored = core(1, restart=RestartState(), restoring=True)
    stranger = core(3)
    restored.peer_discovered(stranger.node_id, "addr-3")
    effects = _pump_collect([restored, stranger], restored)
    assert [e for e in effects if isinstance(e, OwnSeqLearned)] == [OwnSeqLearned(0, 0)]


def test_without_restore_mode_the_own_events_are_refused_as_own_origin() -> None:
    _, events, b = _mesh_with_history()
    backup = RestartState(events[:3], [OriginMarks(node_id(1), 3, 0, None)])
    forked = core(1, restart=backup, incarnation=2)
    forked.peer_discovered(b.node_id, "addr-2")
    effects = _pump_collect([forked, b], forked)
    assert not [e for e in effects if isinstance(e, UpsertReplica)]
    assert forked.metrics.events_rejected.get("own_origin") == 2


def test_the_restore_waits_for_every_origin_the_backup_knew() -> None:
    """Regression (the chaos drill's restore driver): our latest event reached only c,
    which is cut off when we come back; b answers first and holds less. Ending the
    restore on b's word would reuse seq 4. We wait for c (or for restore_wait_ticks)."""
    a, b, c = core(1), core(2), core(3)
    for x, y in ((a, b), (a, c), (b, c)):
        x.peer_discovered(y.node_id, f"addr-{y.node_id}")
        y.peer_discovered(x.node_id, f"addr-{x.node_id}")
    writer, other_b, other_c = Origin(1), Origin(2), Origin(3)
    b.local_event(other_b.put("b's"))
    c.local_event(other_c.put("c's"))
    a.local_events([writer.put(f"m{i}") for i in range(3)])
    pump([a, b, c])
    backup_events = list(a.live_entries())
    backup = RestartState(backup_events, [OriginMarks(n, a.version_vector()[n], 0, None)
                                          for n in (node_id(1), node_id(2), node_id(3))])
    last = writer.put("only c has it")
    c.on_message(a.node_id, rumor(a.node_id, last))  # seq 4 reached c alone
    assert (b.version_vector()[node_id(1)], c.version_vector()[node_id(1)]) == (3, 4)

    restored = core(1, restart=backup, incarnation=2, restoring=True)
    restored.peer_discovered(b.node_id, "addr-2")
    effects = _pump_collect([restored, b], restored)  # c is cut off
    assert restored.restoring, "b alone must not end the restore"
    assert not [e for e in effects if isinstance(e, OwnSeqLearned)]

    restored.peer_discovered(c.node_id, "addr-3")  # the partition heals
    effects = []
    for _ in range(5 * restored.config.anti_entropy_interval_ticks):
        for x in (restored, b, c):
            x.tick()
        effects += _pump_collect([restored, b, c], restored)
        if not restored.restoring:
            break
    assert not restored.restoring
    assert c.node_id in restored._restore.heard_from
    assert [e for e in effects if isinstance(e, OwnSeqLearned)] == [OwnSeqLearned(4, 4)]
    restored.local_event(writer.put("after"))  # seq 5, not a reuse of 4
    for _ in range(5 * restored.config.anti_entropy_interval_ticks):  # b fills 4 in
        for x in (restored, b, c):
            x.tick()
        pump([restored, b, c])
    assert {x.version_vector()[node_id(1)] for x in (restored, b, c)} == {5}
    assert all(x.replica.get_live(f"{node_id(1)}/only c has it") is not None
               for x in (restored, b, c))


def test_the_wait_for_unheard_origins_runs_out() -> None:
    _, events, b = _mesh_with_history()
    backup = RestartState(events[:3], [OriginMarks(node_id(1), 3, 0, None),
                                       OriginMarks(node_id(7), 1, 0, None)])  # gone for good
    restored = core(1, restart=backup, incarnation=2, restoring=True)
    restored.peer_discovered(b.node_id, "addr-2")
    _pump_collect([restored, b], restored)
    assert restored.restoring
    for _ in range(restored.config.restore_wait_ticks + 1):
        restored.tick()
        _pump_collect([restored, b], restored)
        if not restored.restoring:
            break
    assert not restored.restoring
    assert restored.version_vector()[node_id(1)] == 5


def test_a_forget_collected_after_the_backup_reaches_the_restored_origin() -> None:
    """Regression (the chaos drill's restore driver): the backup holds m1 live; m1 is
    forgotten after it and the tombstone collected everywhere, so no peer will ever send
    that FORGET. The restore reconciles our own origin against the peers' compacted
    logs and deletes m1 before it ends (it did not: m1 came back from the backup)."""
    a, b = core(1), core(2)
    a.peer_discovered(b.node_id, "addr-2")
    b.peer_discovered(a.node_id, "addr-1")
    writer = Origin(1)
    events = [writer.put(f"m{i}") for i in range(4)]
    a.local_events(events)
    pump([a, b])
    backup = RestartState(list(a.live_entries()),
                          [OriginMarks(node_id(1), 4, 0, None)])
    a.local_event(writer.forget("m1"))
    a.local_event(writer.put("m4"))
    for _ in range(3 * a.config.anti_entropy_interval_ticks):  # digests: vectors known
        for x in (a, b):
            x.tick()
        pump([a, b])
    for x in (a, b):
        x.collect_tombstones()
    pump([a, b])
    assert b.replica.gc_floors()[node_id(1)] == 5 and not b.replica.is_forgotten(
        f"{node_id(1)}/m1")  # the FORGET is collected

    restored = core(1, restart=backup, incarnation=2, restoring=True)
    restored.peer_discovered(b.node_id, "addr-2")
    effects = []
    for _ in range(5 * restored.config.anti_entropy_interval_ticks):
        restored.tick()
        b.tick()
        effects += _pump_collect([restored, b], restored)
        if not restored.restoring:
            break
    assert not restored.restoring
    deleted = [e.memory_id for e in effects if isinstance(e, DeleteReplica)]
    learned = next(i for i, e in enumerate(effects) if isinstance(e, OwnSeqLearned))
    assert deleted == [f"{node_id(1)}/m1"]
    assert all(i < learned for i, e in enumerate(effects) if isinstance(e, DeleteReplica))
    assert restored.replica.get_live(f"{node_id(1)}/m1") is None
    assert restored.replica.get_live(f"{node_id(1)}/m4") is not None


def test_a_member_cut_off_past_the_wait_is_still_waited_for() -> None:
    """Regression (the chaos drill): c alone holds our seq 4 and is cut off longer than
    restore_wait_ticks. It is still a member (configured, not reaped), so the restore
    waits for it instead of reusing seq 4 on b's word."""
    a, b, c = core(1), core(2), core(3)
    for x, y in ((a, b), (a, c), (b, c)):
        x.peer_discovered(y.node_id, f"addr-{y.node_id}")
        y.peer_discovered(x.node_id, f"addr-{x.node_id}")
    writer = Origin(1)
    a.local_events([writer.put(f"m{i}") for i in range(3)])
    pump([a, b, c])
    backup = RestartState(list(a.live_entries()),
                          [OriginMarks(node_id(1), 3, 0, None),
                           OriginMarks(node_id(2), 0, 0, None),
                           OriginMarks(node_id(3), 0, 0, None)])
    c.on_message(a.node_id, rumor(a.node_id, writer.put("only c has it")))

    restored = core(1, restart=backup, incarnation=2, restoring=True)
    restored.peer_discovered(b.node_id, "addr-2")
    restored.peer_discovered(c.node_id, "addr-3")  # known, but its messages are lost
    for _ in range(3 * restored.config.restore_wait_ticks):
        restored.tick()
        b.tick()
        _pump_collect([restored, b], restored)
    assert restored.restoring, "a member that may hold our events is waited for"
    effects: list[Effect] = []
    for _ in range(5 * restored.config.anti_entropy_interval_ticks):  # c is back
        for x in (restored, b, c):
            x.tick()
        effects += _pump_collect([restored, b, c], restored)
        if not restored.restoring:
            break
    assert [e for e in effects if isinstance(e, OwnSeqLearned)] == [OwnSeqLearned(4, 4)]
