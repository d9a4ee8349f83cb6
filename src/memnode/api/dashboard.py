"""The status dashboard: ``/status.json`` (documented in docs/OPERATIONS.md, "Dashboard")
and the page at ``/`` that renders it, both on the node's metrics HTTP port.

The board keeps a small ring of samples (one every ``sample_seconds``, the last
``samples`` of them: ten minutes by default) so that the page can draw replication
throughput and convergence over the last minutes without a Prometheus server.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from importlib import resources
from typing import TYPE_CHECKING, Any

from memnode._version import __version__

if TYPE_CHECKING:
    from federation.io.sidecar import Sidecar
    from memnode.node.node import Node
    from memnode.node.replica_port import ReplicaBackend

SCHEMA = 1
SAMPLE_SECONDS = 5.0
SAMPLES = 120


def page() -> bytes:
    """The dashboard's HTML: one file, its CSS and JS inline, no external asset."""
    return resources.files("memnode.api").joinpath("dashboard.html").read_bytes()


@dataclass(frozen=True)
class Sample:
    t: float  # unix seconds
    applied: int  # events from peers applied so far (cumulative)
    max_lag_events: int  # the most of our events any peer lacks
    peers_alive: int
    peers_behind: int  # peers whose last digest lacked some of our events
    replicated: int  # replicas held
    rejected: Mapping[str, int]  # cumulative, by reason


class StatusBoard:
    """Builds the status JSON; ``sample()`` adds a point to the ring (the server calls it
    every ``sample_seconds`` from :meth:`run`; tests call it directly)."""

    def __init__(self, node: Node, replication: ReplicaBackend, *,
                 sample_seconds: float = SAMPLE_SECONDS, samples: int = SAMPLES,
                 clock: Callable[[], float] = time.time) -> None:
        self.node = node
        self.replication = replication
        self.sidecar: Sidecar | None = None
        self.sample_seconds = sample_seconds
        self._clock = clock
        self._ring: deque[Sample] = deque(maxlen=samples)
        self._lock = threading.Lock()

    # -- sampling ---------------------------------------------------------------------------

    def _applied(self, vv: Mapping[str, int]) -> int:
        """Events from peers applied: the embedded sidecar's count; with the sidecar in
        its own process, the growth of the other origins' entries in the version vector."""
        core = self.sidecar.core if self.sidecar is not None else None
        if core is not None:
            return int(core.metrics.events_applied)
        return sum(seq for origin, seq in vv.items() if origin != self.node.node_id)

    def _rejected(self) -> dict[str, int]:
        core = self.sidecar.core if self.sidecar is not None else None
        return {} if core is None else {str(k): int(v)
                                        for k, v in dict(core.metrics.events_rejected).items()}

    def sample(self) -> Sample:
        peers = self.replication.peers()
        alive = [p for p in peers if p.state == "alive"]
        point = Sample(
            t=self._clock(), applied=self._applied(self.node.version_vector()),
            max_lag_events=max((p.events_behind for p in alive), default=0),
            peers_alive=len(alive), peers_behind=sum(1 for p in alive if p.events_behind),
            replicated=self.node.visible.count_replicas(), rejected=self._rejected(),
        )
        with self._lock:
            self._ring.append(point)
        return point

    def run(self, stop: threading.Event) -> None:
        """Sample until ``stop`` is set (the server's sampling thread)."""
        while not stop.is_set():
            try:
                self.sample()
            except Exception:  # a store closing under us at shutdown: the next try tells
                if stop.is_set():
                    return
            stop.wait(self.sample_seconds)

    # -- the JSON ---------------------------------------------------------------------------

    def _points(self, ring: list[Sample]) -> list[dict[str, Any]]:
        points = []
        for before, after in zip(ring, ring[1:], strict=False):
            dt = after.t - before.t
            rate = (after.applied - before.applied) / dt if dt > 0 else 0.0
            points.append({"t": round(after.t, 3), "events_applied_per_second": round(rate, 3),
                           "max_lag_events": after.max_lag_events,
                           "peers_alive": after.peers_alive,
                           "peers_behind": after.peers_behind, "replicated": after.replicated})
        return points

    def _peers(self) -> list[dict[str, Any]]:
        sidecar = self.sidecar
        return [{"node_id": p.node_id, "address": p.address, "state": p.state,
                 "events_behind": p.events_behind,
                 "lag_seconds": (round(sidecar.lag_seconds(p.node_id), 3)
                                 if sidecar is not None else None),
                 "found_by": p.found_by}
                for p in sorted(self.replication.peers(), key=lambda p: p.node_id)]

    def status(self) -> dict[str, Any]:
        node = self.node
        with self._lock:
            ring = list(self._ring)
        vv = node.version_vector()
        rejected = self._rejected()
        oldest = ring[0].rejected if ring else {}
        points = self._points(ring)
        model = node.model
        return {
            "schema": SCHEMA,
            "node_id": node.node_id,
            "version": __version__,
            "uptime_seconds": round(node.uptime_seconds(), 3),
            "now": round(self._clock(), 3),
            "model": {"name": model.name, "dim": model.dim, "fingerprint": model.fingerprint},
            "memories": {"local": node.visible.count_local(),
                         "replicated": node.visible.count_replicas(),
                         "ephemeral": node.ephemeral.count()},
            "version_vector": dict(sorted(vv.items())),
            "sidecar": ("embedded" if self.sidecar is not None
                        else "external" if node.config.sidecar == "external" else "off"),
            "peers": self._peers(),
            "replication": {
                "events_applied_total": self._applied(vv),
                "events_applied_per_second": (points[-1]["events_applied_per_second"]
                                              if points else None),
                "converged": all(p.state == "alive" and p.events_behind == 0
                                 for p in self.replication.peers()),
            },
            "rejections": {
                "total": rejected,
                "recent": {k: v - oldest.get(k, 0) for k, v in rejected.items()
                           if v - oldest.get(k, 0) > 0},
                "window_seconds": round(ring[-1].t - ring[0].t, 3) if ring else 0.0,
            },
            "errors": _by_label(node.metrics.errors, "kind"),
            "writes_refused": _by_label(node.metrics.writes_refused, "reason"),
            "samples": {"interval_seconds": self.sample_seconds,
                        "capacity": self._ring.maxlen, "points": points},
        }


def _by_label(metric: Any, label: str) -> dict[str, int]:
    """A labelled counter's totals, e.g. ``{"invalid_argument": 2}``."""
    out: dict[str, int] = {}
    for family in metric.collect():
        for s in family.samples:
            if s.name.endswith("_total"):
                out[s.labels[label]] = int(s.value)
    return out
