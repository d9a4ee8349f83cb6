"""A peer that lies: every bad event is rejected and counted, nothing changes, and the
honest mesh keeps converging."""

from __future__ import annotations

from dataclasses import replace

import grpc
import numpy as np
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.events import (
    Event,
    EventKind,
    ModelId,
    SharedPrivacy,
    node_id_from_public_key,
    public_key_bytes,
    sign,
)
from federation.io.wire import batch_to_proto
from federation.messages import EventBatch, EventRun
from federation.v1 import federation_pb2 as fpb
from federation.v1 import federation_pb2_grpc as fpb_grpc

from helpers import NodeHandle, wait_for


@pytest.fixture
def mesh(node_factory) -> list[NodeHandle]:  # type: ignore[no-untyped-def]
    a: NodeHandle = node_factory("a", peers=[])
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address])
    wait_for(lambda: len(a.client.status().peers) == 1, "b to join a")
    return [a, b]


def _send(target: NodeHandle, *messages: fpb.GossipMessage) -> None:
    assert target.sidecar is not None
    with grpc.insecure_channel(target.sidecar.address) as channel:
        fpb_grpc.GossipStub(channel).Deliver(iter(messages), timeout=10)


def _batch(sender: str, *events: Event, after: int | None = None) -> fpb.GossipMessage:
    origin = events[0].origin
    run = EventRun(origin, events[0].seq - 1 if after is None else after, events[-1].seq,
                   tuple(events))
    return fpb.GossipMessage(batch=batch_to_proto(EventBatch(sender=sender, runs=(run,))))


def _rejected(handle: NodeHandle) -> dict[str, int]:
    assert handle.sidecar is not None and handle.sidecar.core is not None
    return dict(handle.sidecar.core.metrics.events_rejected)


def test_lies_are_rejected_counted_and_change_nothing(mesh: list[NodeHandle]) -> None:
    a, b = mesh
    mid = a.client.remember("an honest memory")
    wait_for(lambda: b.client.status().memories["replicated"] == 1, "the honest write")
    honest = a.node.log.latest_event(mid)
    assert honest is not None
    before = b.client.status()

    evil = Ed25519PrivateKey.generate()
    evil_id = node_id_from_public_key(public_key_bytes(evil))
    model = a.node.model
    vec = np.ones(model.dim, dtype="<f4") / np.sqrt(model.dim)

    def evil_event(seq: int, **changes: object) -> Event:
        base = Event(origin=evil_id, seq=seq, kind=EventKind.PUT, local_id=f"x{seq}",
                     timestamp_ms=1, privacy=SharedPrivacy.PUBLIC, model=model,
                     embedding=vec.tobytes(), metadata={"k": "v"})
        return sign(replace(base, **changes), evil)  # type: ignore[arg-type]

    # 1. a forged signature: honest origin, altered content, signature left as it was
    forged = replace(honest, seq=honest.seq + 1, local_id="forged")
    # 2. an event claiming another origin, signed with the liar's own key
    claimed = sign(replace(honest, seq=honest.seq + 1, local_id="claimed"), evil)
    # 3. the wrong model, 4. the wrong dimension, 5. an oversized embedding and metadata
    wrong_model = evil_event(1, model=ModelId("other-model", model.dim, "0" * 16))
    wrong_dim = evil_event(1, embedding=vec[:10].tobytes())
    oversized = evil_event(1, metadata={f"k{i}": "x" * 2000 for i in range(100)})
    _send(b, _batch(evil_id, forged), _batch(evil_id, claimed), _batch(evil_id, wrong_model),
          _batch(evil_id, wrong_dim), _batch(evil_id, oversized))
    # 6. a malformed batch: an event with no kind; a run that ends before it starts;
    #    a message with no body
    bad_kind = fpb.GossipMessage(batch=fpb.EventBatch(sender=evil_id, runs=[fpb.EventRun(
        origin=evil_id, after_seq=0, through_seq=1,
        events=[fpb.Event(origin=evil_id, seq=1, local_id="z")])]))
    backwards = _batch(evil_id, evil_event(5), after=9)
    _send(b, bad_kind, backwards, fpb.GossipMessage())
    # 7. replayed old events: already known, dropped as duplicates
    _send(b, _batch(a.node.node_id, honest), _batch(a.node.node_id, honest))

    wait_for(lambda: sum(_rejected(b).values()) >= 5, "the lies to be counted")
    rejected = _rejected(b)
    assert rejected.get("bad_signature", 0) + rejected.get("wrong_origin", 0) >= 2, rejected
    assert rejected.get("wrong_model", 0) >= 1, rejected
    assert rejected.get("wrong_dimension", 0) >= 1, rejected
    assert rejected.get("oversized", 0) >= 1, rejected
    core = b.sidecar.core  # type: ignore[union-attr]
    wait_for(lambda: core.metrics.messages_malformed + b.sidecar.transport.stats.malformed >= 2,  # type: ignore[union-attr]
             "the malformed messages to be counted")
    # the replays went last, maybe on a stream of their own: wait for them too
    wait_for(lambda: core.metrics.events_duplicate >= 2, "the replays to be dropped")
    assert core.metrics.events_duplicate >= 2
    after = b.client.status()
    assert after.version_vector == before.version_vector
    assert evil_id not in after.version_vector
    assert after.memories == before.memories
    # the honest mesh keeps converging
    a.client.remember("still honest")
    wait_for(lambda: b.client.status().memories["replicated"] == 2, "honest replication")
