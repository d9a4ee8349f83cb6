"""Malicious and malformed input: rejected with the right reason, counted, no state change."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import pytest

from federation.config import FederationConfig
from federation.engine import FederationCore
from federation.events import Event, EventKind, sign
from federation.messages import Digest, EventBatch, EventRun
from federation.replica import ReplicaState, fingerprint
from federation.validate import RejectReason

from fedkit import (
    MODEL,
    OTHER_MODEL,
    Origin,
    core,
    key,
    make_event,
    node_id,
    pump,
    replica,
    rumor,
)

ORIGIN = 30


def _state_of(state: ReplicaState) -> tuple[object, ...]:
    return (*fingerprint(state), state.tombstone_count(), state.buffered_events(),
            state.gc_floors(), state.resync_cursors())


def _signed(event: Event, by: int = ORIGIN) -> Event:
    return sign(replace(event, public_key=b"", signature=b""), key(by))


def _base(seq: int) -> Event:
    return make_event(ORIGIN, seq, EventKind.PUT, "victim", {"k": "v"})


def forged_signature(seq: int = 1) -> Event:
    return replace(_base(seq), signature=bytes(63) + b"\x01")


def tampered_embedding(seq: int) -> Event:
    good = _base(seq)
    return replace(good, embedding=bytes(len(good.embedding)))  # signature no longer matches


def claims_another_origin(seq: int = 1) -> Event:
    # signed with ORIGIN's key (so carries ORIGIN's public key), says it is node 31's
    return _signed(replace(_base(seq), origin=node_id(31)))


def someone_elses_key_for_origin(seq: int) -> Event:
    # node 31's origin and public key, signature made with ORIGIN's private key
    theirs = _signed(replace(_base(seq), origin=node_id(31)), by=31)
    mine = _signed(replace(_base(seq), origin=node_id(31)), by=ORIGIN)
    return replace(theirs, signature=mine.signature)


def _defect(**changes: Any) -> Callable[[int], Event]:
    return lambda seq: _signed(replace(_base(seq), **changes))


def _unsigned_defect(**changes: Any) -> Callable[[int], Event]:
    return lambda seq: replace(_base(seq), **changes)


CASES: list[tuple[str, Callable[[int], Event], RejectReason]] = [
    ("forged signature", forged_signature, RejectReason.BAD_SIGNATURE),
    ("tampered embedding", tampered_embedding, RejectReason.BAD_SIGNATURE),
    ("claims another origin", claims_another_origin, RejectReason.WRONG_ORIGIN),
    ("signature by another key", someone_elses_key_for_origin, RejectReason.BAD_SIGNATURE),
    ("wrong model", _defect(model=OTHER_MODEL), RejectReason.WRONG_MODEL),
    ("wrong dimension", _defect(embedding=bytes(4 * MODEL.dim + 4)), RejectReason.WRONG_DIMENSION),
    ("oversized embedding", _defect(embedding=bytes(4 * 4097)), RejectReason.OVERSIZED),
    (
        "too many metadata entries",
        _defect(metadata={f"k{i}": i for i in range(65)}),
        RejectReason.OVERSIZED,
    ),
    ("oversized metadata value", _defect(metadata={"k": "x" * 1025}), RejectReason.OVERSIZED),
    ("oversized metadata key", _defect(metadata={"k" * 129: 1}), RejectReason.OVERSIZED),
    ("missing local id", _defect(local_id=""), RejectReason.MALFORMED),
    ("missing signature", _unsigned_defect(signature=b""), RejectReason.MALFORMED),
    ("missing public key", _unsigned_defect(public_key=b""), RejectReason.MALFORMED),
    ("PUT without model", _defect(model=None), RejectReason.MALFORMED),
    ("nested metadata", _unsigned_defect(metadata={"k": {"n": 1}}), RejectReason.MALFORMED),
    ("list metadata", _unsigned_defect(metadata={"k": [1, 2]}), RejectReason.MALFORMED),
    ("int beyond int64", _unsigned_defect(metadata={"k": 1 << 70}), RejectReason.MALFORMED),
    ("empty metadata key", _unsigned_defect(metadata={"": 1}), RejectReason.MALFORMED),
    ("timestamp beyond int64", _unsigned_defect(timestamp_ms=1 << 64), RejectReason.MALFORMED),
    ("bad surrogate in id", _unsigned_defect(local_id="\ud800"), RejectReason.MALFORMED),
    ("bad surrogate in value", _unsigned_defect(metadata={"k": "\udfff"}), RejectReason.MALFORMED),
    ("seq is a bool", _unsigned_defect(seq=True), RejectReason.MALFORMED),
    (
        "FORGET with an embedding",
        _defect(kind=EventKind.FORGET, model=None, metadata={}),
        RejectReason.MALFORMED,
    ),
    ("kind is not an EventKind", _unsigned_defect(kind=7), RejectReason.MALFORMED),
    ("privacy is not shared", _unsigned_defect(privacy=2), RejectReason.MALFORMED),
]


@pytest.mark.parametrize(("make", "reason"), [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_each_bad_event_is_rejected_with_its_reason_and_changes_nothing(
    make: Callable[[int], Event], reason: RejectReason
) -> None:
    state = replica()
    state.apply_event(Origin(ORIGIN).put("honest"))  # seq 1: some state to keep intact
    state.apply_event(Origin(31).put("honest"))
    before = _state_of(state)
    bad = make(2)
    for attempt in (
        lambda: state.apply_event(bad),  # next in line
        lambda: state.apply_run(EventRun(bad.origin, 1, 2, (bad,))),  # inside a run
        lambda: state.apply_event(make(9)),  # above a gap: not even buffered
    ):
        result = attempt()
        assert result.rejected == {reason: 1}
        assert result.applied == 0 and result.buffered == 0
        assert not result.effects and not result.fresh
        assert _state_of(state) == before


def test_replayed_old_events_are_duplicates_and_not_even_verified() -> None:
    state = replica()
    writer = Origin(ORIGIN)
    events = [writer.put("a"), writer.update("a"), writer.forget("a")]
    for event in events:
        state.apply_event(event)
    before = _state_of(state)
    tampered = replace(events[0], signature=bytes(64))  # dropped before any check
    for event in [*events, tampered]:
        result = state.apply_event(event)
        assert result.duplicates == 1 and result.applied == 0 and not result.rejected
        assert not result.effects
    assert _state_of(state) == before


def test_events_of_our_own_origin_from_a_peer_are_refused() -> None:
    me = core(40)
    own = Origin(40)
    me.local_event(own.put("mine"))
    before = _state_of(me.replica)
    forged_future = own.put("never-written")  # validly signed by our key, seq 2
    me.on_message(node_id(41), rumor(node_id(41), forged_future))
    assert me.metrics.events_rejected == {"own_origin": 1}
    assert _state_of(me.replica) == before


def test_malformed_runs_reject_the_whole_run() -> None:
    writer = Origin(ORIGIN)
    a, b, c = writer.put("a"), writer.put("b"), writer.put("c")
    other = Origin(31).put("x")
    runs = [
        EventRun(writer.node_id, 0, 2, (b, a)),  # not ascending
        EventRun(writer.node_id, 1, 3, (a, b, c)),  # event outside (after, through]
        EventRun(writer.node_id, 0, 3, (a, other)),  # an event of another origin
        EventRun(writer.node_id, 3, 1, ()),  # through < after
        EventRun("", 0, 1, (a,)),  # no origin
    ]
    for run in runs:
        state = replica()
        before = _state_of(state)
        result = state.apply_run(run)
        assert set(result.rejected) == {RejectReason.MALFORMED}
        assert _state_of(state) == before and not result.effects


def _mesh(n: int = 3) -> list[FederationCore]:
    cores = [core(50 + i) for i in range(n)]
    for c in cores:
        for d in cores:
            if c is not d:
                c.peer_discovered(d.node_id, f"addr-{d.node_id}")
    pump(cores)
    return cores


def test_bad_batches_at_the_engine_are_counted_and_the_honest_mesh_converges() -> None:
    cores = _mesh()
    victim = cores[0]
    honest = [Origin(50 + i) for i in range(3)]
    mallory = node_id(59)
    victim.peer_discovered(mallory, "addr-mallory")
    pump(cores)
    before = _state_of(victim.replica)
    writer = Origin(ORIGIN)
    good = writer.put("g")
    limit = victim.config.max_batch_events
    attacks: list[tuple[object, str]] = [
        (EventBatch(mallory, (EventRun(good.origin, 0, 1, (forged_signature(),)),)),
         "bad_signature"),
        (EventBatch(mallory, (EventRun(good.origin, 0, 1, (claims_another_origin(),)),)),
         "malformed"),  # the run's origin differs from the event's: a malformed run
        (EventBatch(mallory, (EventRun(good.origin, 0, limit + 2,
                                       tuple(writer.put(f"x{i}") for i in range(limit + 1))),)),
         "oversized"),
        # the batch claims another sender than the authenticated peer
        (EventBatch(node_id(58), (EventRun(good.origin, 0, 1, (good,)),)), "malformed"),
        ("not a message", "malformed"),
    ]
    for message, reason in attacks:
        rejected_before = dict(victim.metrics.events_rejected)
        malformed_before = victim.metrics.messages_malformed
        victim.on_message(mallory, message)  # type: ignore[arg-type]
        grew = {k: v - rejected_before.get(k, 0) for k, v in victim.metrics.events_rejected.items()}
        grew = {k: v for k, v in grew.items() if v}
        assert reason in grew or victim.metrics.messages_malformed > malformed_before, reason
        assert _state_of(victim.replica) == before
    bad_digest = Digest(node_id(58), 1, 1, "x", {})  # sender lie
    victim.on_message(mallory, bad_digest)
    assert _state_of(victim.replica) == before
    # the honest mesh keeps converging
    for i, c in enumerate(cores):
        c.local_event(honest[i].put("after-attack"))
    pump(cores)
    for c in cores:
        assert {e.local_id for e in c.live_entries()} == {"after-attack"}
        assert c.version_vector() == cores[0].version_vector()


def test_forged_events_do_not_spread_through_rumors() -> None:
    cores = _mesh(4)
    entry = cores[0]
    bad = forged_signature()
    entry.on_message(node_id(59), rumor(node_id(59), bad, hops=1))
    pump(cores)
    assert entry.metrics.rumors_forwarded == 0
    for c in cores:
        assert c.replica.watermark(bad.origin) == 0
    assert sum(c.metrics.events_received for c in cores[1:]) == 0


def test_signature_check_can_only_be_skipped_by_the_named_flag() -> None:
    unsafe = core(60, FederationConfig.local(insecure_skip_signature_verification=True))
    safe = core(61)
    bad = forged_signature()
    for c in (safe, unsafe):
        c.on_message(node_id(59), rumor(node_id(59), bad))
    assert safe.metrics.events_rejected == {"bad_signature": 1}
    assert unsafe.metrics.events_rejected == {}
