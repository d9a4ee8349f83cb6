"""Wall-clock jumps on one host: its node's and sidecar's wall clock steps forward or
back (a minute to two hours), stays there for a while, then steps back to the real
time: a host whose NTP stepped its clock, twice. Monotonic clocks are untouched, as a
real step leaves them. Processes the kill driver restarts meanwhile start with the
shifted clock (a sidecar's incarnation comes from it). What it shifts, and what it
cannot (C code's clock): bench/chaos/clock/sitecustomize.py."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.chaos._driver import Driver

#: Steps in seconds: back an hour, back 5 minutes, ahead 5 minutes, ahead 2 hours.
STEPS = (-3600.0, -300.0, 300.0, 7200.0)


@dataclass
class ClockDriver(Driver):
    interval: float = 9.0
    probability: float = 0.5
    hold_seconds: tuple[float, float] = (4.0, 15.0)
    _on: Any = field(default=None)
    name = "clock"

    def step(self) -> None:
        if self.rng.random() >= self.probability:
            return
        pod = self.rng.choice(self.cluster.pods)
        offset = self.rng.choice(STEPS)
        pod.set_clock(offset)
        self._on = pod
        seconds = self.rng.uniform(*self.hold_seconds)
        self.hold(seconds)
        self.heal()
        self.note("clock_jump", f"{pod.name} {offset:+.0f}s", seconds)

    def heal(self) -> None:
        if self._on is not None:
            self._on.set_clock(0.0)
            self._on = None
