"""Packet loss on one host's input: an nft ``numgen random`` drop of a random share
(5-30 %) of the gossip packets (both directions) arriving at the host, for a random
time. The table lives in the host's namespace; healing deletes it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from bench.chaos._driver import Driver
from bench.chaos.pods import GOSSIP_PORT

TABLE = "chaosloss"


@dataclass
class LossDriver(Driver):
    interval: float = 7.0
    probability: float = 0.5
    percent: tuple[int, int] = (5, 30)
    hold_seconds: tuple[float, float] = (3.0, 12.0)
    _on: Any = field(default=None)
    name = "loss"

    def step(self) -> None:
        if self.rng.random() >= self.probability:
            return
        pod = self.rng.choice(self.cluster.pods)
        pct = self.rng.randint(*self.percent)
        rules = (f"table inet {TABLE} {{\n"
                 "  chain in {\n"
                 "    type filter hook input priority 0; policy accept;\n"
                 f"    tcp dport {GOSSIP_PORT} numgen random mod 100 < {pct} drop\n"
                 f"    tcp sport {GOSSIP_PORT} numgen random mod 100 < {pct} drop\n"
                 "  }\n"
                 "}\n")
        self.cluster.nft(rules, pod.host.netns)
        self._on = pod.host.netns
        seconds = self.rng.uniform(*self.hold_seconds)
        self.hold(seconds)
        self.heal()
        self.note("loss", f"{pod.name} {pct}%", seconds)

    def heal(self) -> None:
        if self._on is not None and self.cluster.lab is not None:
            self.cluster.nft_delete("inet", TABLE, self._on)
            self._on = None
