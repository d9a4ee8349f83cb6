#!/opt/memnode/bin/python
"""Container health check: ask a memnode node's gRPC health service whether it serves.

    memnode-healthcheck [HOST:PORT]      default: $MEMNODE_HEALTH_ADDR, else the port of
                                         $MEMNODE_LISTEN on loopback, else 127.0.0.1:7420
    memnode-healthcheck --http URL       the sidecar: its /metrics answers (it has no
                                         health service; its gossip port speaks mTLS)

Exit 0 when SERVING (or the URL answers 200), 1 otherwise. The node reports NOT_SERVING
while it starts, when it cannot write, and from the first moment of a graceful shutdown.
Imports grpc and the health stubs only, never the node: it runs in well under a second.
"""

from __future__ import annotations

import os
import sys

TIMEOUT_SECONDS = 3.0


def default_addr(env: dict[str, str]) -> str:
    if env.get("MEMNODE_HEALTH_ADDR"):
        return env["MEMNODE_HEALTH_ADDR"]
    listen = env.get("MEMNODE_LISTEN", "")
    _, sep, port = listen.rpartition(":")
    return f"127.0.0.1:{port}" if sep and port.isdigit() else "127.0.0.1:7420"


def check_grpc(addr: str) -> int:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    with grpc.insecure_channel(addr) as channel:
        try:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service=""), timeout=TIMEOUT_SECONDS)
        except grpc.RpcError as exc:
            print(f"{addr}: {exc.code().name}", file=sys.stderr)  # type: ignore[attr-defined]
            return 1
    status = health_pb2.HealthCheckResponse.ServingStatus.Name(reply.status)
    print(f"{addr}: {status}")
    return 0 if reply.status == health_pb2.HealthCheckResponse.SERVING else 1


def check_http(url: str) -> int:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=TIMEOUT_SECONDS) as reply:  # noqa: S310
            code = reply.status
    except (urllib.error.URLError, OSError) as exc:
        print(f"{url}: {exc}", file=sys.stderr)
        return 1
    print(f"{url}: HTTP {code}")
    return 0 if code == 200 else 1


def main(argv: list[str]) -> int:
    if argv[:1] == ["--http"] and len(argv) == 2:
        return check_http(argv[1])
    if len(argv) > 1 or (argv and argv[0].startswith("-")):
        print(__doc__, file=sys.stderr)
        return 2
    return check_grpc(argv[0] if argv else default_addr(dict(os.environ)))


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
