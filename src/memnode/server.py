"""Serving a node: gRPC (MemoryService, health, reflection), Prometheus, signals.

On SIGTERM or SIGINT: health turns NOT_SERVING, new calls are refused, in-flight calls get
``shutdown_grace_seconds`` to finish, the log is closed, and the process exits 0.
"""

from __future__ import annotations

import json
import logging
import signal
import sys
import threading
from collections.abc import Callable
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from memnode.config import NodeConfig, split_hostport
from memnode.node import Node
from memnode.servicer import MemoryServicer, PeersFn
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc

log = logging.getLogger("memnode.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MemoryService"].full_name
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class NodeServer:
    """A node behind a gRPC server. ``port`` is the bound port (useful with port 0)."""

    def __init__(self, node: Node, *, peers: PeersFn | None = None,
                 extra: Callable[[grpc.Server], None] | None = None) -> None:
        cfg = node.config
        self.node = node
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.grpc_workers,
                                       thread_name_prefix="memnode-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.so_reuseport", 0)],
        )
        pb_grpc.add_MemoryServiceServicer_to_server(MemoryServicer(node, peers), self.server)
        self.health = health.HealthServicer(experimental_non_blocking=True)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        if extra is not None:
            extra(self.server)
        reflection.enable_server_reflection(
            (SERVICE_NAME, health.SERVICE_NAME, reflection.SERVICE_NAME), self.server
        )
        host, port = split_hostport(cfg.listen)
        try:
            self.port = self.server.add_insecure_port(f"{host}:{port}" if ":" not in host
                                                      else f"[{host}]:{port}")
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {cfg.listen}: {exc}") from exc
        self.host = host
        self._metrics_server: Any = None
        self.metrics_port = 0
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def start(self) -> None:
        self.server.start()
        for name in ("", SERVICE_NAME):
            self.health.set(name, health_pb2.HealthCheckResponse.SERVING)
        if self.node.config.metrics_listen:
            from prometheus_client import start_http_server

            host, port = split_hostport(self.node.config.metrics_listen)
            self._metrics_server, _ = start_http_server(port, host,
                                                        registry=self.node.metrics.registry)
            self.metrics_port = self._metrics_server.server_port

    def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.health.enter_graceful_shutdown()
        grace = self.node.config.shutdown_grace_seconds if grace is None else grace
        self.server.stop(grace).wait()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.node.close()


def serve(config: NodeConfig) -> int:
    """Run a node until SIGTERM / SIGINT. Prints one JSON "ready" line on stdout."""
    node = Node(config)
    server = NodeServer(node)
    server.start()
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ready = {"event": "ready", "node_id": node.node_id, "listen": server.address,
             "metrics_port": server.metrics_port, "model": str(node.model),
             "data_dir": str(config.data_dir)}
    print(json.dumps(ready), flush=True)
    log.info("node %s serving on %s", node.node_id, server.address)
    done.wait()
    server.stop()
    log.info("stopped")
    sys.stdout.flush()
    return 0
