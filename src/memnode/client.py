"""A typed Python client of a memnode node.

    from memnode import Client
    with Client("127.0.0.1:7420") as c:
        mid = c.remember("the deploy key rotates on Fridays", metadata={"team": "ops"})
        for hit in c.recall("when do keys rotate?", scope="mesh"):
            print(hit.score, hit.id, hit.text)

Imports only grpc and protobuf (no Chroma, no model): fast from a cold shell.
gRPC errors are raised as the MemnodeError subclasses of :mod:`memnode.errors`.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import quote

import grpc

from federation.v1 import types_pb2
from memnode.errors import (
    FailedPrecondition,
    InvalidArgument,
    MemnodeError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
    UsageError,
)
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc
from memnode.values import MetaValue, meta_from_proto, meta_to_proto
from memnode.watch import Watch, version_vector

DEFAULT_PORT = 7420
ADDR_ENV = "MEMNODE_ADDR"
TOKEN_ENV = "MEMNODE_TOKEN"
TLS_CA_ENV = "MEMNODE_TLS_CA"
REASON_ENV = "MEMNODE_REASON"
REASON_KEY = "x-memnode-reason"
PrivacyName = Literal["ephemeral", "private", "team", "public"]
ScopeName = Literal["local", "mesh"]

_ERRORS: dict[grpc.StatusCode, type[MemnodeError]] = {
    grpc.StatusCode.INVALID_ARGUMENT: InvalidArgument,
    grpc.StatusCode.NOT_FOUND: NotFound,
    grpc.StatusCode.FAILED_PRECONDITION: FailedPrecondition,
    grpc.StatusCode.RESOURCE_EXHAUSTED: ResourceExhausted,
    grpc.StatusCode.UNAVAILABLE: Unavailable,
    grpc.StatusCode.DEADLINE_EXCEEDED: Unavailable,
    grpc.StatusCode.UNAUTHENTICATED: Unauthenticated,
    grpc.StatusCode.PERMISSION_DENIED: PermissionDenied,
}


def default_addr() -> str:
    return os.environ.get(ADDR_ENV) or f"127.0.0.1:{DEFAULT_PORT}"


def _privacy_name(value: int) -> str:
    return pb.Privacy.Name(value).lower() if value in pb.Privacy.values() else str(value)


def _privacy_value(name: str) -> int:
    try:
        return int(pb.Privacy.Value(name.upper()))
    except ValueError:
        raise InvalidArgument(
            f"unknown privacy level {name!r} (ephemeral, private, team, public)"
        ) from None


@dataclass(frozen=True)
class Hit:
    id: str
    origin: str
    score: float
    text: str  # empty for other nodes' memories: their text never travels
    metadata: dict[str, MetaValue]
    privacy: str
    local: bool
    created_at_ms: int


@dataclass(frozen=True)
class Memory:
    id: str
    origin: str
    text: str
    metadata: dict[str, MetaValue]
    privacy: str
    local: bool
    created_at_ms: int
    updated_at_ms: int
    expires_at_ms: int = 0


@dataclass(frozen=True)
class Status:
    node_id: str
    model: dict[str, Any]
    memories: dict[str, int]
    version_vector: dict[str, int]
    peers: list[dict[str, Any]]
    version: str
    uptime_seconds: float
    data_dir: str
    problems: list[str] = field(default_factory=list)  # why not ready; empty when ready
    lost_texts: int = 0  # own memories taken back after a restore without their text

    def to_json(self) -> dict[str, Any]:
        return {
            "node_id": self.node_id, "model": self.model, "memories": self.memories,
            "version_vector": self.version_vector, "peers": self.peers,
            "version": self.version, "uptime_seconds": round(self.uptime_seconds, 3),
            "data_dir": self.data_dir, "problems": self.problems,
            "lost_texts": self.lost_texts,
        }


@dataclass
class NewMemory:
    """One item for :meth:`Client.remember_batches`."""

    text: str | bytes
    metadata: Mapping[str, Any] = field(default_factory=dict)
    privacy: str = "team"
    keep_pii: bool = False
    ttl_seconds: int = 0
    embedding: bytes = b""  # optional: float32 little-endian, the node's model dimension
    embedding_model: Mapping[str, Any] | None = None
    """The model ``embedding`` came from, as ``status().model`` gives it (``name``,
    ``dim``, ``fingerprint``): required for team and public, and it must be the node's."""


def _model_proto(model: Mapping[str, Any] | Any) -> types_pb2.ModelIdentity:
    """A ``federation.v1.ModelIdentity`` from a mapping or an object with name, dim and
    fingerprint."""
    get = model.get if isinstance(model, Mapping) else (lambda k: getattr(model, k, None))
    try:
        return types_pb2.ModelIdentity(name=str(get("name") or ""), dim=int(get("dim") or 0),
                                       fingerprint=str(get("fingerprint") or ""))
    except (TypeError, ValueError):
        raise InvalidArgument(f"embedding_model is not a model identity: {model!r}") from None


def _memory(msg: pb.Memory) -> Memory:
    return Memory(
        id=msg.id, origin=msg.origin, text=msg.text, metadata=meta_from_proto(msg.metadata),
        privacy=_privacy_name(msg.privacy), local=msg.local, created_at_ms=msg.created_at_ms,
        updated_at_ms=msg.updated_at_ms, expires_at_ms=msg.expires_at_ms,
    )


def _text(text: str | bytes) -> str:
    """The text as the wire carries it (a protobuf string): refused here, with the
    message the node gives, when it is not valid UTF-8."""
    try:
        if isinstance(text, bytes):
            return text.decode("utf-8")
        text.encode("utf-8")
        return text
    except (UnicodeDecodeError, UnicodeEncodeError) as exc:
        raise InvalidArgument(f"text is not valid UTF-8 (byte {exc.start})") from None


def _request(item: NewMemory, embedding: bytes = b"",
             embedding_model: Mapping[str, Any] | None = None) -> pb.RememberRequest:
    embedding = embedding or item.embedding
    embedding_model = embedding_model or item.embedding_model
    text = _text(item.text)
    req = pb.RememberRequest(
        text=text, privacy=_privacy_value(item.privacy), keep_pii=item.keep_pii,  # type: ignore[arg-type]
        ttl_seconds=item.ttl_seconds, embedding=embedding,
    )
    meta_to_proto(item.metadata, req.metadata)
    if embedding_model is not None:
        req.embedding_model.CopyFrom(_model_proto(embedding_model))
    return req


class Client:
    """A connection to one node.

    ``token``: a bearer token of that node (``memnode token issue``), sent as
    ``authorization: Bearer ...`` on every call; default ``$MEMNODE_TOKEN``.
    ``tls_ca``: a PEM file of the CA that signed the node's client-API certificate
    (``--tls-cert``): the channel is then TLS; default ``$MEMNODE_TLS_CA``, else plaintext.
    ``reason``: why these calls are made ("ticket 4711"), written with each call into the
    node's audit trail (``x-memnode-reason`` metadata); default ``$MEMNODE_REASON``.
    """

    def __init__(self, addr: str | None = None, *, timeout: float = 30.0,
                 channel: grpc.Channel | None = None, token: str | None = None,
                 tls_ca: str | os.PathLike[str] | None = None,
                 reason: str | None = None) -> None:
        self.addr = addr or default_addr()
        self.timeout = timeout
        token = os.environ.get(TOKEN_ENV) if token is None else token
        tls_ca = (os.environ.get(TLS_CA_ENV) or None) if tls_ca is None else tls_ca
        reason = os.environ.get(REASON_ENV) if reason is None else reason
        self._metadata: tuple[tuple[str, str], ...] = (
            (("authorization", f"Bearer {token.strip()}"),) if token else ())
        if reason:
            self._metadata += ((REASON_KEY, quote(reason, safe=" ")),)
        self.tls = tls_ca is not None
        options = [("grpc.max_receive_message_length", 64 * 1024 * 1024),
                   ("grpc.max_send_message_length", 64 * 1024 * 1024)]
        if channel is not None:
            self._channel = channel
        elif tls_ca is not None:
            try:
                with open(tls_ca, "rb") as f:
                    ca_pem = f.read()
            except OSError as exc:
                raise UsageError(f"cannot read the TLS CA file {tls_ca}: {exc}") from None
            self._channel = grpc.secure_channel(
                self.addr, grpc.ssl_channel_credentials(root_certificates=ca_pem), options)
        else:
            self._channel = grpc.insecure_channel(self.addr, options=options)
        self._stub = pb_grpc.MemoryServiceStub(self._channel)

    def __enter__(self) -> Client:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._channel.close()

    def _call(self, method: str, request: Any) -> Any:
        try:
            return getattr(self._stub, method)(request, timeout=self.timeout,
                                               metadata=self._metadata)
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    def _error(self, exc: grpc.RpcError) -> MemnodeError:
        code = exc.code()  # type: ignore[attr-defined]
        details = exc.details()  # type: ignore[attr-defined]
        if code == grpc.StatusCode.UNAVAILABLE:
            hint = ("; if it serves TLS, pass --tls-ca / MEMNODE_TLS_CA" if not self.tls else
                    "; is it serving TLS with a certificate of that CA for this address?")
            details = f"cannot reach memnode at {self.addr} ({details}{hint})"
        return _ERRORS.get(code, MemnodeError)(details or str(code))

    def remember(self, text: str | bytes, metadata: Mapping[str, Any] | None = None, *,
                 privacy: str = "team", keep_pii: bool = False, ttl_seconds: int = 0,
                 embedding: bytes = b"", embedding_model: Mapping[str, Any] | None = None
                 ) -> str:
        """Store one memory; returns its id once it is durable. With ``embedding`` (a
        float32 vector the caller computed), ``embedding_model`` names the model it came
        from (``status().model``); team and public memories require it."""
        item = NewMemory(text, metadata or {}, privacy, keep_pii, ttl_seconds)
        response = self._call("Remember", _request(item, embedding, embedding_model))
        return str(response.id)

    def remember_batch(self, items: Iterable[NewMemory]) -> list[str]:
        """Store a batch atomically (all or none); ids in order."""
        req = pb.RememberBatchRequest(items=[_request(i) for i in items])
        return [r.id for r in self._call("RememberBatch", req).results]

    def remember_batches(self, batches: Iterable[list[NewMemory]]) -> Iterator[list[str]]:
        """Stream batches; yields each batch's ids once that batch is durable."""
        requests = (pb.RememberBatchRequest(items=[_request(i) for i in b]) for b in batches)
        try:
            for response in self._stub.RememberStream(requests, timeout=None,
                                                      metadata=self._metadata):
                yield [r.id for r in response.results]
        except grpc.RpcError as exc:
            raise self._error(exc) from exc

    def recall(self, query: str, k: int = 10, *, scope: str = "local",
               where: Mapping[str, Any] | None = None, embedding: bytes = b"") -> list[Hit]:
        """The ``k`` nearest memories to ``query`` (or to ``embedding``, a float32
        little-endian vector of the node's model dimension, when given)."""
        scopes = {"local": pb.LOCAL, "mesh": pb.MESH}
        if scope not in scopes:
            raise InvalidArgument(f"unknown scope {scope!r} (local, mesh)")
        req = pb.RecallRequest(query=query, k=k, scope=scopes[scope], embedding=embedding)
        meta_to_proto(where or {}, req.where)
        response = self._call("Recall", req)
        return [
            Hit(id=h.id, origin=h.origin, score=h.score, text=h.text,
                metadata=meta_from_proto(h.metadata), privacy=_privacy_name(h.privacy),
                local=h.local, created_at_ms=h.created_at_ms)
            for h in response.hits
        ]

    def get(self, memory_id: str) -> Memory:
        return _memory(self._call("Get", pb.GetRequest(id=memory_id)))

    def update(self, memory_id: str, metadata: Mapping[str, Any],
               remove_keys: Iterable[str] = ()) -> Memory:
        req = pb.UpdateRequest(id=memory_id, remove_keys=list(remove_keys))
        meta_to_proto(metadata, req.metadata)
        return _memory(self._call("Update", req))

    def forget(self, memory_id: str = "", *, where: Mapping[str, Any] | None = None) -> int:
        """Forget one memory by id, or (``where``) every own memory whose metadata equals
        it, in one durable batch (erasure by subject). Returns how many were forgotten.
        Give one of the two: the node refuses an empty request (InvalidArgument)."""
        req = pb.ForgetRequest(id=memory_id)
        meta_to_proto(where or {}, req.where)
        return int(self._call("Forget", req).forgotten)

    def backup(self, out_dir: str | os.PathLike[str],
               progress: Callable[[int], None] | None = None) -> dict[str, Any]:
        """Write an online, consistent backup of the node into ``out_dir`` (created; it
        must be empty). Returns its manifest. ``progress`` gets each chunk's size. The
        backup holds the node's private key: keep it as secret as the node's disk."""
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        if any(out.iterdir()):
            raise InvalidArgument(f"{out} is not empty")
        files: dict[str, Any] = {}
        manifest = b""
        try:
            for chunk in self._stub.Backup(pb.BackupRequest(), timeout=None,
                                            metadata=self._metadata):
                if chunk.manifest:
                    manifest = chunk.manifest
                    continue
                f = files.get(chunk.file)
                if f is None:
                    name = Path(chunk.file).name
                    if name != chunk.file or name.startswith("."):
                        raise MemnodeError(f"backup stream names a bad file {chunk.file!r}")
                    f = files[chunk.file] = open(out / name, "wb")  # noqa: SIM115
                    os.chmod(out / name, 0o600)
                f.write(chunk.data)
                if progress is not None:
                    progress(len(chunk.data))
        except grpc.RpcError as exc:
            raise self._error(exc) from exc
        finally:
            for f in files.values():
                f.close()
        if not manifest:
            raise MemnodeError("the backup stream ended before its manifest")
        (out / "manifest.json").write_bytes(manifest)
        parsed: dict[str, Any] = json.loads(manifest)
        return parsed

    def list(self, *, scope: str = "local", page_size: int = 500,
             where: Mapping[str, Any] | None = None) -> Iterator[Memory]:
        """Every memory (own ones; with scope="mesh" replicas too), paging as it goes;
        with ``where``, only those whose metadata equals it (as in recall)."""
        token = ""
        scope_value = pb.MESH if scope == "mesh" else pb.LOCAL
        while True:
            req = pb.ListRequest(page_size=page_size, page_token=token, scope=scope_value)
            meta_to_proto(where or {}, req.where)
            page = self._call("List", req)
            for msg in page.memories:
                yield _memory(msg)
            token = page.next_page_token
            if not token:
                return

    def watch(self, *, scope: str = "local",
              from_version_vector: Mapping[str, int] | None = None) -> Watch:
        """Follow the node's memory stream (memnode.watch): the changes after
        ``from_version_vector`` (all retained ones if empty), then new ones as they come.
        Close it (or use it as a context manager) to end the call."""
        start = version_vector(from_version_vector)
        scopes = {"local": pb.LOCAL, "mesh": pb.MESH}
        if scope not in scopes:
            raise InvalidArgument(f"unknown scope {scope!r} (local, mesh)")
        req = pb.WatchRequest(scope=scopes[scope], from_version_vector=start)
        call = self._stub.Watch(req, timeout=None, metadata=self._metadata)
        return Watch(call, start, _memory, self._error)

    def status(self) -> Status:
        s = self._call("Status", pb.StatusRequest())
        return Status(
            node_id=s.node_id,
            model={"name": s.model.name, "dim": s.model.dim, "fingerprint": s.model.fingerprint},
            memories={"local": s.memories.local, "replicated": s.memories.replicated,
                      "ephemeral": s.memories.ephemeral},
            version_vector=dict(s.version_vector),
            peers=[{"node_id": p.node_id, "address": p.address, "state": p.state,
                    "events_behind": p.events_behind, "found_by": p.found_by}
                   for p in s.peers],
            version=s.version, uptime_seconds=s.uptime_seconds, data_dir=s.data_dir,
            problems=list(s.problems), lost_texts=s.lost_texts,
        )
