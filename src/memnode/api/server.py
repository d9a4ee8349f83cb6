"""Serving a node: gRPC (MemoryService, health, reflection), Prometheus, signals.

On SIGTERM or SIGINT: health turns NOT_SERVING, new calls are refused, in-flight calls get
``shutdown_grace_seconds`` to finish, the log is closed, and the process exits 0.
"""

from __future__ import annotations

import json
import logging
import signal
import threading
from concurrent import futures
from typing import Any

import grpc
from grpc_health.v1 import health, health_pb2_grpc
from grpc_reflection.v1alpha import reflection

from federation.io.convert import peer_to_proto
from federation.io.sidecar import Sidecar
from federation.io.sidecar_config import SidecarConfig
from federation.io.sidecar_metrics import SidecarCollector
from federation.io.transport import Authorizer, Security
from federation.v1 import federation_pb2_grpc as fpb_grpc
from federation.v1 import types_pb2 as tpb
from memnode.api.health import HealthMonitor
from memnode.api.memory_servicer import MemoryServicer
from memnode.api.replica_servicer import ReplicaServicer
from memnode.config import NodeConfig, split_hostport
from memnode.node.node import Node
from memnode.node.replica_port import ReplicaBackend
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc

log = logging.getLogger("memnode.server")

SERVICE_NAME = pb.DESCRIPTOR.services_by_name["MemoryService"].full_name
MAX_MESSAGE_BYTES = 64 * 1024 * 1024


class NodeServer:
    """A node behind a gRPC server. ``port`` is the bound port (useful with port 0).

    With ``sidecar="external"`` the node-local Replica API is served on a second server
    bound to ``replica_listen`` (loopback or unix socket), never on the client port."""

    def __init__(self, node: Node) -> None:
        cfg = node.config
        self.node = node
        self.replication = ReplicaBackend(node)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.grpc_workers,
                                       thread_name_prefix="memnode-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.so_reuseport", 0)],
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.monitor = HealthMonitor(node, self.health, SERVICE_NAME, cfg.health_probe_seconds)
        pb_grpc.add_MemoryServiceServicer_to_server(
            MemoryServicer(node, self._peer_statuses, self.monitor.problems), self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
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
        self.replica_server: grpc.Server | None = None
        self.replica_address = ""
        if cfg.sidecar == "external":
            self.replica_server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=8, thread_name_prefix="memnode-replica"),
                options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                         ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                         ("grpc.so_reuseport", 0)])
            fpb_grpc.add_ReplicaServicer_to_server(ReplicaServicer(self.replication),
                                                   self.replica_server)
            bound = self.replica_server.add_insecure_port(cfg.replica_listen)
            if not bound and not cfg.replica_listen.startswith("unix:"):
                raise OSError(f"cannot listen on {cfg.replica_listen}")
            self.replica_address = (cfg.replica_listen if cfg.replica_listen.startswith("unix:")
                                    else f"{split_hostport(cfg.replica_listen)[0]}:{bound}")
        self._metrics_server: Any = None
        self.metrics_port = 0
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _peer_statuses(self) -> list[tpb.PeerStatus]:
        return [peer_to_proto(p) for p in self.replication.peers()]

    def start(self) -> None:
        self.server.start()
        if self.replica_server is not None:
            self.replica_server.start()
        self.monitor.start()
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
        self.monitor.stop()
        self.health.enter_graceful_shutdown()
        grace = self.node.config.shutdown_grace_seconds if grace is None else grace
        if self.replica_server is not None:
            self.replica_server.stop(grace)
        self.server.stop(grace).wait()
        if self._metrics_server is not None:
            self._metrics_server.shutdown()
        self.node.close()


def build_security(sidecar: SidecarConfig) -> tuple[Security | None, Authorizer | None]:
    """Transport credentials and the deny-list check, or (None, None) when the sidecar
    has no way to talk safely. Peers are authenticated by the federation's CA (any
    member, at any address); a denied node id or certificate name is refused."""
    if sidecar.federation is not None:
        from federation.io.denylist import DenyList, make_authorizer
        from federation.io.tls import load_security

        security = load_security(sidecar.federation, verify_address=False)
        return security, make_authorizer(DenyList(sidecar.federation))
    if sidecar.insecure:
        return Security(), None
    return None, None


def with_federation_key(config: NodeConfig, sidecar: SidecarConfig) -> NodeConfig:
    """The node hashes metadata with its federation's key unless told otherwise."""
    if sidecar.federation is not None and config.metadata_key_file is None:
        from federation.io.pki import METADATA_KEY

        return config.model_copy(update={"metadata_key_file": sidecar.federation / METADATA_KEY})
    return config


def serve(config: NodeConfig, sidecar_config: SidecarConfig | None = None) -> int:
    """Run a node (and its embedded sidecar) until SIGTERM / SIGINT. Prints one JSON
    "ready" line on stdout."""
    sidecar_config = sidecar_config or SidecarConfig()
    security, authorize = (build_security(sidecar_config) if config.sidecar == "embedded"
                           else (None, None))
    node = Node(with_federation_key(config, sidecar_config))
    server = NodeServer(node)
    sidecar: Sidecar | None = None
    if config.sidecar == "embedded":
        if security is None:
            log.warning("no federation configured (--federation DIR or --insecure): "
                        "this node is not replicating")
        else:
            sidecar = Sidecar(server.replication, sidecar_config, security,
                              authorize=authorize)
    if sidecar is not None:
        server.monitor.sidecar_problem = sidecar.problem
    server.start()
    if sidecar is not None:
        sidecar.start()
        node.metrics.registry.register(SidecarCollector(sidecar))
    done = threading.Event()

    def on_signal(signum: int, frame: object) -> None:
        log.info("signal %d: shutting down", signum)
        done.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    ready = {"event": "ready", "node_id": node.node_id, "listen": server.address,
             "metrics_port": server.metrics_port, "model": str(node.model),
             "data_dir": str(config.data_dir), "replica_listen": server.replica_address,
             "gossip": sidecar.address if sidecar else ""}
    print(json.dumps(ready), flush=True)
    log.info("node %s serving on %s", node.node_id, server.address)
    done.wait()
    if sidecar is not None:
        sidecar.stop()
    server.stop()
    log.info("stopped")
    return 0


def serve_sidecar(node_addr: str, config: SidecarConfig, metrics_listen: str = "",
                  connect_timeout: float = 60.0, health_listen: str = "") -> int:
    """``memnode sidecar``: the sidecar in its own process, next to a node; with
    ``health_listen`` it serves its own gRPC health service there."""
    from prometheus_client import CollectorRegistry, start_http_server

    from federation.io.replica_client import GrpcReplicaPort

    security, authorize = build_security(config)
    if security is None:
        raise ValueError("the sidecar needs --federation DIR (mutual TLS) or --insecure")
    port = GrpcReplicaPort(node_addr)
    port.wait_ready(connect_timeout)
    sidecar = Sidecar(port, config, security, authorize=authorize)
    sidecar.start()
    metrics_port = 0
    if metrics_listen:
        registry = CollectorRegistry()
        registry.register(SidecarCollector(sidecar))
        host, mport = split_hostport(metrics_listen)
        metrics_server, _ = start_http_server(mport, host, registry=registry)
        metrics_port = metrics_server.server_port
    sidecar_health = None
    if health_listen:
        from federation.io.sidecar_health import SidecarHealth

        sidecar_health = SidecarHealth(sidecar, health_listen)
        sidecar_health.start()
    done = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    signal.signal(signal.SIGINT, lambda *_: done.set())
    print(json.dumps({"event": "ready", "node_id": sidecar.node_id, "gossip": sidecar.address,
                      "metrics_port": metrics_port,
                      "health_port": sidecar_health.port if sidecar_health else 0}), flush=True)
    done.wait()
    if sidecar_health is not None:
        sidecar_health.stop()
    sidecar.stop()
    port.close()
    return 0
