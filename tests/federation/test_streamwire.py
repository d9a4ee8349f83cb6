"""The per-stream header (federation.io.streamwire): a stream says the sender, each
origin's key and model once; the receiver gets back exactly the messages sent. Over
real gRPC streams on port 0, and against a receiver that never asked for it."""

from __future__ import annotations

import contextlib
import queue
import random
import time
from collections.abc import Iterator
from concurrent import futures
from dataclasses import replace
from typing import Any

import grpc
import pytest

from federation.errors import MalformedEvent
from federation.events import verify_signature
from federation.io.convert import model_to_proto
from federation.io.streamwire import StreamReader, StreamWriter
from federation.io.transport import OPTIONS, GossipTransport, Security
from federation.io.wire import message_from_proto, message_to_proto
from federation.messages import Digest, EventBatch, EventRun, MemberHeartbeat, Message
from federation.ports import Hello
from federation.v1 import federation_pb2 as fpb
from federation.v1 import federation_pb2_grpc as fpb_grpc

from fedkit import MODEL, Origin, node_id, rumor


def _traffic() -> list[Message]:
    """What a stream from node 1 carries: its own pushes, a forward of node 2's
    events, a FORGET, and digests in between."""
    mine, theirs = Origin(1), Origin(2)
    me = node_id(1)
    digest = Digest(sender=me, incarnation=1, heartbeat=7, address="10.0.0.1:7000",
                    version_vector={me: 3, node_id(2): 2},
                    members=(MemberHeartbeat(node_id(2), 1, 5, "10.0.0.2:7000"),))
    out: list[Message] = [digest]
    out += [rumor(me, mine.put(f"a{i}")) for i in range(3)]
    out.append(EventBatch(me, (EventRun(node_id(2), 0, 2, (theirs.put("b0"), theirs.update("b0"))),
                               ), rumor_hops=2))
    out.append(rumor(me, mine.forget("a0")))
    out.append(Digest(sender=me, incarnation=1, heartbeat=8, address="10.0.0.1:7000",
                      version_vector={me: 4, node_id(2): 2}))
    return out


def test_a_shortened_stream_reads_back_exactly_what_was_sent() -> None:
    writer, reader = StreamWriter(), StreamReader()
    writer.shorten = True
    sent = _traffic()
    full = [message_to_proto(m).ByteSize() for m in sent]
    wire = [writer.write(message_to_proto(m)) for m in sent]
    short = [m.ByteSize() for m in wire]
    got = [message_from_proto(reader.read(fpb.GossipMessage.FromString(m.SerializeToString())))
           for m in wire]
    assert got == sent
    assert all(verify_signature(e) for m in got if isinstance(m, EventBatch)
               for r in m.runs for e in r.events)
    # the first digest and the first push say everything; what follows leaves out the
    # sender, address, run origin, key and model: 22 + 34 + model + 22 bytes per push
    assert short[0] == full[0] + 2  # all of it, marked a delta (from nothing)
    assert short[1] == full[1] - 22 - 22  # the digest said the sender; the run's origin
    model_bytes = 2 + model_to_proto(MODEL).ByteSize()
    for i in (2, 3):  # (and maybe a byte of a length prefix)
        assert full[i] - short[i] in (22 + 22 + 34 + model_bytes + d for d in (0, 1, 2))
    # and the second digest its sender, address, and the vector entry that did not change
    assert full[-1] - short[-1] == 22 + 2 + len("10.0.0.1:7000") + 2 + 2 + 20 + 2 - 2


def test_a_writer_not_told_to_shorten_sends_whole_messages() -> None:
    writer = StreamWriter()
    for m in _traffic():
        assert writer.write(message_to_proto(m)) == message_to_proto(m)


def test_a_message_that_leaves_out_what_the_stream_never_said_is_refused() -> None:
    shortened = StreamWriter()
    shortened.shorten = True
    first, second = (shortened.write(message_to_proto(m)) for m in _traffic()[1:3])
    with pytest.raises(MalformedEvent):  # a stream that starts without its sender
        StreamReader().read(second)
    # a reader that missed the first push fills no key: the event fails verification
    reader = StreamReader()
    reader.read(message_to_proto(_traffic()[0]))
    event = next(e for r in message_from_proto(reader.read(second)).runs for e in r.events)
    assert not event.public_key and not verify_signature(event)
    assert first.batch.runs[0].events[0].public_key  # the first said it


class _OldGossip(fpb_grpc.GossipServicer):
    """A receiver from before the header: it never sends initial metadata."""

    def __init__(self) -> None:
        self.got: queue.Queue[fpb.GossipMessage] = queue.Queue()

    def Deliver(self, request_iterator: Iterator[fpb.GossipMessage], context: Any
                ) -> fpb.DeliverAck:
        n = 0
        for msg in request_iterator:
            self.got.put(msg)
            n += 1
        return fpb.DeliverAck(received=n)


@pytest.fixture
def sender() -> Iterator[GossipTransport]:
    a = GossipTransport("127.0.0.1:0", security=Security())
    a.start(lambda s, m: None, lambda: Hello(node_id(1), "", MODEL))
    yield a
    a.stop()


def test_a_real_stream_shortens_after_the_receivers_header(sender: GossipTransport) -> None:
    inbox: queue.Queue[Message] = queue.Queue()
    b = GossipTransport("127.0.0.1:0", security=Security())
    b.start(lambda s, m: inbox.put(m), lambda: Hello(node_id(2), "", MODEL))
    try:
        sent = _traffic()
        address = f"127.0.0.1:{b.port}"
        sender.send(node_id(2), address, sent[0])
        assert inbox.get(timeout=10) == sent[0]  # the stream is open, its header seen
        before = sender.stats.bytes_sent
        for m in sent[1:]:
            sender.send(node_id(2), address, m)
        got = [inbox.get(timeout=10) for _ in sent[1:]]
        assert got == sent[1:]
        whole = sum(message_to_proto(m).ByteSize() for m in sent[1:])
        assert sender.stats.bytes_sent - before < whole - 3 * 78
        assert b.stats.bytes_received == sender.stats.bytes_sent and b.stats.malformed == 0
    finally:
        b.stop()


def test_a_receiver_that_never_asked_gets_whole_messages(sender: GossipTransport) -> None:
    old = _OldGossip()
    server = grpc.server(futures.ThreadPoolExecutor(4), options=OPTIONS)
    fpb_grpc.add_GossipServicer_to_server(old, server)
    port = server.add_insecure_port("127.0.0.1:0")
    server.start()
    try:
        sent = _traffic()
        for m in sent:
            sender.send(node_id(2), f"127.0.0.1:{port}", m)
        got = [old.got.get(timeout=10) for _ in sent]
        assert got == [message_to_proto(m) for m in sent]
        assert [message_from_proto(m) for m in got] == sent  # decoded without a reader
    finally:
        server.stop(0).wait()


def test_a_broken_stream_starts_afresh(sender: GossipTransport) -> None:
    """After a reconnect the new stream says everything again: the new receiver never
    heard the old stream."""
    inbox: queue.Queue[Message] = queue.Queue()
    first = GossipTransport("127.0.0.1:0", security=Security())
    first.start(lambda s, m: inbox.put(m), lambda: Hello(node_id(2), "", MODEL))
    port = first.port
    sent = _traffic()
    sender.send(node_id(2), f"127.0.0.1:{port}", sent[1])
    assert inbox.get(timeout=10) == sent[1]
    first.stop(grace=0)
    second = GossipTransport(f"127.0.0.1:{port}", security=Security())
    second.start(lambda s, m: inbox.put(m), lambda: Hello(node_id(2), "", MODEL))
    try:
        deadline = time.monotonic() + 30
        got: Message | None = None
        while got != sent[2] and time.monotonic() < deadline:
            # what is sent into the broken stream is dropped: send until one arrives
            sender.send(node_id(2), f"127.0.0.1:{port}", sent[2])
            with contextlib.suppress(queue.Empty):
                got = inbox.get(timeout=0.5)
        assert got == sent[2], "the push after a reconnect did not arrive whole"
        assert second.stats.malformed == 0
    finally:
        second.stop()


def _digests(seed: int, n: int) -> list[Digest]:
    """A stream's digests over time: vectors that grow (an origin now and then gone),
    floors, members whose heartbeats move and whose address or incarnation may change."""
    rng = random.Random(seed)
    me = node_id(1)
    origins = [node_id(i) for i in range(1, 12)]
    vector = {o: rng.randint(1, 50) for o in origins[:6]}
    floors: dict[str, int] = {}
    members = {node_id(i): [1_700_000_000_000 + i, 1, f"10.0.0.{i}:7000"] for i in range(2, 9)}
    out = []
    for k in range(n):
        for o in rng.sample(origins, 3):
            vector[o] = vector.get(o, 0) + rng.randint(0, 3) or 1
        if rng.random() < 0.2 and len(vector) > 2:
            vector.pop(rng.choice(sorted(vector)))
        if rng.random() < 0.3:
            floors[rng.choice(sorted(vector))] = rng.randint(1, 9)
        if rng.random() < 0.2 and floors:
            floors.pop(rng.choice(sorted(floors)))
        for m in members.values():
            m[1] += 1
        if rng.random() < 0.2:
            m = members[rng.choice(sorted(members))]
            m[0] += 1  # restarted
            m[2] = f"10.0.1.{rng.randint(1, 200)}:7000"
        shown = rng.sample(sorted(members), 4)  # a digest names some members, round-robin
        out.append(Digest(sender=me, incarnation=1_700_000_000_001, heartbeat=k + 1,
                          address="10.0.0.1:7000", version_vector=dict(vector),
                          members=tuple(MemberHeartbeat(i, members[i][0], members[i][1],
                                                        members[i][2]) for i in shown),
                          reply=bool(k % 2), gc_floors=dict(floors)))
    return out


@pytest.mark.parametrize("seed", range(5))
def test_delta_digests_read_back_whole(seed: int) -> None:
    writer, reader = StreamWriter(), StreamReader()
    sent = _digests(seed, 60)
    for k, digest in enumerate(sent):
        writer.shorten = k >= 3  # the receiver's header arrives after a few digests
        wire = fpb.GossipMessage.FromString(writer.write(message_to_proto(digest))
                                            .SerializeToString())
        assert wire.digest.delta == (k >= 3)
        assert message_from_proto(reader.read(wire)) == digest, k


def test_an_unchanged_digest_costs_a_few_bytes() -> None:
    writer = StreamWriter()
    writer.shorten = True
    digest = _digests(0, 1)[0]
    whole = writer.write(message_to_proto(digest)).ByteSize()
    again = writer.write(message_to_proto(replace(digest, heartbeat=digest.heartbeat + 1)))
    assert again.ByteSize() < whole / 3, (again.ByteSize(), whole)
    assert not again.digest.version_vector and all(not m.address for m in again.digest.members)
