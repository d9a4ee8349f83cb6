"""CPU seconds by stage: where a replicated entry's time goes.

Each stage adds the calling thread's CPU time (``time.thread_time``, not wall time: a
thread waiting on a lock or a socket costs nothing) spent inside it. The sidecar counts
``decode`` (gossip messages received, on gRPC's threads), ``core`` (the replication
core: verify, apply, pick what to send) and ``encode`` (messages sent); the node counts
``ingest`` (validate, redact, embed a Remember), ``write`` (its own writes' commit
groups: sign, log, tail), ``persist`` (the core's effects into the log and the index
tail) and ``index`` (the indexer's Chroma batches).
Exported as ``memnode_federation_stage_cpu_seconds_total`` and
``memnode_stage_cpu_seconds_total``; ``python -m bench convergence`` divides them by
the replicated entries.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

__all__ = ["StageCpu"]


class StageCpu:
    """Thread-safe totals; about a microsecond per measured call."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._seconds: dict[str, float] = {}

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.thread_time()
        try:
            yield
        finally:
            spent = time.thread_time() - started
            with self._lock:
                self._seconds[name] = self._seconds.get(name, 0.0) + spent

    def seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)
