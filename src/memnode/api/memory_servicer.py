"""The MemoryService servicer: convert, call the node, map domain errors to status codes."""

from __future__ import annotations

import functools
import logging
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import grpc

from federation.io.convert import model_from_proto, model_to_proto
from federation.v1 import types_pb2 as tpb
from memnode._version import __version__
from memnode.api.convert import change_to_proto, hit_to_proto, memory_to_proto, meta_from_proto
from memnode.api.decode import Undecodable
from memnode.errors import (
    FailedPrecondition,
    InvalidArgument,
    MemnodeError,
    NotFound,
    ResourceExhausted,
    Unavailable,
)
from memnode.node.domain import LocalRecord, ReplicaRecord
from memnode.node.ingest import RememberInput
from memnode.node.node import Node
from memnode.node.watch import ChangeFeed
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc

log = logging.getLogger("memnode.servicer")

STATUS = {
    InvalidArgument: grpc.StatusCode.INVALID_ARGUMENT,
    NotFound: grpc.StatusCode.NOT_FOUND,
    FailedPrecondition: grpc.StatusCode.FAILED_PRECONDITION,
    ResourceExhausted: grpc.StatusCode.RESOURCE_EXHAUSTED,
    Unavailable: grpc.StatusCode.UNAVAILABLE,
}

T = TypeVar("T")
BACKUP_CHUNK = 1 << 20
PeersFn = Callable[[], list[tpb.PeerStatus]]


def rpc(method: Callable[..., T]) -> Callable[..., T]:
    """Count and time the call; turn domain errors into gRPC status codes (and a request
    that did not parse into INVALID_ARGUMENT)."""
    name = method.__name__

    @functools.wraps(method)
    def wrapper(self: Any, request: Any, context: grpc.ServicerContext) -> T:
        metrics = self.node.metrics
        started = time.perf_counter()
        code = grpc.StatusCode.OK
        try:
            if isinstance(request, Undecodable):
                raise InvalidArgument(request.reason)
            return method(self, request, context)
        except MemnodeError as exc:
            code = STATUS.get(type(exc), grpc.StatusCode.INTERNAL)
            metrics.errors.labels(kind=exc.kind).inc()
            context.abort(code, str(exc))
        except Exception:
            code = grpc.StatusCode.INTERNAL
            metrics.errors.labels(kind="internal").inc()
            log.exception("%s failed", name)
            context.abort(code, f"{name} failed inside the node; see its log")
        finally:
            metrics.requests.labels(method=name, code=code.name).inc()
            metrics.request_seconds.labels(method=name).observe(time.perf_counter() - started)
        raise AssertionError("unreachable")  # context.abort always raises

    return wrapper


def _input(req: pb.RememberRequest) -> RememberInput:
    return RememberInput(
        text=req.text, metadata=meta_from_proto(req.metadata), privacy=req.privacy,
        keep_pii=req.keep_pii, ttl_seconds=float(req.ttl_seconds), embedding=req.embedding,
        embedding_model=(model_from_proto(req.embedding_model)
                         if req.HasField("embedding_model") else None),
    )


class MemoryServicer(pb_grpc.MemoryServiceServicer):
    def __init__(self, node: Node, peers: PeersFn | None = None,
                 problems: Callable[[], list[str]] | None = None,
                 feed: ChangeFeed | None = None) -> None:
        self.node = node
        self.feed = feed
        self._peers = peers or (lambda: [])
        self._problems = problems or (lambda: [])

    def _remember(self, items: Any) -> pb.RememberBatchResponse:
        inputs = []
        for n, request in enumerate(items):
            try:
                inputs.append(_input(request))
            except InvalidArgument as exc:
                prefix = f"item {n}: " if len(items) > 1 else ""
                raise InvalidArgument(prefix + str(exc)) from None
        results = self.node.remember(inputs)
        return pb.RememberBatchResponse(
            results=[pb.RememberResponse(id=r.id, redactions=r.redactions) for r in results]
        )

    @rpc
    def Remember(self, request: pb.RememberRequest, context: Any) -> pb.RememberResponse:
        response: pb.RememberResponse = self._remember([request]).results[0]
        return response

    @rpc
    def RememberBatch(self, request: pb.RememberBatchRequest, context: Any
                      ) -> pb.RememberBatchResponse:
        return self._remember(request.items)

    def RememberStream(self, request_iterator: Iterator[pb.RememberBatchRequest],
                       context: Any) -> Iterator[pb.RememberBatchResponse]:
        stream_batch = rpc(lambda s, req, ctx: s._remember(req.items))
        for request in request_iterator:
            yield stream_batch(self, request, context)

    @rpc
    def Recall(self, request: pb.RecallRequest, context: Any) -> pb.RecallResponse:
        result = self.node.recall(
            request.query, request.k, mesh=request.scope == pb.MESH,
            where=meta_from_proto(request.where), embedding=request.embedding,
        )
        return pb.RecallResponse(
            hits=[hit_to_proto(h) for h in result.hits],
            embed_seconds=result.embed_seconds, search_seconds=result.search_seconds,
        )

    @rpc
    def Get(self, request: pb.GetRequest, context: Any) -> pb.Memory:
        return memory_to_proto(self.node.get(request.id), self.node.node_id)

    @rpc
    def Update(self, request: pb.UpdateRequest, context: Any) -> pb.Memory:
        record = self.node.update(request.id, meta_from_proto(request.metadata),
                                  list(request.remove_keys))
        return memory_to_proto(record, self.node.node_id)

    @rpc
    def Forget(self, request: pb.ForgetRequest, context: Any) -> pb.ForgetResponse:
        if request.where and request.id:
            raise InvalidArgument("forget takes an id or a where filter, not both")
        if request.id:
            self.node.forget(request.id)
            return pb.ForgetResponse(forgotten=1)
        return pb.ForgetResponse(
            forgotten=self.node.forget_where(meta_from_proto(request.where)))

    @rpc
    def List(self, request: pb.ListRequest, context: Any) -> pb.ListResponse:
        page = self.node.list(request.page_size, request.page_token,
                              mesh=request.scope == pb.MESH,
                              where=meta_from_proto(request.where))
        own = self.node.node_id
        records: list[LocalRecord | ReplicaRecord] = [*page.local, *page.replicas]
        return pb.ListResponse(
            memories=[memory_to_proto(r, own) for r in records],
            next_page_token=page.next_token,
        )

    def Backup(self, request: pb.BackupRequest, context: Any) -> Iterator[pb.BackupChunk]:
        """Snapshot into a temporary directory, then stream its files and manifest."""
        import tempfile
        from pathlib import Path

        with tempfile.TemporaryDirectory(prefix="memnode-backup-") as tmp:
            out = Path(tmp)
            # a failure aborts the call with its status code (rpc) and ends the stream
            manifest = rpc(lambda s, req, ctx: s.node.backup(out))(self, request, context)
            for name in sorted(manifest["files"]):
                with (out / name).open("rb") as f:
                    while data := f.read(BACKUP_CHUNK):
                        yield pb.BackupChunk(file=name, data=data)
            yield pb.BackupChunk(manifest=(out / "manifest.json").read_bytes())

    def Watch(self, request: pb.WatchRequest, context: Any) -> Iterator[pb.Change]:
        """Open (a refusal aborts with its status), then stream until closed."""
        def Watch(s: MemoryServicer, req: pb.WatchRequest, ctx: Any) -> Any:
            if s.feed is None:
                raise Unavailable("this server does not serve Watch")
            return s.feed.open(dict(req.from_version_vector), mesh=req.scope == pb.MESH)

        watcher = rpc(Watch)(self, request, context)
        context.add_callback(watcher.close)
        try:
            for change in watcher:
                yield change_to_proto(change)
        except MemnodeError as exc:
            self.node.metrics.errors.labels(kind=exc.kind).inc()
            context.abort(STATUS.get(type(exc), grpc.StatusCode.INTERNAL), str(exc))
        finally:
            watcher.close()

    @rpc
    def Status(self, request: pb.StatusRequest, context: Any) -> pb.StatusResponse:
        node = self.node
        model = node.model
        return pb.StatusResponse(
            node_id=node.node_id,
            model=model_to_proto(model),
            memories=pb.MemoryCounts(local=node.visible.count_local(),
                                     replicated=node.visible.count_replicas(),
                                     ephemeral=node.ephemeral.count()),
            version_vector=node.version_vector(),
            peers=self._peers(),
            version=__version__,
            uptime_seconds=node.uptime_seconds(),
            data_dir=str(node.data_dir),
            problems=self._problems(),
            lost_texts=node.restore.lost_texts(),
        )
