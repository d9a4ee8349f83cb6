"""The gRPC transport on its own (real servers on port 0): delivery, Identify, the
authorizer, undecodable input, and a peer that cannot be reached."""

from __future__ import annotations

import queue
import socket
from collections.abc import Iterator

import grpc
import pytest

from federation.errors import TransportError
from federation.io.transport import GossipTransport, Security, open_channel
from federation.messages import Digest, Message
from federation.ports import Hello
from federation.v1 import federation_pb2 as fpb
from federation.v1 import federation_pb2_grpc as fpb_grpc

from fedkit import MODEL, node_id


@pytest.fixture
def pair() -> Iterator[tuple[GossipTransport, GossipTransport, queue.Queue[tuple[str, Message]]]]:
    inbox: queue.Queue[tuple[str, Message]] = queue.Queue()
    denied = {node_id(503)}
    b = GossipTransport("127.0.0.1:0", security=Security(),
                        authorize=lambda context, sender: sender not in denied)
    b.start(lambda sender, message: inbox.put((sender, message)),
            lambda: Hello(node_id(502), f"127.0.0.1:{b.port}", MODEL))
    a = GossipTransport("127.0.0.1:0", security=Security())
    a.start(lambda sender, message: None, lambda: Hello(node_id(501), "", MODEL))
    yield a, b, inbox
    a.stop()
    b.stop()


def _digest(sender: str) -> Digest:
    return Digest(sender=sender, incarnation=1, heartbeat=1, address="x:1",
                  version_vector={sender: 3})


def test_a_message_is_delivered_with_its_sender(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, inbox = pair
    a.send(node_id(502), f"127.0.0.1:{b.port}", _digest(node_id(501)))
    sender, message = inbox.get(timeout=10)
    assert sender == node_id(501) and message == _digest(node_id(501))
    assert a.stats.bytes_sent > 0 and b.stats.bytes_received == a.stats.bytes_sent


def test_identify_answers_who_listens(pair) -> None:  # type: ignore[no-untyped-def]
    a, b, _ = pair
    hello = a.identify(f"127.0.0.1:{b.port}", Hello(node_id(501), ""), timeout=10)
    assert hello == Hello(node_id(502), f"127.0.0.1:{b.port}", MODEL)
    with pytest.raises(TransportError):
        a.identify("127.0.0.1:1", Hello(node_id(501), ""), timeout=2)
    assert a.stats.identify_failures == 1


def test_a_denied_sender_and_undecodable_input_are_refused_and_counted(pair) -> None:  # type: ignore[no-untyped-def]
    _, b, inbox = pair
    channel = open_channel(f"127.0.0.1:{b.port}", Security())
    stub = fpb_grpc.GossipStub(channel)
    garbage = fpb.GossipMessage()  # no body: cannot be understood
    assert stub.Deliver(iter([garbage]), timeout=10).received == 0
    assert b.stats.malformed == 1
    denied = GossipTransport("127.0.0.1:0", security=Security())
    try:
        denied.start(lambda s, m: None, lambda: Hello(node_id(503), ""))
        with pytest.raises(TransportError):
            denied.identify(f"127.0.0.1:{b.port}", Hello(node_id(503), ""), timeout=10)
        from federation.io.wire import message_to_proto

        with pytest.raises(grpc.RpcError) as refused:
            stub.Deliver(iter([message_to_proto(_digest(node_id(503)))]), timeout=10)
        assert refused.value.code() == grpc.StatusCode.PERMISSION_DENIED  # type: ignore[attr-defined]
    finally:
        denied.stop()
        channel.close()
    assert inbox.empty()


def test_connect_opens_the_connection_before_any_message(pair) -> None:  # type: ignore[no-untyped-def]
    """A peer just seen alive gets its connection at once: the first push to it then
    waits for no TCP and HTTP/2 handshake (round trips on a slow link)."""
    a, _, _ = pair
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(10)
        a.connect(node_id(504), f"127.0.0.1:{listener.getsockname()[1]}")
        accepted, _ = listener.accept()  # no message was sent
        accepted.close()
    assert a.stats.bytes_sent == 0
