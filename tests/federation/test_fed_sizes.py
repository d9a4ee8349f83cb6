"""The size model (federation.sizes) equals the real wire form (federation.io.wire)."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from federation.events import Event, EventKind, ModelId, SharedPrivacy, sign
from federation.io.wire import (
    batch_to_proto,
    event_to_proto,
    message_from_proto,
    message_to_proto,
    run_to_proto,
)
from federation.messages import Digest, EventBatch, EventRun, MemberHeartbeat, SignedDenyList
from federation.sizes import batch_size, digest_size, event_size, message_size, run_size
from federation.v1 import federation_pb2 as fpb

from fedkit import key, node_id

texts = st.text(max_size=40)
meta_values = st.one_of(
    st.booleans(), st.integers(-(1 << 63), (1 << 63) - 1),
    st.floats(allow_nan=False), texts,
)
metadata = st.dictionaries(st.text(min_size=1, max_size=20), meta_values, max_size=6)


@st.composite
def events(draw: st.DrawFn) -> Event:
    kind = draw(st.sampled_from(list(EventKind)))
    forget = kind is EventKind.FORGET
    dim = draw(st.integers(1, 400))
    event = Event(
        origin=node_id(1),
        seq=draw(st.integers(1, 1 << 40)),
        kind=kind,
        local_id=draw(st.text(min_size=1, max_size=30)),
        timestamp_ms=draw(st.integers(-(1 << 50), 1 << 50)),
        privacy=draw(st.sampled_from(list(SharedPrivacy))),
        model=None if forget else ModelId(draw(texts), dim, draw(texts)),
        embedding=b"" if forget else bytes(4 * dim),
        metadata={} if forget else draw(metadata),
    )
    return sign(event, key(1))


@settings(max_examples=150, deadline=None)
@given(events())
def test_event_size(event: Event) -> None:
    assert event_size(event) == len(event_to_proto(event).SerializeToString())


@settings(max_examples=40, deadline=None)
@given(st.lists(events(), max_size=4), st.integers(0, 1 << 33), st.integers(0, 300),
       st.integers(0, (1 << 64) - 1))
def test_run_and_batch_size(evs: list[Event], after: int, hops: int, seen: int) -> None:
    run = EventRun(node_id(1), after, after + len(evs), tuple(evs))
    assert run_size(run) == len(run_to_proto(run).SerializeToString())
    batch = EventBatch(node_id(2), (run, run), hops, {node_id(1): after + 7}, {node_id(1): after},
                       rumor_seen=seen)
    assert batch_size(batch) == len(batch_to_proto(batch).SerializeToString())


@settings(max_examples=60, deadline=None)
@given(
    st.dictionaries(st.text(min_size=1, max_size=25), st.integers(0, 1 << 40), max_size=8),
    st.lists(st.tuples(st.text(min_size=1, max_size=25), st.integers(0, 1 << 40),
                       st.integers(0, 1 << 40), texts), max_size=5),
    st.booleans(),
    st.integers(0, 1 << 60),
)
def test_digest_size(
    vv: dict[str, int], members: list[tuple[str, int, int, str]], reply: bool, deny: int
) -> None:
    digest = Digest(node_id(3), 1700000000000, 12345, "10.0.0.1:7400", vv,
                    tuple(MemberHeartbeat(*m) for m in members), reply, vv, vv, deny)
    msg = fpb.Digest(sender=digest.sender, incarnation=digest.incarnation,
                     heartbeat=digest.heartbeat, address=digest.address, reply=reply,
                     deny_version=deny,
                     members=[fpb.MemberHeartbeat(node_id=a, incarnation=b, heartbeat=c,
                                                  address=d) for a, b, c, d in members])
    for field in (msg.version_vector, msg.gc_floors, msg.resync):
        for k, v in vv.items():
            field[k] = v
    assert digest_size(digest) == len(msg.SerializeToString())


@settings(max_examples=30, deadline=None)
@given(st.integers(0, 1 << 60), st.binary(max_size=300))
def test_signed_deny_list_size_and_round_trip(version: int, payload: bytes) -> None:
    message = SignedDenyList(node_id(4), version, payload)
    wire = message_to_proto(message)
    assert message_size(message) == len(wire.deny_list.SerializeToString())
    assert message_from_proto(wire) == message


def test_a_replicated_384_dim_entry_is_about_1_6_kb() -> None:
    event = sign(Event(
        origin=node_id(1), seq=123456, kind=EventKind.PUT, local_id="01J9ZK3Q5V8M2N4P6R8T0W2Y4A",
        timestamp_ms=1_763_000_000_000, privacy=SharedPrivacy.TEAM,
        model=ModelId("all-MiniLM-L6-v2", 384, "53aa5117"), embedding=bytes(1536),
        metadata={"topic": "a" * 16, "source": "b" * 16},
    ), key(1))
    assert 1650 <= event_size(event) <= 1800
