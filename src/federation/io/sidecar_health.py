"""The separate sidecar's own gRPC health service (``memnode sidecar --health-listen``).

Service ``""`` (and ``memnode.sidecar``): SERVING while the sidecar replicates - its
core thread runs and it reaches its node (``Sidecar.problem()`` is None); NOT_SERVING
otherwise. ``liveness``: SERVING while the process serves. Re-checked every
``interval`` seconds.
"""

from __future__ import annotations

import logging
import threading
from concurrent import futures

import grpc
from grpc_health.v1 import health, health_pb2, health_pb2_grpc

from federation.io.sidecar import Sidecar

log = logging.getLogger("memnode.sidecar.health")

SERVICES = ("", "memnode.sidecar")


class SidecarHealth:
    def __init__(self, sidecar: Sidecar, listen: str, interval: float = 0.5) -> None:
        self.sidecar = sidecar
        self.interval = interval
        self.servicer = health.HealthServicer(experimental_non_blocking=True)
        self.server = grpc.server(futures.ThreadPoolExecutor(
            max_workers=2, thread_name_prefix="sidecar-health"),
            options=[("grpc.so_reuseport", 0)])
        health_pb2_grpc.add_HealthServicer_to_server(self.servicer, self.server)
        self.port = self.server.add_insecure_port(listen)
        if not self.port:
            raise OSError(f"cannot listen on {listen}")
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="sidecar-health", daemon=True)
        self._serving: bool | None = None

    def start(self) -> None:
        self.servicer.set("liveness", health_pb2.HealthCheckResponse.SERVING)
        self.check()
        self.server.start()
        self._thread.start()

    def check(self) -> bool:
        problem = self.sidecar.problem()
        serving = problem is None
        if serving != self._serving:
            status = (health_pb2.HealthCheckResponse.SERVING if serving
                      else health_pb2.HealthCheckResponse.NOT_SERVING)
            for name in SERVICES:
                self.servicer.set(name, status)
            if self._serving is not None:
                log.warning("sidecar health: %s", "SERVING" if serving else
                            f"NOT_SERVING ({problem})")
            self._serving = serving
        return serving

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:
                log.exception("sidecar health check failed")

    def stop(self) -> None:
        self._stop.set()
        self.servicer.enter_graceful_shutdown()
        self.server.stop(1)
