"""Property tests of the apply rule and anti-entropy repair (hypothesis).

- Any permutation of a set of signed events, with duplicates and losses, then
  repaired by anti-entropy (with compaction and, optionally, tombstone GC at the
  source), converges to the same state: the state of applying them in order.
- Applying is idempotent.
- No forgotten memory ever comes back: not by replays of older events in any order,
  not after compaction, not after the tombstone was collected.
"""

from __future__ import annotations

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from federation.config import FederationConfig
from federation.engine import FederationCore
from federation.events import Event, EventKind
from federation.eventsource import MemoryEventSource
from federation.messages import EventRun
from federation.replica import ApplyResult, ReplicaState, fingerprint

from fedkit import (
    Origin,
    core,
    live_of,
    pump,
    reference_live,
    replica,
    rumor,
)

PROPS = settings(
    max_examples=80, deadline=None, suppress_health_check=[HealthCheck.too_slow]
)

op = st.tuples(
    st.integers(0, 2),  # origin
    st.sampled_from(["put", "update", "forget"]),
    st.integers(0, 2),  # memory (few, so that forgets hit live memories)
)


def build(ops: list[tuple[int, str, int]]) -> list[Event]:
    """A valid history: each origin writes its own memories; FORGET is final."""
    origins = [Origin(10 + i) for i in range(3)]
    live: set[tuple[int, int]] = set()
    gone: set[tuple[int, int]] = set()
    events: list[Event] = []
    for o, kind, m in ops:
        key = (o, m)
        if key in gone:
            continue
        writer = origins[o]
        if kind == "forget":
            if key in live:
                events.append(writer.forget(f"m{m}"))
                live.discard(key)
                gone.add(key)
        elif kind == "update" and key in live:
            events.append(writer.update(f"m{m}", {"u": writer.seq}))
        else:
            events.append(writer.put(f"m{m}", {"p": writer.seq}))
            live.add(key)
    return events


@st.composite
def deliveries(draw: st.DrawFn, events: list[Event]) -> list[Event]:
    """What a receiver got: per origin only a prefix of the log (it was away for the
    rest), permuted, with some events duplicated and some lost."""
    if not events:
        return []
    last: dict[str, int] = {}
    for event in events:
        last[event.origin] = event.seq
    cut = {o: draw(st.integers(0, n), label="prefix") for o, n in sorted(last.items())}
    received = [e for e in events if e.seq <= cut[e.origin]]
    if not received:
        return []
    order = list(draw(st.permutations(received)))
    dups = draw(st.lists(st.sampled_from(received), max_size=len(received)))
    for event in dups:
        order.insert(draw(st.integers(0, len(order))), event)
    lost = draw(st.sets(st.integers(0, len(order) - 1), max_size=max(1, len(order) // 3)))
    return [e for i, e in enumerate(order) if i not in lost]


def settle(cores: list[FederationCore], ticks: int = 60) -> None:
    for _ in range(ticks):
        pump(cores)
        for c in cores:
            c.tick()
    pump(cores)


@PROPS
@given(ops=st.lists(op, min_size=4, max_size=30), data=st.data())
def test_any_order_with_duplicates_and_loss_converges_after_anti_entropy(
    ops: list[tuple[int, str, int]], data: st.DataObject
) -> None:
    events = build(ops)
    expected = reference_live(events)
    small_buffer = data.draw(st.booleans(), label="small buffer")
    config = FederationConfig.local(max_buffered_per_origin=2 if small_buffer else 1024)
    source = core(1, config)
    for event in events:
        source.on_message("feeder", rumor("feeder", event))
    assert live_of(source.replica) == expected
    if data.draw(st.booleans(), label="source collects its tombstones"):
        source.collect_tombstones()  # no live members: every tombstone is stable
        assert source.replica.tombstone_count() == 0
    receivers = [core(2, config), core(3, config)]
    for receiver in receivers:
        for event in data.draw(deliveries(events)):
            receiver.on_message("feeder", rumor("feeder", event))
        receiver.peer_discovered(source.node_id, "addr-1")
    receivers[0].peer_discovered(receivers[1].node_id, "addr-3")
    cores = [source, *receivers]
    settle(cores)
    for receiver in receivers:
        assert live_of(receiver.replica) == expected
        assert receiver.version_vector() == source.version_vector()
        assert not receiver.replica.resync_cursors()
        assert receiver.buffered_events() == 0
    assert fingerprint(receivers[0].replica) == fingerprint(receivers[1].replica)


@PROPS
@given(ops=st.lists(op, min_size=1, max_size=24), data=st.data())
def test_apply_is_idempotent(ops: list[tuple[int, str, int]], data: st.DataObject) -> None:
    events = build(ops)
    order = data.draw(deliveries(events))
    state = replica(verify=False)
    for event in order:
        state.apply_event(event)
    before = fingerprint(state)
    tombstones = state.tombstone_count()
    again = [state.apply_event(e) for e in order]
    assert fingerprint(state) == before
    assert state.tombstone_count() == tombstones
    for result in again:
        assert result.applied == 0 and not result.fresh and result.rejected_total == 0
        assert not [e for e in result.effects if not _is_marks(e)]
    # whole runs from a complete source, twice: the second time changes nothing
    full = replica(101, verify=False)
    for event in events:
        full.apply_event(event)
    src = MemoryEventSource(full)
    runs = [src.run_after(o, state.watermark(o), 1000, 1 << 30) for o in full.version_vector()]
    for run in runs:
        state.apply_run(run)
    after_runs = fingerprint(state)
    for run in runs:
        result = state.apply_run(run)
        assert result.applied == 0 and not result.effects
    assert fingerprint(state) == after_runs


def _is_marks(effect: object) -> bool:
    from federation.effects import OriginMarks

    return isinstance(effect, OriginMarks)


@PROPS
@given(
    n_updates=st.integers(0, 3),
    tail=st.integers(0, 3),
    collect=st.booleans(),
    data=st.data(),
)
def test_forgotten_memory_never_comes_back(
    n_updates: int, tail: int, collect: bool, data: st.DataObject
) -> None:
    writer = Origin(20)
    history = [writer.put("x")] + [writer.update("x", {"u": i}) for i in range(n_updates)]
    forget = writer.forget("x")
    others = [writer.put(f"y{i}") for i in range(tail)]
    state = replica(verify=True)
    for event in [*history, forget, *others]:
        state.apply_event(event)
    memory = forget.memory_id
    assert state.get_live(memory) is None
    if collect:
        state.collect_tombstones(state.version_vector())
        assert not state.is_forgotten(memory)
        assert state.origin(writer.node_id).gc_floor == forget.seq  # type: ignore[union-attr]
    # replays of older events, in any order, one by one and as (stale) runs
    replays = data.draw(st.lists(st.sampled_from(history), min_size=1, max_size=8))
    for event in replays:
        result = state.apply_event(event)
        assert result.applied == 0 and not result.effects
    stale = EventRun(writer.node_id, 0, history[-1].seq, (history[-1],))
    result = state.apply_run(stale)
    assert result.applied == 0
    assert state.get_live(memory) is None
    assert all(e.memory_id != memory for e in state.live_entries())


def test_forget_is_terminal_even_for_a_later_put_of_the_same_id() -> None:
    # an origin must never reuse an id; if a (buggy) origin does, the memory stays dead
    writer = Origin(21)
    state = replica()
    for event in (writer.put("x"), writer.forget("x"), writer.put("x")):
        state.apply_event(event)
    assert state.get_live(f"{writer.node_id}/x") is None
    assert state.watermark(writer.node_id) == 3


def test_stale_replica_reconciles_after_tombstone_gc() -> None:
    """A replica that missed a FORGET whose tombstone was collected everywhere deletes
    the memory when it catches up (it would otherwise keep it forever)."""
    writer = Origin(22)
    put_x, put_y = writer.put("x"), writer.put("y")
    forget_x = writer.forget("x")
    later = [writer.put(f"z{i}") for i in range(5)]
    up_to_date = core(1)
    for event in [put_x, put_y, forget_x, *later]:
        up_to_date.on_message("feeder", rumor("feeder", event))
    assert up_to_date.collect_tombstones() == 1
    stale = core(2)
    for event in (put_x, put_y):
        stale.on_message("feeder", rumor("feeder", event))
    stale.peer_discovered(up_to_date.node_id, "addr-1")
    pump([up_to_date, stale])
    assert live_of(stale.replica) == live_of(up_to_date.replica)
    assert stale.metrics.replicas_reconciled == 1
    assert stale.version_vector() == up_to_date.version_vector()


def test_run_with_compaction_gap_advances_the_watermark() -> None:
    writer = Origin(23)
    events = [writer.put("a"), writer.update("a"), writer.put("b"), writer.forget("b")]
    full = replica(1)
    for event in events:
        full.apply_event(event)
    run = MemoryEventSource(full).run_after(writer.node_id, 0, 100, 1 << 20)
    assert [e.seq for e in run.events] == [2, 4]  # seq 1 superseded, seq 3 by its FORGET
    assert run.through_seq == 4
    fresh = replica(2)
    result = fresh.apply_run(run)
    assert result.applied == 2
    assert fresh.watermark(writer.node_id) == 4
    assert live_of(fresh) == live_of(full)


def test_buffer_overflow_drops_furthest_and_counts() -> None:
    writer = Origin(24)
    events = [writer.put(f"m{i}") for i in range(6)]
    state = ReplicaState(replica().node_id, replica().limits, max_buffered_per_origin=2)
    total = 0
    for event in reversed(events[1:]):  # seq 6, 5, 4, 3, 2: all above a gap
        total += state.apply_event(event).overflow_dropped
    assert total == 3  # kept 2 and 3 (the nearest), dropped 6, 5, 4 as they came
    assert state.buffered_events() == 2
    state.apply_event(events[0])
    assert state.watermark(writer.node_id) == 3
    assert state.buffered_events() == 0
    assert {e.seq for e in state.live_entries()} == {1, 2, 3}


def test_kind_of_effects() -> None:
    writer = Origin(25)
    state = replica()
    put = writer.put("a")
    forget = writer.forget("a")
    from federation.effects import DeleteReplica, UpsertReplica

    effects = state.apply_event(put).effects + state.apply_event(forget).effects
    kinds = [type(e).__name__ for e in effects]
    assert kinds == ["UpsertReplica", "OriginMarks", "DeleteReplica", "OriginMarks"]
    assert isinstance(effects[0], UpsertReplica) and effects[0].event is put
    assert isinstance(effects[2], DeleteReplica) and effects[2].forget is forget
    assert forget.kind is EventKind.FORGET


def _gap_scenario() -> tuple[ReplicaState, Origin, Event, ReplicaState]:
    """Origin writes m@1, FORGET m@2, n@3, o@4; ``full`` has it all and collected the
    tombstone (floor 2); ``stale`` has only m@1."""
    writer = Origin(26)
    m = writer.put("m")
    events = [m, writer.forget("m"), writer.put("n"), writer.put("o")]
    full = replica(1)
    for event in events:
        full.apply_event(event)
    full.collect_tombstones(full.version_vector())
    stale = replica(2)
    return stale, writer, m, full


def test_a_floor_learned_before_holding_entries_still_triggers_reconciliation() -> None:
    stale, writer, m, full = _gap_scenario()
    result = ApplyResult()
    stale.learn_floor(writer.node_id, 2, result)  # from a digest, while holding nothing
    assert not stale.resync_cursors()
    stale.apply_event(m)  # a late rumor: now it holds m
    gap = MemoryEventSource(full).run_after(writer.node_id, 1, 100, 1 << 20)
    assert [e.seq for e in gap.events] == [3, 4]  # seq 2 (the FORGET) collected
    result = stale.apply_run(gap, sender_watermark=4)
    assert result.resyncs_started == 1 and stale.resync_cursors() == {writer.node_id: 0}
    snapshot = MemoryEventSource(full).run_after(writer.node_id, 0, 100, 1 << 20)
    result = stale.apply_run(snapshot, sender_watermark=4)
    assert result.reconciled == 1 and stale.get_live(m.memory_id) is None
    assert not stale.resync_cursors()
    assert live_of(stale) == live_of(full)


def test_a_stale_sender_cannot_conclude_a_reconciliation() -> None:
    stale, writer, m, full = _gap_scenario()
    stale.apply_event(m)
    stale.learn_floor(writer.node_id, 2, ApplyResult())
    gap = MemoryEventSource(full).run_after(writer.node_id, 1, 100, 1 << 20)
    stale.apply_run(gap, sender_watermark=4)
    cursor = {writer.node_id: 0}
    assert stale.resync_cursors() == cursor
    # another stale node, reconciling too (vouching only up to its cursor 0), answers
    # with its log, which still has m
    liar = EventRun(writer.node_id, 0, 4, (m, *gap.events))
    result = stale.apply_run(liar, sender_watermark=0)
    assert result.reconciled == 0 and stale.get_live(m.memory_id) is not None
    assert stale.resync_cursors() == cursor  # not concluded
    snapshot = MemoryEventSource(full).run_after(writer.node_id, 0, 100, 1 << 20)
    stale.apply_run(snapshot, sender_watermark=4)
    assert stale.get_live(m.memory_id) is None and not stale.resync_cursors()


def test_a_gap_run_that_brings_the_stale_entry_itself_triggers_reconciliation() -> None:
    stale, writer, m, full = _gap_scenario()
    # a peer that is itself still reconciling (it vouches for nothing) sends its log,
    # which skips the collected FORGET (seq 2) but still holds m
    n, o = (e for e in full.live_entries())
    stale.learn_floor(writer.node_id, 2, ApplyResult())
    result = stale.apply_run(EventRun(writer.node_id, 0, 4, (m, n, o)), sender_watermark=0)
    assert result.resyncs_started == 1 and stale.resync_cursors() == {writer.node_id: 0}
    snapshot = MemoryEventSource(full).run_after(writer.node_id, 0, 100, 1 << 20)
    stale.apply_run(snapshot, sender_watermark=4)
    assert live_of(stale) == live_of(full) and not stale.resync_cursors()
