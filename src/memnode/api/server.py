"""Serving a node: gRPC (MemoryService, health, reflection v1 and v1alpha), the HTTP port
(Prometheus /metrics, the dashboard at /), signals.

On SIGTERM or SIGINT: health turns NOT_SERVING, Watch streams end (OK), new calls are
refused, in-flight calls get ``shutdown_grace_seconds`` to finish, the log is closed, and
the process exits 0.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from collections.abc import Mapping
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2_grpc

from federation.io.certreload import TlsCollector
from federation.io.convert import peer_to_proto
from federation.io.denylist import DenyList
from federation.io.sidecar import Sidecar
from federation.io.sidecar_config import SidecarConfig
from federation.io.sidecar_metrics import SidecarCollector
from federation.io.transport import Security
from federation.v1 import federation_pb2_grpc as fpb_grpc
from federation.v1 import types_pb2 as tpb
from memnode.api import reflection
from memnode.api.audit import open_audit
from memnode.api.client_tls import server_tls
from memnode.api.dashboard import StatusBoard
from memnode.api.decode import add_service
from memnode.api.health import HealthMonitor
from memnode.api.http import HttpServer
from memnode.api.memory_servicer import MemoryServicer
from memnode.api.replica_servicer import ReplicaServicer
from memnode.api.signals import shutdown_event
from memnode.config import NodeConfig, is_loopback, split_hostport
from memnode.node.node import Node
from memnode.node.replica_port import ReplicaBackend
from memnode.node.watch import ChangeFeed
from memnode.v1 import memnode_pb2 as pb

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
        self.feed = ChangeFeed(node, self.replication, cfg.max_watchers)
        auth = client_interceptors(node)
        self.audit = open_audit(node, auth)
        self.server = grpc.server(
            futures.ThreadPoolExecutor(max_workers=cfg.grpc_workers,
                                       thread_name_prefix="memnode-grpc"),
            options=[("grpc.max_receive_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.max_send_message_length", MAX_MESSAGE_BYTES),
                     ("grpc.so_reuseport", 0)],
            interceptors=[*([self.audit] if self.audit else []), *auth],
        )
        self.health = health.HealthServicer(experimental_non_blocking=True)
        self.monitor = HealthMonitor(node, self.health, SERVICE_NAME, cfg.health_probe_seconds)
        if self.audit is not None:
            writer = self.audit.writer
            self.monitor.audit_problem = lambda: writer.problem
        add_service(pb.DESCRIPTOR.services_by_name["MemoryService"],
                    MemoryServicer(node, self._peer_statuses, self.monitor.problems,
                                   self.feed),
                    self.server)
        health_pb2_grpc.add_HealthServicer_to_server(self.health, self.server)
        reflection.enable((SERVICE_NAME, health.SERVICE_NAME), self.server)
        host, port = split_hostport(cfg.listen)
        bind = f"{host}:{port}" if ":" not in host else f"[{host}]:{port}"
        try:
            if cfg.tls_cert is not None and cfg.tls_key is not None:
                tls = server_tls(cfg.tls_cert, cfg.tls_key)
                node.metrics.registry.register(TlsCollector("memnode_client_tls", tls))
                self.port = self.server.add_secure_port(
                    bind, tls.server_credentials(require_client_auth=False))
            else:
                self.port = self.server.add_insecure_port(bind)
        except RuntimeError as exc:
            raise OSError(f"cannot listen on {cfg.listen}: {exc}") from exc
        self.host = host
        self.replica_server: grpc.Server | None = None
        self.replica_address = ""
        if cfg.sidecar == "external":
            self.replica_server = grpc.server(
                futures.ThreadPoolExecutor(max_workers=cfg.replica_workers,
                                           thread_name_prefix="memnode-replica"),
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
        self.board = StatusBoard(node, self.replication,
                                 sample_seconds=cfg.dashboard_sample_seconds)
        self._http: HttpServer | None = None
        self.metrics_port = 0
        self._stopped = threading.Event()

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"

    def _peer_statuses(self) -> list[tpb.PeerStatus]:
        return [peer_to_proto(p) for p in self.replication.peers()]

    def attach_sidecar(self, sidecar: Sidecar) -> None:
        """The embedded sidecar: its metrics join /metrics, its view the dashboard, its
        problems readiness."""
        self.node.metrics.registry.register(SidecarCollector(sidecar))
        self.board.sidecar = sidecar
        self.monitor.sidecar_problem = sidecar.problem

    def start(self) -> None:
        if self.audit is not None:
            self.audit.writer.start()
        self.server.start()
        if self.replica_server is not None:
            self.replica_server.start()
        self.monitor.start()
        if self.node.config.metrics_listen:
            host, port = split_hostport(self.node.config.metrics_listen)
            self._http = HttpServer(host, port, self.node.metrics.registry, self.board.status)
            self._http.start()
            self.metrics_port = self._http.port
            threading.Thread(target=self.board.run, args=(self._stopped,),
                             name="memnode-dashboard", daemon=True).start()

    def stop(self, grace: float | None = None) -> None:
        if self._stopped.is_set():
            return
        self._stopped.set()
        self.monitor.stop()
        self.feed.close()  # Watch streams end now (OK), not after the grace
        self.health.enter_graceful_shutdown()
        grace = self.node.config.shutdown_grace_seconds if grace is None else grace
        if self.replica_server is not None:
            self.replica_server.stop(grace)
        self.server.stop(grace).wait()
        if self.audit is not None:
            self.audit.writer.close()
        if self._http is not None:
            self._http.shutdown()
        self.node.close()


def client_interceptors(node: Node) -> list[grpc.ServerInterceptor]:
    """The client API's authentication (see :mod:`memnode.api.auth`), by --client-auth."""
    cfg = node.config
    host = split_hostport(cfg.listen)[0]
    if cfg.auth_mode == "none":
        if not is_loopback(host):
            log.warning("client API on %s with --client-auth none (--allow-unauthenticated): "
                        "anyone who reaches it reads and writes every memory", cfg.listen)
        return []
    from memnode.api.auth import TokenAuthInterceptor, TokenVerifier
    from memnode.storage.tokenstore import TokenStore

    store = TokenStore(cfg.data_dir)
    if not store.records():
        log.warning("client auth is token but no token is issued yet: memnode token issue "
                    "--data-dir %s --scope read,write", cfg.data_dir)
    if cfg.tls_cert is None and not is_loopback(host):
        log.warning("client API on %s without TLS: tokens and memories cross the network "
                    "in clear; give --tls-cert and --tls-key", cfg.listen)
    return [TokenAuthInterceptor(TokenVerifier(store, node.now_ms), node.metrics)]


def build_security(sidecar: SidecarConfig) -> tuple[Security | None, DenyList | None]:
    """Transport credentials and the deny list, or (None, None) when the sidecar has no
    way to talk safely. Peers are authenticated by the federation's CA (any member, at
    any address); a denied node id or certificate name is refused inbound, and a denied
    node id gets nothing outbound."""
    if sidecar.federation is not None:
        from federation.io.tls import load_security

        security = load_security(sidecar.federation, verify_address=False)
        return security, DenyList(sidecar.federation)
    if sidecar.insecure:
        return Security(), None
    return None, None


def with_federation_key(config: NodeConfig, sidecar: SidecarConfig,
                        env: Mapping[str, str] | None = None) -> NodeConfig:
    """The node hashes metadata with its federation's key unless told otherwise. A node
    whose sidecar runs apart (``--sidecar external``) must be given the key (by
    ``--federation``, ``--metadata-key-file`` or the env var): else it would hash TEAM
    metadata with the public development key, unnoticed by the mesh. Only ``--insecure``
    (a development mesh) lets it fall back to that key."""
    if sidecar.federation is not None and config.metadata_key_file is None:
        from federation.io.pki import METADATA_KEY

        return config.model_copy(update={"metadata_key_file": sidecar.federation / METADATA_KEY})
    from federation.io.metakey import ENV_VAR

    env = os.environ if env is None else env
    if (config.sidecar == "external" and config.metadata_key_file is None
            and not env.get(ENV_VAR) and not sidecar.insecure):
        raise ValueError("--sidecar external needs the federation's metadata key: give "
                         "--federation DIR (its metadata.key), --metadata-key-file FILE or "
                         f"${ENV_VAR}; --insecure allows the public development key")
    return config


def serve(config: NodeConfig, sidecar_config: SidecarConfig | None = None) -> int:
    """Run a node (and its embedded sidecar) until SIGTERM / SIGINT. Prints one JSON
    "ready" line on stdout."""
    sidecar_config = sidecar_config or SidecarConfig()
    security, deny = (build_security(sidecar_config) if config.sidecar == "embedded"
                           else (None, None))
    node = Node(with_federation_key(config, sidecar_config),
                federation=sidecar_config.core_config())
    try:
        server = NodeServer(node)
    except BaseException:
        node.close()
        raise
    sidecar: Sidecar | None = None
    if config.sidecar == "embedded":
        if security is None:
            log.warning("no federation configured (--federation DIR or --insecure): "
                        "this node is not replicating")
        else:
            sidecar = Sidecar(server.replication, sidecar_config, security,
                              deny=deny)
    server.start()
    if sidecar is not None:
        sidecar.start()
        server.attach_sidecar(sidecar)
    done = shutdown_event()
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

    security, deny = build_security(config)
    if security is None:
        raise ValueError("the sidecar needs --federation DIR (mutual TLS) or --insecure")
    port = GrpcReplicaPort(node_addr, timeout=config.replica_timeout_seconds)
    port.wait_ready(connect_timeout)
    sidecar = Sidecar(port, config, security, deny=deny)
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
    done = shutdown_event()
    print(json.dumps({"event": "ready", "node_id": sidecar.node_id, "gossip": sidecar.address,
                      "metrics_port": metrics_port,
                      "health_port": sidecar_health.port if sidecar_health else 0}), flush=True)
    done.wait()
    if sidecar_health is not None:
        sidecar_health.stop()
    sidecar.stop()
    port.close()
    return 0
