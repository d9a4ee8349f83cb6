"""ReplicaPort over the node-local Replica gRPC API (a sidecar in its own process)."""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import ParamSpec, TypeVar

import grpc

from federation.effects import Effect
from federation.errors import ReplicaPortError
from federation.events import Event
from federation.io.convert import model_from_proto, peer_to_proto
from federation.io.wire import (
    effect_to_proto,
    event_from_proto,
    marks_from_proto,
    run_from_proto,
)
from federation.messages import EventRun
from federation.ports import NodeInfo, PeerInfo
from federation.replica import RestartState
from federation.v1 import federation_pb2 as fpb
from federation.v1 import federation_pb2_grpc as fpb_grpc

log = logging.getLogger("memnode.sidecar.replica")
MAX_MESSAGE = 64 * 1024 * 1024
P = ParamSpec("P")
R = TypeVar("R")


def _mapped(method: Callable[P, R]) -> Callable[P, R]:
    """Every grpc.RpcError of a port call becomes a ReplicaPortError (the port's error)."""

    @functools.wraps(method)
    def call(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return method(*args, **kwargs)
        except grpc.RpcError as exc:
            code = exc.code()  # type: ignore[attr-defined]
            raise ReplicaPortError(f"node's Replica API, {method.__name__}: {code}") from exc

    return call


class GrpcReplicaPort:
    """The ReplicaPort over the node-local Replica API (``memnode sidecar --node``).
    Every call raises ReplicaPortError when the node is unreachable or refuses it."""

    def __init__(self, addr: str, timeout: float = 30.0) -> None:
        self.addr = addr
        self.timeout = timeout
        self._channel = grpc.insecure_channel(addr, options=[
            ("grpc.max_receive_message_length", MAX_MESSAGE),
            ("grpc.max_send_message_length", MAX_MESSAGE),
        ])
        self._stub = fpb_grpc.ReplicaStub(self._channel)

    def close(self) -> None:
        self._channel.close()

    def wait_ready(self, timeout: float) -> None:
        grpc.channel_ready_future(self._channel).result(timeout=timeout)

    @_mapped
    def hello(self) -> NodeInfo:
        r = self._stub.Hello(fpb.HelloRequest(), timeout=self.timeout)
        return NodeInfo(r.node_id, model_from_proto(r.model), r.public_key,
                        restoring=r.restoring)

    @_mapped
    def restart_state(self) -> RestartState:
        events: list[Event] = []
        marks = []
        record = b""
        for chunk in self._stub.GetRestartState(fpb.RestartStateRequest(), timeout=None):
            events += [event_from_proto(e) for e in chunk.events]
            marks += [marks_from_proto(m) for m in chunk.marks]
            record = chunk.erasure_record or record
        return RestartState(events=events, marks=marks, erasure_record=record)

    @_mapped
    def persist(self, effects: Sequence[Effect]) -> None:
        request = fpb.PersistRequest(effects=[effect_to_proto(e) for e in effects])
        self._stub.Persist(request, timeout=self.timeout)

    @_mapped
    def version_vector(self) -> Mapping[str, int]:
        reply = self._stub.GetVersionVector(fpb.HelloRequest(), timeout=self.timeout)
        return dict(reply.version_vector)

    @_mapped
    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int
                  ) -> EventRun:
        request = fpb.ReadRunRequest(origin=origin, after_seq=after_seq,
                                     max_events=max_events, max_bytes=max_bytes)
        return run_from_proto(self._stub.ReadRun(request, timeout=self.timeout))

    @_mapped
    def watch(self, after_seq: int, on_events: Callable[[list[Event]], None]
              ) -> Callable[[], None]:
        call = self._stub.Watch(fpb.WatchRequest(after_seq=after_seq), timeout=None)

        def pump() -> None:
            try:
                for msg in call:
                    on_events([event_from_proto(msg)])
            except grpc.RpcError as exc:
                if exc.code() != grpc.StatusCode.CANCELLED:  # type: ignore[attr-defined]
                    log.warning("watch of the node's events ended: %s", exc)

        thread = threading.Thread(target=pump, name="replica-watch", daemon=True)
        thread.start()
        return call.cancel  # type: ignore[no-any-return]

    @_mapped
    def report_peers(self, peers: Sequence[PeerInfo]) -> None:
        request = fpb.PeerReport(peers=[peer_to_proto(p) for p in peers])
        self._stub.ReportPeers(request, timeout=self.timeout)
