"""kill -9 of a random host's processes with probability 0.3 every 5 s: both, or only
the node, or only the sidecar; restarted on the same data dir after a short outage.
One host is down at a time (the step returns once it is back)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from bench.chaos._driver import Driver
from bench.chaos.pods import PROCESSES

RESTART_ATTEMPTS = 30
WHICH = {"kill_pod": PROCESSES, "kill_node": ("node",), "kill_sidecar": ("sidecar",)}


@dataclass
class KillDriver(Driver):
    probability: float = 0.3
    down: tuple[float, float] = (0.5, 4.0)  # seconds between the kill and the restart
    _pending: list[tuple[int, tuple[str, ...]]] = field(default_factory=list)
    name = "kill"

    def step(self) -> None:
        if self.rng.random() >= self.probability:
            return
        pod = self.rng.choice(self.cluster.pods)
        kind = self.rng.choice(sorted(WHICH))
        which = WHICH[kind]
        with pod.lock:
            pod.kill9(which)
            self._pending.append((pod.index, which))
        started = self.now()
        self.hold(self.rng.uniform(*self.down))
        self._restart()
        self.note(kind, pod.name, self.now() - started)

    def _restart(self) -> None:
        """Start what was killed; a start that fails (say, on a full disk) is logged and
        tried again, a bounded number of times."""
        while self._pending:
            index, which = self._pending[0]
            pod = self.cluster.pods[index]
            for attempt in range(RESTART_ATTEMPTS):
                try:
                    with pod.lock:
                        pod.start(which)
                    break
                except (RuntimeError, TimeoutError) as exc:
                    # expected on a full disk: Chroma cannot open there, the node exits 1
                    reason = next((ln for ln in str(exc).splitlines()
                                   if ln.startswith("memnode:")), str(exc).splitlines()[0])
                    self.note("restart_refused", f"{pod.name} {which} attempt "
                              f"{attempt + 1}: {reason[:200]}")
                    with pod.lock:
                        pod.kill9(which)
                    time.sleep(1.0)  # the driver's own timer between attempts
            else:
                raise RuntimeError(f"{pod.name} {which} did not restart")
            self._pending.pop(0)

    def heal(self) -> None:
        self._restart()
