"""Client authentication on the gRPC API: a server interceptor that checks bearer tokens.

Every MemoryService call carries ``authorization: Bearer <token>`` metadata. The token
is decoded and its signature checked (:mod:`memnode.node.tokens`), then the token list
is asked whether it is still live (:class:`TokenStore`, one ``stat`` per call) and its
expiry is compared with the node's clock; last, the method's scope (``SCOPES``). No or
a bad token: UNAUTHENTICATED; a good token without the scope: PERMISSION_DENIED. Health
and reflection stay open (probes, ``grpcurl list``). A method not in ``SCOPES`` needs
``admin``.

Caching: only what cannot change is cached, the decoded claims of a token whose
signature verified (bounded; only tokens made with this node's key get in). Revocation
and expiry are decided on every call.

Each refusal counts in ``memnode_auth_refused_total{reason}`` and in
``memnode_requests_total{method, code}``; the first refusal of each reason is logged
as a warning, later ones at debug level. Tokens are never logged.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable
from typing import Any

import grpc

from memnode.errors import MemnodeError
from memnode.node.metrics import NodeMetrics
from memnode.node.tokens import Claims, ScopeError, TokenError, check_live, decode
from memnode.storage.tokenstore import TokenStore
from memnode.v1 import memnode_pb2 as pb

log = logging.getLogger("memnode.auth")

SERVICE = "/memnode.v1.MemoryService/"
OPEN_PREFIXES = ("/grpc.health.v1.Health/", "/grpc.reflection.")
SCOPES: dict[str, str] = {
    "Recall": "read", "Get": "read", "List": "read", "Status": "read", "Watch": "read",
    "Remember": "write", "RememberBatch": "write", "RememberStream": "write",
    "Update": "write", "Forget": "write",
}
#: List and Watch with scope MESH go through every memory the node holds, own and
#: replicated: the export of everything, so they need ``admin`` (own memories: ``read``).
LIST_MESH_SCOPE = "admin"
MESH_GUARDED = ("List", "Watch")
CACHE_SIZE = 1024


class TokenVerifier:
    """Claims of a live token of this node, or :class:`TokenError`."""

    def __init__(self, store: TokenStore, clock_ms: Callable[[], int]) -> None:
        self.store = store
        self.key = store.key(create=True)
        self._clock_ms = clock_ms
        self._cache: OrderedDict[str, Claims] = OrderedDict()
        self._mutex = threading.Lock()

    def verify(self, token: str) -> Claims:
        with self._mutex:
            claims = self._cache.get(token)
            if claims is not None:
                self._cache.move_to_end(token)
        if claims is None:
            claims = decode(token, self.key)
            with self._mutex:
                self._cache[token] = claims
                if len(self._cache) > CACHE_SIZE:
                    self._cache.popitem(last=False)
        check_live(claims, self.store.revoked_ms(claims.token_id), self._clock_ms())
        return claims

    def signed(self, token: str) -> Claims | None:
        """The claims of a token signed by this node's key, without the checks of
        liveness and scope (the audit names the caller with it); None if it is not."""
        with self._mutex:
            claims = self._cache.get(token)
        if claims is None:
            try:
                claims = decode(token, self.key)
            except TokenError:
                return None
        return claims


def bearer(metadata: Any) -> str:
    for key, value in metadata or ():
        if key == "authorization" and isinstance(value, str):
            scheme, _, token = value.strip().partition(" ")
            return token.strip() if scheme.lower() == "bearer" else value
    return ""


def _refusing(handler: grpc.RpcMethodHandler, code: grpc.StatusCode,
              message: str) -> grpc.RpcMethodHandler:
    """A handler of the same shape as ``handler`` that only aborts."""

    def abort(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)

    def abort_stream(request: Any, context: grpc.ServicerContext) -> Any:
        context.abort(code, message)
        yield  # a generator, as a streaming response must be

    kwargs = {"request_deserializer": handler.request_deserializer,
              "response_serializer": handler.response_serializer}
    if handler.request_streaming and handler.response_streaming:
        return grpc.stream_stream_rpc_method_handler(abort_stream, **kwargs)
    if handler.request_streaming:
        return grpc.stream_unary_rpc_method_handler(abort, **kwargs)
    if handler.response_streaming:
        return grpc.unary_stream_rpc_method_handler(abort_stream, **kwargs)
    return grpc.unary_unary_rpc_method_handler(abort, **kwargs)


class TokenAuthInterceptor(grpc.ServerInterceptor):  # type: ignore[misc]
    def __init__(self, verifier: TokenVerifier, metrics: NodeMetrics) -> None:
        self.verifier = verifier
        self.metrics = metrics
        self._logged: set[str] = set()
        self._log_mutex = threading.Lock()

    def _refuse(self, handler: grpc.RpcMethodHandler, method: str,
                error: TokenError | ScopeError) -> grpc.RpcMethodHandler:
        code = (grpc.StatusCode.PERMISSION_DENIED if isinstance(error, ScopeError)
                else grpc.StatusCode.UNAUTHENTICATED)
        self._count(method, error.reason, code, str(error))
        return _refusing(handler, code, str(error))

    def _count(self, method: str, reason: str, code: grpc.StatusCode, message: str) -> None:
        self.metrics.auth_refused.labels(reason=reason).inc()
        self.metrics.requests.labels(method=method, code=code.name).inc()
        with self._log_mutex:
            first = reason not in self._logged
            self._logged.add(reason)
        log.log(logging.WARNING if first else logging.DEBUG, "refused %s (%s): %s%s",
                method, reason, message, " (further refusals of this kind: debug)"
                if first else "")

    def intercept_service(self, continuation: Callable[[Any], Any],
                          details: grpc.HandlerCallDetails) -> Any:
        path: str = details.method
        if path.startswith(OPEN_PREFIXES):
            return continuation(details)
        handler = continuation(details)
        if handler is None:  # UNIMPLEMENTED, as without authentication
            return None
        method = path.rpartition("/")[2] if path.startswith(SERVICE) else path
        needed = SCOPES.get(method, "admin") if path.startswith(SERVICE) else "admin"
        try:
            claims = self.verifier.verify(bearer(details.invocation_metadata))
            claims.require(needed, method)
        except (TokenError, ScopeError) as exc:
            return self._refuse(handler, method, exc)
        except MemnodeError as exc:  # the token list became unreadable: refuse, loudly
            log.error("cannot check tokens: %s", exc)
            return _refusing(handler, grpc.StatusCode.UNAVAILABLE,
                             "the node cannot check tokens now; see its log")
        if method in MESH_GUARDED:
            return self._mesh_guard(handler, claims, method)
        return handler

    def _mesh_guard(self, handler: grpc.RpcMethodHandler, claims: Claims,
                    method: str) -> grpc.RpcMethodHandler:
        streaming = handler.response_streaming
        inner = handler.unary_stream if streaming else handler.unary_unary

        def guarded(request: Any, context: grpc.ServicerContext) -> Any:
            if getattr(request, "scope", None) == pb.MESH:
                try:
                    claims.require(LIST_MESH_SCOPE, f"{method} of every memory (scope mesh)")
                except ScopeError as exc:
                    self._count(method, exc.reason, grpc.StatusCode.PERMISSION_DENIED,
                                str(exc))
                    context.abort(grpc.StatusCode.PERMISSION_DENIED, str(exc))
            return inner(request, context)

        make = (grpc.unary_stream_rpc_method_handler if streaming
                else grpc.unary_unary_rpc_method_handler)
        return make(guarded, request_deserializer=handler.request_deserializer,
                    response_serializer=handler.response_serializer)
