"""The node-local Replica API over gRPC, for a sidecar in its own process.

Bound to loopback or a unix socket only (``--replica-listen``), never to the network:
whoever reaches it can write replicas. Thin: convert, call ReplicaBackend, map errors.
"""

from __future__ import annotations

import queue
from collections.abc import Iterator
from typing import Any

from federation.events import Event
from federation.io.convert import model_to_proto, peer_from_proto
from federation.io.wire import (
    MalformedEvent,
    effect_from_proto,
    event_to_proto,
    marks_to_proto,
    run_to_proto,
)
from federation.v1 import federation_pb2 as fpb
from federation.v1 import federation_pb2_grpc as fpb_grpc
from memnode.api.memory_servicer import rpc
from memnode.errors import InvalidArgument
from memnode.node.replica_port import ReplicaBackend

RESTART_STATE_CHUNK = 5000


class ReplicaServicer(fpb_grpc.ReplicaServicer):
    def __init__(self, backend: ReplicaBackend) -> None:
        self.backend = backend
        self.node = backend.node  # for the rpc decorator's metrics

    @rpc
    def Hello(self, request: fpb.HelloRequest, context: Any) -> fpb.HelloReply:
        info = self.backend.hello()
        return fpb.HelloReply(
            node_id=info.node_id, public_key=info.public_key,
            model=model_to_proto(info.model), restoring=info.restoring,
        )

    def GetRestartState(self, request: fpb.RestartStateRequest, context: Any
                 ) -> Iterator[fpb.RestartStateChunk]:
        restart = self.backend.restart_state()
        events = list(restart.events)
        for start in range(0, len(events), RESTART_STATE_CHUNK):
            chunk = events[start : start + RESTART_STATE_CHUNK]
            yield fpb.RestartStateChunk(events=[event_to_proto(e) for e in chunk])
        yield fpb.RestartStateChunk(marks=[marks_to_proto(m) for m in restart.marks],
                                    erasure_record=restart.erasure_record)

    @rpc
    def Persist(self, request: fpb.PersistRequest, context: Any) -> fpb.PersistReply:
        try:
            effects = [effect_from_proto(e) for e in request.effects]
        except MalformedEvent as exc:
            raise InvalidArgument(f"malformed effect: {exc}") from None
        self.backend.persist(effects)
        return fpb.PersistReply()

    @rpc
    def GetVersionVector(self, request: fpb.HelloRequest, context: Any
                         ) -> fpb.VersionVectorReply:
        return fpb.VersionVectorReply(version_vector=self.backend.version_vector())

    @rpc
    def ReadRun(self, request: fpb.ReadRunRequest, context: Any) -> fpb.EventRun:
        run = self.backend.run_after(request.origin, request.after_seq, request.max_events,
                                     request.max_bytes)
        return run_to_proto(run)

    def Watch(self, request: fpb.WatchRequest, context: Any) -> Iterator[fpb.Event]:
        events: queue.Queue[list[Event] | None] = queue.Queue()
        stop = self.backend.watch(request.after_seq, events.put)
        context.add_callback(lambda: events.put(None))
        try:
            while context.is_active():
                batch = events.get()
                if batch is None:
                    return
                for event in batch:
                    yield event_to_proto(event)
        finally:
            stop()

    @rpc
    def ReportPeers(self, request: fpb.PeerReport, context: Any) -> fpb.PeerReportAck:
        self.backend.report_peers([peer_from_proto(p) for p in request.peers])
        return fpb.PeerReportAck()
