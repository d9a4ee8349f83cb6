"""Partitions of the bridge: random halves, or one host isolated, or one way (A's
packets to B dropped, B's to A pass), healed after a random time. One nft table in the
root namespace, ``table bridge <name>`` with a forward chain dropping between the
groups' host-side veths (../shared/NETLAB.md); healing deletes the table. Traffic of
the drill's clients (root namespace to a host: the bridge's input, not its forward
path) is not touched. While a cut is in force, ``on_cut`` (the load's ``forget_on``)
forgets a memory written on the cut-off side: its replicas on the other side must drop
it once the cut heals."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from bench.chaos._driver import Driver

KINDS = ("partition_halves", "partition_isolate", "partition_one_way")


@dataclass
class PartitionDriver(Driver):
    interval: float = 6.0
    probability: float = 0.5
    hold_seconds: tuple[float, float] = (2.0, 10.0)
    on_cut: Callable[..., str | None] | None = None
    name = "partition"

    @property
    def table(self) -> str:
        return f"mmpart{self.cluster.lab.tag}"

    def step(self) -> None:
        if self.rng.random() >= self.probability or len(self.cluster.pods) < 2:
            return
        pods = list(self.cluster.pods)
        self.rng.shuffle(pods)
        kind = self.rng.choice(KINDS)
        cut = 1 if kind == "partition_isolate" else self.rng.randrange(1, len(pods))
        a, b = pods[:cut], pods[cut:]
        veth = lambda group: ", ".join(f'"{p.host.veth}"' for p in group)  # noqa: E731
        rules = [f"iifname {{ {veth(a)} }} oifname {{ {veth(b)} }} drop"]
        if kind != "partition_one_way":
            rules.append(f"iifname {{ {veth(b)} }} oifname {{ {veth(a)} }} drop")
        body = "\n".join(f"    {r}" for r in rules)
        self.cluster.nft(f"table bridge {self.table} {{\n"
                         "  chain forward_cut {\n"
                         "    type filter hook forward priority 0; policy accept;\n"
                         f"{body}\n  }}\n}}\n")
        seconds = self.rng.uniform(*self.hold_seconds)
        forgot = self.on_cut([p.index for p in a], self.rng) if self.on_cut else None
        if forgot is not None:
            self.note("forget_while_partitioned", forgot)
        self.hold(seconds)
        self.heal()
        arrow = "->" if kind == "partition_one_way" else "|"
        self.note(kind, f"{[p.index for p in a]} {arrow} {[p.index for p in b]}", seconds)

    def heal(self) -> None:
        if self.cluster.lab is not None:
            self.cluster.nft_delete("bridge", self.table)
