"""The kubelet's liveness probe, as the StatefulSet declares it (infra/k8s): every
``interval`` seconds each running node is asked for gRPC health ``liveness``; after
``failures`` probes in a row unanswered, its processes are killed and restarted on the
same data dir. Not a fault: the drill's pods get what pods get in a cluster. Its
restarts are reported apart from the kill driver's (``liveness_restart``); a drill that
needs any has found a process that stopped answering."""

from __future__ import annotations

from dataclasses import dataclass, field

from bench.chaos._driver import Driver
from bench.chaos.pods import PROCESSES

PROBE_TIMEOUT = 3.0


def alive(addr: str, timeout: float = PROBE_TIMEOUT) -> bool:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc

    try:
        with grpc.insecure_channel(addr) as channel:
            reply = health_pb2_grpc.HealthStub(channel).Check(
                health_pb2.HealthCheckRequest(service="liveness"), timeout=timeout)
    except grpc.RpcError:
        return False
    return bool(reply.status == health_pb2.HealthCheckResponse.SERVING)


@dataclass
class LivenessProbe(Driver):
    interval: float = 5.0
    failures: int = 3
    missed: dict[int, int] = field(default_factory=dict)
    name = "liveness"

    def step(self) -> None:
        for pod in self.cluster.pods:
            with pod.lock:  # not while the kill driver has the pod down
                if pod.procs["node"].pid is None:
                    self.missed.pop(pod.index, None)
                    continue
            if alive(pod.addr):
                self.missed.pop(pod.index, None)
                continue
            self.missed[pod.index] = self.missed.get(pod.index, 0) + 1
            if self.missed[pod.index] < self.failures:
                continue
            self.missed.pop(pod.index, None)
            started = self.now()
            with pod.lock:
                pod.kill9(PROCESSES)
                pod.start(PROCESSES)
            self.note("liveness_restart", pod.name, self.now() - started)
