"""The peer transport: the Gossip gRPC service and one outbound stream per peer.

An adapter. Inbound: ``Deliver`` streams of GossipMessages are decoded and handed to
``on_message(sender, message)``; anything undecodable is counted, logged once per
peer, and dropped, never raised. Outbound: :meth:`GossipTransport.send` queues a
message for the peer's long-lived ``Deliver`` stream; a bounded queue per peer drops
the newest on overflow (counted: anti-entropy repairs what is lost), and a broken
stream is re-opened on the next message after a short backoff.

Security: the server and channels take ``grpc`` credentials. Plaintext (``insecure``)
must be asked for explicitly by the caller (``--insecure``).
"""

from __future__ import annotations

import contextlib
import logging
import queue
import threading
from collections.abc import Callable, Iterator
from concurrent import futures
from dataclasses import dataclass
from typing import Any

import grpc

from federation.errors import MalformedEvent, TransportError
from federation.io.certreload import ReloadingCredentials
from federation.io.convert import model_from_proto, model_to_proto
from federation.io.cpu import StageCpu
from federation.io.streamwire import HEADER, StreamReader, StreamWriter
from federation.io.wire import message_from_proto, message_to_proto
from federation.messages import Message
from federation.ports import Hello, TransportStats
from federation.v1 import federation_pb2 as fpb
from federation.v1 import federation_pb2_grpc as fpb_grpc

log = logging.getLogger("memnode.sidecar.transport")

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
OPTIONS: list[tuple[str, str | int]] = [
    ("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
    ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
    ("grpc.keepalive_time_ms", 10_000),
    ("grpc.keepalive_timeout_ms", 5_000),
    ("grpc.so_reuseport", 0),
]


Authorizer = Callable[[grpc.ServicerContext, str], bool]
"""``authorize(context, node_id)``: may this connection speak for ``node_id``?"""


@dataclass(frozen=True)
class Security:
    """Transport credentials: None on both sides means plaintext (``--insecure``).
    With ``files``, channels take the certificate in force when they open (renewed
    without restart: :mod:`federation.io.certreload`)."""

    server: grpc.ServerCredentials | None = None
    channel: grpc.ChannelCredentials | None = None
    target_name_override: str = ""
    federation_id: str = "insecure"  # the CA's fingerprint: what discovery announces
    files: ReloadingCredentials | None = None

    @property
    def insecure(self) -> bool:
        return self.server is None

    def channel_credentials(self) -> grpc.ChannelCredentials | None:
        return self.files.channel_credentials() if self.files is not None else self.channel


def open_channel(address: str, security: Security) -> grpc.Channel:
    credentials = security.channel_credentials()
    if credentials is None:
        return grpc.insecure_channel(address, options=OPTIONS)
    options: list[tuple[str, str | int]] = list(OPTIONS)
    if security.target_name_override:
        options.append(("grpc.ssl_target_name_override", security.target_name_override))
    return grpc.secure_channel(address, credentials, options=options)


def _ignore(_: grpc.ChannelConnectivity) -> None:
    """A connectivity callback that wants nothing (subscribing is what connects)."""


class _PeerSender:
    """One peer's outbound stream, fed from a bounded queue by a thread of its own."""

    _CLOSE = object()

    def __init__(self, peer: str, address: str, security: Security, stats: TransportStats,
                 max_queue: int) -> None:
        self.peer = peer
        self.address = address
        self._security = security
        self._stats = stats
        self._queue: queue.Queue[Any] = queue.Queue(maxsize=max_queue)
        self._closed = threading.Event()
        # the first stream's channel starts connecting now, not at the first message
        # (gRPC's connectivity poller for it stops within 0.2 s; the connecting goes on)
        self._opened: grpc.Channel | None = open_channel(address, security)
        self._opened.subscribe(_ignore, try_to_connect=True)
        self._opened.unsubscribe(_ignore)
        self._thread = threading.Thread(target=self._run, name=f"gossip-to-{peer[:8]}",
                                        daemon=True)
        self._thread.start()

    def send(self, message: fpb.GossipMessage) -> None:
        try:
            self._queue.put_nowait(message)
        except queue.Full:
            self._stats.messages_dropped += 1

    def close(self) -> None:
        self._closed.set()
        if self._opened is not None:  # never used: no stream closes it
            self._opened.close()
        with contextlib.suppress(queue.Full):
            self._queue.put_nowait(self._CLOSE)

    def _messages(self, first: fpb.GossipMessage, stream: StreamWriter
                  ) -> Iterator[fpb.GossipMessage]:
        item: Any = first
        while item is not self._CLOSE:
            size = stream.write(item).ByteSize()
            self._stats.bytes_sent += size
            self._stats.by_peer_bytes_sent[self.peer] = \
                self._stats.by_peer_bytes_sent.get(self.peer, 0) + size
            yield item
            item = self._queue.get()

    def _run(self) -> None:
        backoff = 0.05
        logged = False
        while not self._closed.is_set():
            first = self._queue.get()
            if first is self._CLOSE:
                return
            channel, self._opened = self._opened or open_channel(self.address,
                                                                 self._security), None
            stream = StreamWriter()
            try:
                call = fpb_grpc.GossipStub(channel).Deliver.future(self._messages(first, stream))
                # a receiver that reads shortened messages says so before it reads any
                # (an older one sends its metadata only with its reply, at the end)
                stream.shorten = HEADER in (call.initial_metadata() or ())
                # wait for the stream's end without polling: gRPC's result() wakes every
                # 0.1 s, and with a sender per peer that was 45% of an idle node's Python
                # time at 32 nodes
                ended = threading.Event()
                call.add_done_callback(lambda _, ended=ended: ended.set())
                ended.wait()
                call.result()
                backoff = 0.05
            except grpc.RpcError as exc:
                self._stats.stream_errors += 1
                if not logged:
                    log.info("stream to %s at %s broke: %s", self.peer, self.address,
                             exc.code())  # type: ignore[attr-defined]
                    logged = True
                # What was queued is stale by now: anti-entropy repairs it.
                while not self._queue.empty():
                    if self._queue.get_nowait() is self._CLOSE:
                        return
                    self._stats.messages_dropped += 1
                self._closed.wait(backoff)
                backoff = min(backoff * 2, 2.0)
            finally:
                channel.close()


class GossipTransport:
    """The Transport port over gRPC: binds ``listen`` at construction (``port``)."""

    def __init__(
        self,
        listen: str,
        *,
        security: Security,
        authorize: Authorizer | None = None,
        max_queue: int = 1024,
        workers: int = 64,
        cpu: StageCpu | None = None,
    ) -> None:
        self.stats = TransportStats()
        self.cpu = cpu or StageCpu()  # decode and encode
        self._security = security
        self._max_queue = max_queue
        self._senders: dict[str, _PeerSender] = {}
        self._lock = threading.Lock()
        self._bad_peers_logged: set[str] = set()
        self.server = grpc.server(futures.ThreadPoolExecutor(workers, "gossip-in"),
                                  options=OPTIONS)
        self._servicer = _GossipServicer(self, authorize)
        fpb_grpc.add_GossipServicer_to_server(self._servicer, self.server)
        if security.server is None:
            self._port = self.server.add_insecure_port(listen)
        else:
            self._port = self.server.add_secure_port(listen, security.server)
        if not self._port:
            raise OSError(f"cannot listen on {listen}")

    @property
    def port(self) -> int:
        return self._port

    def start(self, on_message: Callable[[str, Message], None],
              identity: Callable[[], Hello]) -> None:
        self._servicer.on_message = on_message
        self._servicer.identity = identity
        self.server.start()

    def stop(self, grace: float = 1.0) -> None:
        with self._lock:
            senders = list(self._senders.values())
            self._senders.clear()
        for sender in senders:
            sender.close()
        self.server.stop(grace).wait()

    def send(self, to: str, address: str, message: Message) -> None:
        if not address:
            return
        sender = self._sender(to, address)
        with self.cpu.stage("encode"):
            encoded = message_to_proto(message)
        sender.send(encoded)

    def connect(self, to: str, address: str) -> None:
        if address:
            self._sender(to, address)

    def _sender(self, to: str, address: str) -> _PeerSender:
        with self._lock:
            sender = self._senders.get(to)
            if sender is None or sender.address != address:
                if sender is not None:
                    sender.close()
                sender = self._senders[to] = _PeerSender(to, address, self._security,
                                                         self.stats, self._max_queue)
            return sender

    def forget_peer(self, peer: str) -> None:
        with self._lock:
            sender = self._senders.pop(peer, None)
        if sender is not None:
            sender.close()

    def identify(self, address: str, me: Hello, timeout: float) -> Hello:
        channel = open_channel(address, self._security)
        request = fpb.IdentifyRequest(node_id=me.node_id, address=me.address)
        try:
            reply = fpb_grpc.GossipStub(channel).Identify(request, timeout=timeout)
        except grpc.RpcError as exc:
            self.stats.identify_failures += 1
            raise TransportError(f"identify {address}: {exc.code()}") from exc  # type: ignore[attr-defined]
        except ValueError as exc:  # a channel closed under us at shutdown
            raise TransportError(f"identify {address}: {exc}") from exc
        finally:
            channel.close()
        model = model_from_proto(reply.model) if reply.HasField("model") else None
        return Hello(reply.node_id, reply.address, model)

    def log_bad_peer(self, peer: str, what: str) -> None:
        self.stats.malformed += 1
        if peer not in self._bad_peers_logged:
            self._bad_peers_logged.add(peer)
            log.warning("dropping malformed input from %s: %s (logged once per peer)",
                        peer, what)


class _GossipServicer(fpb_grpc.GossipServicer):
    def __init__(self, transport: GossipTransport, authorize: Authorizer | None) -> None:
        self._t = transport
        self._authorize = authorize
        self.on_message: Callable[[str, Message], None] = lambda sender, message: None
        self.identity: Callable[[], Hello] | None = None

    def Deliver(self, request_iterator: Iterator[fpb.GossipMessage], context: Any
                ) -> fpb.DeliverAck:
        received = 0
        peer = context.peer()
        context.send_initial_metadata((HEADER,))
        stream = StreamReader()
        for msg in request_iterator:
            try:
                with self._t.cpu.stage("decode"):
                    self._t.stats.bytes_received += msg.ByteSize()
                    message = message_from_proto(stream.read(msg))
            except (MalformedEvent, ValueError, TypeError) as exc:
                self._t.log_bad_peer(peer, str(exc))
                continue
            sender = message.sender
            if self._authorize is not None and not self._authorize(context, sender):
                self._t.log_bad_peer(peer, f"not authorised to speak for {sender!r}")
                context.abort(grpc.StatusCode.PERMISSION_DENIED,
                              f"not authorised to speak for {sender!r}")
            received += 1
            self.on_message(sender, message)
        return fpb.DeliverAck(received=received)

    def Identify(self, request: fpb.IdentifyRequest, context: Any) -> fpb.IdentifyReply:
        if self._authorize is not None and not self._authorize(context, request.node_id):
            self._t.log_bad_peer(context.peer(), f"denied: {request.node_id!r}")
            context.abort(grpc.StatusCode.PERMISSION_DENIED, "denied by this federation")
        identity = self.identity
        if identity is None:
            context.abort(grpc.StatusCode.UNAVAILABLE, "starting")
            raise AssertionError("abort raises")
        me = identity()
        reply = fpb.IdentifyReply(node_id=me.node_id, address=me.address)
        if me.model is not None:
            reply.model.CopyFrom(model_to_proto(me.model))
        return reply

