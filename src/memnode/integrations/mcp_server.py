"""An MCP server over one memnode node: its memories as tools an agent can call.

    python -m memnode.integrations.mcp_server [--addr ADDR] [--token T] [--http HOST:PORT]

Built on the official ``mcp`` SDK (``MCPServer``). It speaks MCP over stdio by default
(an agent starts it as a subprocess) or streamable HTTP with ``--http`` (endpoint
``/mcp``; port 0 picks a free port, and a JSON ready line on stdout names the URL).
It is a thin client: it talks to a running ``memnode serve`` over gRPC with
:class:`memnode.Client`, holds no state and loads no model.

Tools: ``remember``, ``recall``, ``get``, ``forget``, ``status``. A failure (the node
is down, no such memory, a bad argument, a refused forget) comes back as an MCP tool
error (``isError``) whose text says what happened and what to do; the server keeps
answering. Hits of other nodes' memories carry no text: it never leaves its origin
node, and the hit names that node.

``--token`` / ``MEMNODE_TOKEN`` is the bearer token the server sends to the node (a
node with ``--client-auth token`` needs one; issue it with ``memnode token issue
--scope read,write``), and ``--tls-ca`` / ``MEMNODE_TLS_CA`` the CA of a node serving TLS.
Streamable HTTP has no authentication of its own here, so ``--http`` binds off
loopback only with ``--allow-unauthenticated``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import socket
import sys
from collections.abc import Callable, Iterator
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from memnode import Client, Hit, Memory
from memnode.config import is_loopback, split_hostport
from memnode.errors import (
    FailedPrecondition,
    InvalidArgument,
    MemnodeError,
    NotFound,
    PermissionDenied,
    ResourceExhausted,
    Unauthenticated,
    Unavailable,
)

log = logging.getLogger("memnode.mcp")

TOKEN_ENV = "MEMNODE_TOKEN"
TLS_CA_ENV = "MEMNODE_TLS_CA"
ADDR_ENV = "MEMNODE_ADDR"
DEFAULT_ADDR = "127.0.0.1:7420"
MAX_K = 100

MetaValue = bool | int | float | str
Privacy = Literal["team", "public", "private", "ephemeral"]
Scope = Literal["local", "mesh"]

INSTRUCTIONS = (
    "memnode is this agent's long-term memory, shared with a mesh of peer nodes. "
    "Call `remember` to store a fact worth keeping, `recall` before answering to find "
    "what is already known (scope 'mesh' also searches other nodes' memories, whose text "
    "stays on their origin node), `get` to read one memory by id, `forget` to erase one "
    "of this node's memories, `status` to see the node and its peers."
)


# -- results ---------------------------------------------------------------------------


class RememberResult(BaseModel):
    id: str = Field(description="The new memory's id (<origin node id>/<suffix>).")
    privacy: Privacy
    replicated: bool = Field(description="True if its embedding and metadata go to peers.")


class HitResult(BaseModel):
    id: str
    score: float = Field(description="Cosine similarity in [-1, 1]; higher is closer.")
    origin: str = Field(description="Id of the node that wrote the memory.")
    local: bool = Field(description="True if the memory was written on this node.")
    privacy: str
    text: str | None = Field(description="The text; null for other nodes' memories.")
    text_location: str = Field(description="Where the text lives.")
    metadata: dict[str, MetaValue] = Field(
        description="Metadata; for another node's 'team' memory, values are keyed hashes.")


class RecallResult(BaseModel):
    scope: Scope
    hits: list[HitResult] = Field(description="Best first.")


class MemoryResult(BaseModel):
    id: str
    origin: str
    local: bool
    privacy: str
    text: str | None = Field(description="The text; null for other nodes' memories.")
    text_location: str
    metadata: dict[str, MetaValue]
    created_at_ms: int
    updated_at_ms: int


class ForgetResult(BaseModel):
    id: str
    forgotten: bool


class StatusResult(BaseModel):
    node_id: str
    version: str
    model: dict[str, Any] = Field(description="Embedding model: name, dim, fingerprint.")
    memories: dict[str, int] = Field(description="Counts: local, replicated, ephemeral.")
    peers: list[dict[str, Any]] = Field(
        description="Each peer: node_id, address, state (alive|suspect|dead), events_behind.")
    version_vector: dict[str, int] = Field(
        description="Per origin node id, the highest event applied here.")
    uptime_seconds: float


def _text_location(origin: str, local: bool) -> str:
    if local:
        return "on this node"
    return (f"only on its origin node {origin}; this node holds its embedding and "
            f"metadata, never its text (ask an agent of node {origin} to read it)")


def _score(value: float) -> float:
    return round(max(-1.0, min(1.0, float(value))), 4)


def _hit(hit: Hit) -> HitResult:
    return HitResult(id=hit.id, score=_score(hit.score), origin=hit.origin, local=hit.local,
                     privacy=hit.privacy, text=hit.text if hit.local else None,
                     text_location=_text_location(hit.origin, hit.local),
                     metadata=dict(hit.metadata))


def _memory(m: Memory) -> MemoryResult:
    return MemoryResult(id=m.id, origin=m.origin, local=m.local, privacy=m.privacy,
                        text=m.text if m.local else None,
                        text_location=_text_location(m.origin, m.local),
                        metadata=dict(m.metadata), created_at_ms=m.created_at_ms,
                        updated_at_ms=m.updated_at_ms)


# -- errors ----------------------------------------------------------------------------

_ADVICE: list[tuple[type[MemnodeError], str, str]] = [
    (Unavailable, "memnode node unavailable",
     "Is `memnode serve` running at that address? Retry once it is up."),
    (NotFound, "not found", "Check the id (as returned by remember or recall)."),
    (InvalidArgument, "invalid argument", "Fix the argument and call again."),
    (FailedPrecondition, "refused", "Only a memory's origin node can change or forget it."),
    (ResourceExhausted, "over a limit", "Send less (a shorter text, fewer items)."),
    (Unauthenticated, "not authenticated",
     "Start the MCP server with a valid --token (or MEMNODE_TOKEN) of this node."),
    (PermissionDenied, "not allowed", "This token lacks the scope; ask for a token with it."),
]


@contextlib.contextmanager
def _tool_errors() -> Iterator[None]:
    """Turn memnode errors into tool errors (isError) a model can read and act on."""
    from mcp.server.mcpserver.exceptions import ToolError

    try:
        yield
    except MemnodeError as exc:
        for kind, label, advice in _ADVICE:
            if isinstance(exc, kind):
                raise ToolError(f"{label}: {exc}. {advice}") from exc
        raise ToolError(f"memnode error: {exc}") from exc


# -- the server ------------------------------------------------------------------------


def build_server(client: Client) -> Any:
    """The MCP server (an ``mcp.server.mcpserver.MCPServer``) whose tools call ``client``.

    Tools are plain functions: the SDK runs them on worker threads, so a slow node never
    blocks the event loop (and other sessions of the HTTP transport).
    """
    from mcp.server.mcpserver import MCPServer
    from mcp.types import ToolAnnotations

    from memnode import __version__

    server: Any = MCPServer("memnode", version=__version__, instructions=INSTRUCTIONS,
                            log_level="WARNING")
    read_only = ToolAnnotations(read_only_hint=True, open_world_hint=False)

    def tool(description: str, annotations: ToolAnnotations | None = None
             ) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
        return server.tool(description=description, annotations=annotations)  # type: ignore[no-any-return]

    @tool("Store a memory on this memnode node; returns its id once it is durable. The "
          "text is kept only on this node. privacy 'team' (default) or 'public' also sends "
          "its embedding and metadata (keyed-hashed values for team, clear for public) to "
          "the mesh so other nodes' agents can find it; 'private' never leaves this node; "
          "'ephemeral' stays in memory for a limited time. PII (emails, phone numbers, "
          "API keys...) is redacted before storage. Put facts you will filter on in "
          "metadata: a flat map of string, integer, number or boolean values.")
    def remember(
        text: Annotated[str, Field(min_length=1, description="What to remember.")],
        metadata: Annotated[dict[str, MetaValue] | None, Field(
            description="Flat key -> value map; keys must not start with '_'.")] = None,
        privacy: Annotated[Privacy, Field(description="How far it travels.")] = "team",
    ) -> RememberResult:
        with _tool_errors():
            mid = client.remember(text, metadata or {}, privacy=privacy)
        return RememberResult(id=mid, privacy=privacy, replicated=privacy in ("team", "public"))

    @tool("Search memories by meaning; hits come best first with a cosine score. scope "
          "'local' (default) searches this node's own memories, with their text. scope "
          "'mesh' also searches the replicas of other nodes' memories held here: those hits "
          "have text null and name their origin node, where the text stays. where: exact "
          "metadata matches, all required (for other nodes' 'team' memories the match goes "
          "through the keyed hash).", read_only)
    def recall(
        query: Annotated[str, Field(min_length=1, description="What to look for.")],
        k: Annotated[int, Field(ge=1, le=MAX_K, description="How many hits at most.")] = 5,
        scope: Annotated[Scope, Field(description="'local' or 'mesh'.")] = "local",
        where: Annotated[dict[str, MetaValue] | None, Field(
            description="Metadata key -> value that hits must have.")] = None,
    ) -> RecallResult:
        with _tool_errors():
            hits = client.recall(query, k, scope=scope, where=where or {})
        return RecallResult(scope=scope, hits=[_hit(h) for h in hits])

    @tool("Fetch one memory by id (as returned by remember or recall). Another node's "
          "memory comes back with text null: its text stays on its origin node.", read_only)
    def get(id: Annotated[str, Field(description="<origin node id>/<suffix>")]) -> MemoryResult:
        with _tool_errors():
            return _memory(client.get(id))

    @tool("Permanently forget one of this node's own memories by id; the forget reaches "
          "every peer. Other nodes' memories can only be forgotten on their origin node.",
          ToolAnnotations(destructive_hint=True, idempotent_hint=False, open_world_hint=False))
    def forget(id: Annotated[str, Field(description="<origin node id>/<suffix>")]
               ) -> ForgetResult:
        with _tool_errors():
            client.forget(id)
        return ForgetResult(id=id, forgotten=True)

    @tool("Describe this node: its id, embedding model, memory counts, peers with their "
          "state and lag, and its version vector.", read_only)
    def status() -> StatusResult:
        with _tool_errors():
            s = client.status()
        return StatusResult(node_id=s.node_id, version=s.version, model=s.model,
                            memories=s.memories, peers=s.peers,
                            version_vector=s.version_vector,
                            uptime_seconds=round(s.uptime_seconds, 3))

    return server


def make_client(addr: str, token: str | None, timeout: float,
                tls_ca: str | None = None) -> Client:
    """A :class:`memnode.Client` that sends ``token`` (when given) on every call."""
    return Client(addr, timeout=timeout, token=token, tls_ca=tls_ca)


# -- transports ------------------------------------------------------------------------


def _listen(host: str, port: int) -> socket.socket:
    family, kind, proto, _, sockaddr = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(sockaddr)
    sock.listen(128)  # connections wait in the backlog until uvicorn accepts them
    return sock


def _serve_http(server: Any, host: str, port: int, addr: str) -> None:
    import anyio
    import uvicorn

    app = server.streamable_http_app(host=host)
    sock = _listen(host, port)
    bound = sock.getsockname()
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    url = f"http://{shown}:{bound[1]}/mcp"
    print(json.dumps({"mcp": url, "node": addr}), flush=True)
    config = uvicorn.Config(app, log_level="warning", lifespan="on")
    anyio.run(lambda: uvicorn.Server(config).serve(sockets=[sock]))


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="memnode mcp",
        description="An MCP server over a memnode node (stdio by default).")
    p.add_argument("--addr", default=os.environ.get(ADDR_ENV) or DEFAULT_ADDR,
                   help=f"the node's client API (env {ADDR_ENV}; default {DEFAULT_ADDR})")
    p.add_argument("--token", default=os.environ.get(TOKEN_ENV),
                   help=f"bearer token for the node (env {TOKEN_ENV})")
    p.add_argument("--tls-ca", default=os.environ.get(TLS_CA_ENV), metavar="PEM",
                   help=f"CA certificate of a node serving TLS (env {TLS_CA_ENV})")
    p.add_argument("--timeout", type=float, default=10.0,
                   help="seconds each call to the node may take (default 10)")
    p.add_argument("--http", metavar="HOST:PORT",
                   help="serve streamable HTTP at http://HOST:PORT/mcp instead of stdio")
    p.add_argument("--allow-unauthenticated", action="store_true",
                   help="allow --http on a non-loopback address (no authentication)")
    p.add_argument("--log-level", default="WARNING",
                   choices=["DEBUG", "INFO", "WARNING", "ERROR"], help="stderr log level")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run the server until stdin closes (stdio) or a signal (HTTP). Returns an exit code:
    0 on a normal end, 2 for bad usage, 130 on Ctrl-C."""
    parser = _parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help, or a usage error already printed
        return int(exc.code or 0)
    logging.basicConfig(level=args.log_level, stream=sys.stderr,
                        format="memnode mcp: %(levelname)s %(message)s")
    logging.getLogger("memnode").setLevel(args.log_level)
    http: tuple[str, int] | None = None
    if args.http:
        try:
            http = split_hostport(args.http)
        except ValueError:
            parser.print_usage(sys.stderr)
            print(f"memnode mcp: --http expects HOST:PORT (e.g. 127.0.0.1:8765), got "
                  f"{args.http!r}", file=sys.stderr)
            return 2
        if not is_loopback(http[0]) and not args.allow_unauthenticated:
            print(f"memnode mcp: refusing to serve unauthenticated HTTP on {http[0]}; bind "
                  "to loopback or pass --allow-unauthenticated", file=sys.stderr)
            return 2
    with make_client(args.addr, args.token, args.timeout, args.tls_ca) as client:
        server = build_server(client)
        try:
            if http is None:
                server.run("stdio")
            else:
                _serve_http(server, http[0], http[1], args.addr)
        except KeyboardInterrupt:
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
