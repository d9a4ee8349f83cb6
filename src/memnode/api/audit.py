"""The audit trail of client access: one gRPC server interceptor, outermost, so it sees
every MemoryService call, including the ones authentication refuses.

One entry per call (per answered batch for RememberStream), appended to the node's
:class:`~memnode.storage.audit_writer.AuditWriter` after the call is answered:

- who: ``who`` is ``token:<id>`` for a token signed by this node (its ``name``, if it
  has one, in ``token_name``), else the peer address; ``peer`` always
  (``ipv4:127.0.0.1:50112``).
- when: ``ts``, the node's clock in ms at the start of the call.
- what: ``method``, ``code`` (the gRPC status name), ``ids`` (memory ids the call named
  or returned, at most ``MAX_IDS``; ``ids_truncated`` when more), ``count`` (memories
  stored, found, listed), and per method: ``scope``, ``k``, ``keys`` (metadata keys an
  update set or removed; recall filter keys as ``where_keys``), ``admin`` (``export``:
  a List of the whole mesh; ``backup``), ``bytes``.
- why: ``reason``, the ``x-memnode-reason`` metadata the client sent (percent-encoded
  UTF-8, at most ``MAX_REASON`` characters), if any.

Never logged: texts, queries, metadata values, tokens. Health and reflection calls are
not logged (probes). The entry's ``code`` says whether the call was served.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from typing import Any
from urllib.parse import unquote

import grpc

from memnode._version import __version__
from memnode.api.auth import OPEN_PREFIXES, TokenAuthInterceptor, TokenVerifier, bearer
from memnode.client import REASON_KEY
from memnode.node.health import is_disk_full
from memnode.node.node import Node
from memnode.storage.audit_format import AUDIT_DIR, Entry
from memnode.storage.audit_writer import AuditHooks, AuditPolicy, AuditWriter
from memnode.v1 import memnode_pb2 as pb

log = logging.getLogger("memnode.audit")

MAX_REASON = 256
MAX_IDS = 1000
MAX_ID_CHARS = 200


def reason_of(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == REASON_KEY and isinstance(value, str):
            text = unquote(value, errors="replace")
            return "".join(c for c in text if c.isprintable())[:MAX_REASON]
    return ""


def _ids(values: Any) -> dict[str, Any]:
    ids = [str(v)[:MAX_ID_CHARS] for v in values]
    out: dict[str, Any] = {"ids": ids[:MAX_IDS]}
    if len(ids) > MAX_IDS:
        out["ids_truncated"] = True
    return out


def what(method: str, request: Any, response: Any) -> dict[str, Any]:
    """What a call touched: ids, counts, scope; never text, query or metadata values."""
    out: dict[str, Any] = {}
    if method == "Forget" and getattr(request, "where", None):  # erasure by subject
        out["where_keys"] = sorted(request.where)
        if response is not None:
            out["count"] = response.forgotten
    elif method in ("Get", "Update", "Forget") and hasattr(request, "id"):
        out.update(_ids([request.id]))
        if method == "Update":
            out["keys"] = sorted({*request.metadata, *request.remove_keys})
    elif method == "Remember" and response is not None:
        out.update(_ids([response.id]), count=1)
    elif method in ("RememberBatch", "RememberStream") and response is not None:
        out.update(_ids(r.id for r in response.results), count=len(response.results))
    elif method == "Recall" and hasattr(request, "k"):
        out.update(k=request.k, scope=pb.Scope.Name(request.scope).lower())
        if request.where:
            out["where_keys"] = sorted(request.where)
        if response is not None:
            out.update(_ids(h.id for h in response.hits), count=len(response.hits))
    elif method == "List" and hasattr(request, "scope"):
        out["scope"] = pb.Scope.Name(request.scope).lower()
        if request.where:
            out["where_keys"] = sorted(request.where)
        if request.scope == pb.MESH:
            out["admin"] = "export"
        if response is not None:
            out.update(_ids(m.id for m in response.memories), count=len(response.memories))
    elif method == "Watch" and hasattr(request, "scope"):
        out["scope"] = pb.Scope.Name(request.scope).lower()
        out["from_origins"] = len(request.from_version_vector)
        if request.scope == pb.MESH:
            out["admin"] = "export"  # the live form of export --scope mesh
    elif method == "Backup":
        out["admin"] = "backup"
    return out


def _code(context: grpc.ServicerContext, default: grpc.StatusCode) -> str:
    code = context.code()
    return (code if isinstance(code, grpc.StatusCode) else default).name


def _failure(context: grpc.ServicerContext, exc: BaseException) -> str:
    """The status of a call that raised: the code it was aborted with, CANCELLED for a
    stream the client left, else UNKNOWN (what gRPC answers)."""
    if isinstance(exc, GeneratorExit):
        return grpc.StatusCode.CANCELLED.name
    return _code(context, grpc.StatusCode.UNKNOWN)


class AuditInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, writer: AuditWriter, clock_ms: Callable[[], int],
                 verifier: TokenVerifier | None = None) -> None:
        self.writer = writer
        self.clock_ms = clock_ms
        self.verifier = verifier
        self._names: dict[str, str] = {}
        self._names_mutex = threading.Lock()

    def _token_name(self, token_id: str) -> str:
        with self._names_mutex:
            name = self._names.get(token_id)
        if name is None and self.verifier is not None:
            try:
                records = {r.id: r.name for r in self.verifier.store.records()}
            except Exception:  # the list unreadable: the id still names the caller
                records = {}
            name = records.get(token_id, "")
            with self._names_mutex:
                if len(self._names) > 4096:
                    self._names.clear()
                self._names[token_id] = name
        return name or ""

    def _who(self, metadata: Any) -> dict[str, str]:
        if self.verifier is None:
            return {}
        token = bearer(metadata)
        claims = self.verifier.signed(token) if token else None
        if claims is None:
            return {}
        who = {"who": f"token:{claims.token_id}"}
        name = self._token_name(claims.token_id)
        if name:
            who["token_name"] = name[:MAX_REASON]
        return who

    def _record(self, base: Entry, context: grpc.ServicerContext, code: str,
                method: str, request: Any, response: Any, **extra: Any) -> None:
        entry = {**base, "code": code, **extra}
        peer = context.peer()
        entry["peer"] = peer
        entry.setdefault("who", peer)
        try:
            entry.update(what(method, request, response))
        except Exception:  # an odd request must not fail the call it describes
            log.debug("cannot describe %s", method, exc_info=True)
        self.writer.record(entry)

    def intercept_service(self, continuation: Callable[[Any], Any],
                          details: grpc.HandlerCallDetails) -> Any:
        path: str = details.method
        handler = continuation(details)
        if handler is None or path.startswith(OPEN_PREFIXES):
            return handler
        method = path.rpartition("/")[2]
        metadata = details.invocation_metadata

        def base() -> Entry:
            entry: Entry = {"ts": self.clock_ms(), "method": method, **self._who(metadata)}
            reason = reason_of(metadata)
            if reason:
                entry["reason"] = reason
            return entry

        kwargs = {"request_deserializer": handler.request_deserializer,
                  "response_serializer": handler.response_serializer}
        def once(inner: Callable[[Any, grpc.ServicerContext], Any], unary: bool
                 ) -> Callable[[Any, grpc.ServicerContext], Any]:
            """A call answered once (unary or client-streaming): one entry after it."""
            def call(arg: Any, context: grpc.ServicerContext) -> Any:
                entry, request = base(), (arg if unary else None)
                try:
                    response = inner(arg, context)
                except BaseException as exc:
                    self._record(entry, context, _failure(context, exc),
                                 method, request, None)
                    raise
                self._record(entry, context, _code(context, grpc.StatusCode.OK), method,
                             request, response)
                return response

            return call

        if handler.unary_unary is not None:
            return grpc.unary_unary_rpc_method_handler(once(handler.unary_unary, True),
                                                       **kwargs)
        if handler.unary_stream is not None:
            inner_stream = handler.unary_stream

            def unary_stream(request: Any, context: grpc.ServicerContext) -> Iterator[Any]:
                entry, sent, chunks = base(), 0, 0
                try:
                    for response in inner_stream(request, context):
                        sent += response.ByteSize()
                        chunks += 1
                        yield response
                except BaseException as exc:
                    self._record(entry, context, _failure(context, exc),
                                 method, request, None, bytes=sent, chunks=chunks)
                    raise
                self._record(entry, context, _code(context, grpc.StatusCode.OK), method,
                             request, None, bytes=sent, chunks=chunks)

            return grpc.unary_stream_rpc_method_handler(unary_stream, **kwargs)
        if handler.stream_stream is not None:
            inner_streams = handler.stream_stream

            def streams(requests: Iterator[Any], context: grpc.ServicerContext
                        ) -> Iterator[Any]:
                entry = base()
                try:
                    for response in inner_streams(requests, context):
                        self._record(entry, context, "OK", method, None, response)
                        entry = {**entry, "ts": self.clock_ms()}
                        yield response
                except BaseException as exc:
                    self._record(entry, context, _failure(context, exc),
                                 method, None, None)
                    raise

            return grpc.stream_stream_rpc_method_handler(streams, **kwargs)
        return grpc.stream_unary_rpc_method_handler(once(handler.stream_unary, False),
                                                    **kwargs)


def open_audit(node: Node, interceptors: list[grpc.ServerInterceptor]
               ) -> AuditInterceptor | None:
    """The node's audit writer (in ``<data_dir>/audit``, policy from its config) behind
    its interceptor, naming callers by the token verifier among ``interceptors``;
    failures and drops counted in the node's metrics. None with ``--no-audit``."""
    cfg, metrics = node.config, node.metrics
    if not cfg.audit:
        return None
    policy = AuditPolicy(max_bytes=cfg.audit_max_bytes, max_days=cfg.audit_max_days,
                         fsync_seconds=cfg.audit_fsync_seconds)
    hooks = AuditHooks(
        written=lambda n: metrics.audit_entries.inc(n),
        failed=lambda exc: metrics.audit_write_failures.labels(
            kind="disk_full" if is_disk_full(exc) else "io").inc(),
        dropped=lambda n: metrics.audit_dropped.inc(n),
    )
    writer = AuditWriter(node.data_dir / AUDIT_DIR, node.now_ms, policy, hooks)
    writer.record({"ts": node.now_ms(), "method": "audit.start", "node_id": node.node_id,
                   "version": __version__})
    verifier = next((i.verifier for i in interceptors
                     if isinstance(i, TokenAuthInterceptor)), None)
    return AuditInterceptor(writer, node.now_ms, verifier)
