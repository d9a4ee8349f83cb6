"""What every fault driver shares: a thread on a seeded timer, bounded in count and in
time, a log of the faults it injected, and ``heal()`` (undo whatever is in force) that
runs when it stops, whatever happened.

A driver's ``step()`` injects one fault and returns once that fault is over (a driver
holds one fault at a time), or returns at once when it chose not to act. The timer
between steps is the driver's own clock: drivers may wait, checks may not.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter
from dataclasses import dataclass, field

from bench.chaos.pods import Cluster


@dataclass
class Fault:
    t: float  # seconds since the drill started
    kind: str
    detail: str
    seconds: float = 0.0  # how long it was in force


@dataclass
class Driver:
    cluster: Cluster
    seed: int
    t0: float
    interval: float = 5.0
    max_steps: int = 10_000
    faults: list[Fault] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    name = "driver"

    def __post_init__(self) -> None:
        self.rng = random.Random(f"{self.name}/{self.seed}")
        self.stop_event = threading.Event()
        self.thread: threading.Thread | None = None
        self.lock = threading.Lock()

    # -- the fault --------------------------------------------------------------------
    def step(self) -> None:
        raise NotImplementedError

    def heal(self) -> None:
        """Undo any fault in force (idempotent)."""

    # -- the loop ---------------------------------------------------------------------
    def now(self) -> float:
        return time.monotonic() - self.t0

    def hold(self, seconds: float) -> bool:
        """Wait ``seconds`` unless stopped first; True if stopped."""
        return self.stop_event.wait(seconds)

    def note(self, kind: str, detail: str, seconds: float = 0.0) -> Fault:
        fault = Fault(round(self.now(), 3), kind, detail, round(seconds, 3))
        with self.lock:
            self.faults.append(fault)
        return fault

    def counts(self) -> Counter[str]:
        return Counter(f.kind for f in self.faults)

    def start(self, seconds: float) -> None:
        self.thread = threading.Thread(target=self._run, args=(seconds,), daemon=True,
                                       name=self.name)
        self.thread.start()

    def _run(self, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        try:
            for _ in range(self.max_steps):
                if self.hold(self.interval) or time.monotonic() >= deadline:
                    break
                try:
                    self.step()
                except Exception as exc:  # a driver that fails must not end the drill
                    self.errors.append(f"{self.now():.1f}s {type(exc).__name__}: {exc}")
                    self.heal()
        finally:
            self.heal()

    def stop(self, timeout: float = 180.0) -> None:
        self.stop_event.set()
        if self.thread is not None:
            self.thread.join(timeout)
        self.heal()
