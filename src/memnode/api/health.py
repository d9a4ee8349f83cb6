"""The node's gRPC health service, kept truthful by a small monitor thread.

Service names (``grpc.health.v1``):

- ``""``, ``memnode.v1.MemoryService`` and ``readiness``: SERVING only while the node
  can take writes and replicate: its log and store can write, its embedded sidecar (if
  any) runs, and it is not restoring. Use these for readiness probes.
- ``liveness``: SERVING while the process serves at all (reads work on a full disk):
  use it for liveness probes, so that a full disk does not restart the pod in a loop.

Every ``interval`` seconds the monitor probes writes if they were failing (so the node
recovers by itself when space returns) and sets the statuses. ``problems()`` is what
``memnode status`` shows.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable

from grpc_health.v1 import health, health_pb2

from memnode.node.node import Node

log = logging.getLogger("memnode.health")

READINESS = ("", "readiness")
LIVENESS = "liveness"


class HealthMonitor:
    def __init__(self, node: Node, servicer: health.HealthServicer, service_name: str,
                 interval: float) -> None:
        self.node = node
        self.servicer = servicer
        self.services = (*READINESS, service_name)
        self.interval = interval
        self.sidecar_problem: Callable[[], str | None] = lambda: None
        self.audit_problem: Callable[[], str | None] = lambda: None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._serving: bool | None = None

    def problems(self) -> list[str]:
        found = []
        restoring = self.node.restore.refusal_message()
        if restoring:
            found.append(restoring)
        written = self.node.health.problem
        if written:
            found.append(written)
        for other in (self.sidecar_problem(), self.audit_problem()):
            if other:
                found.append(other)
        return found

    def check(self) -> bool:
        """Probe (if writes were failing) and publish; True when ready."""
        self.node.probe_writes()
        problems = self.problems()
        serving = not problems
        if serving != self._serving:
            status = (health_pb2.HealthCheckResponse.SERVING if serving
                      else health_pb2.HealthCheckResponse.NOT_SERVING)
            for name in self.services:
                self.servicer.set(name, status)
            if self._serving is not None:
                log.warning("health: %s%s", "SERVING" if serving else "NOT_SERVING",
                            "" if serving else f" ({'; '.join(problems)})")
            self._serving = serving
        return serving

    def start(self) -> None:
        self.servicer.set(LIVENESS, health_pb2.HealthCheckResponse.SERVING)
        self.check()
        self._thread = threading.Thread(target=self._run, name="memnode-health", daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            try:
                self.check()
            except Exception:  # the monitor must outlive whatever it watches
                log.exception("health check failed")

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(5)
