"""The drill's load: several client threads doing remember, update and forget at a
steady total rate, and the ledger of what each operation's answer said.

Every remembered text holds a unique canary (``chaos-<run tag>-<16 hex>``), so the wire
can be searched for it and the origin's copy matched exactly. An operation is
*acknowledged* when its call returned; one that raised is *uncertain* (it may or may
not have been applied: a timeout, a node killed mid-call) and the checker asks nothing
of it, except that it is never applied twice. Update and forget go to the memory's
origin, which owns it; each memory is held by one thread at a time, so the ledger's
order for a memory is the order the origin saw.
"""

from __future__ import annotations

import random
import secrets
import threading
import time
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol, TypeVar

from bench.chaos.pods import Cluster

KINDS = ("remember", "update", "forget")
MIX = (0.6, 0.25, 0.15)  # remember, update, forget


@dataclass
class Written:
    id: str
    origin: int  # pod index
    text: str
    version: int = 0  # metadata "v" of the last acknowledged update
    attempted: int = 0  # highest "v" any update tried (acknowledged or not)
    forgotten: bool = False  # an acknowledged forget
    t: float = 0.0  # drill seconds when the remember was acknowledged
    t_change: float = 0.0  # ... when the last update or the forget was acknowledged
    maybe_forgotten: bool = False  # a forget that raised


class _Owned(Protocol):
    @property
    def origin(self) -> int: ...


W = TypeVar("W", bound=_Owned)


def take_free(free: list[str], writes: Mapping[str, W], rng: random.Random,
              origins: set[int] | None = None) -> W | None:
    """Take a random id out of ``free`` (of one of ``origins``, if given): O(1) for the
    load's path, a scan for a driver's, now and then. The simulated drill's ledger
    shares it."""
    if origins is None:
        if not free:
            return None
        k = rng.randrange(len(free))
    else:
        mine = [k for k, m in enumerate(free) if writes[m].origin in origins]
        if not mine:
            return None
        k = rng.choice(mine)
    free[k], free[-1] = free[-1], free[k]
    return writes[free.pop()]


@dataclass
class Ledger:
    tag: str
    writes: dict[str, Written] = field(default_factory=dict)
    uncertain_texts: list[tuple[int, str]] = field(default_factory=list)  # remember raised
    acked: Counter[str] = field(default_factory=Counter)
    failed: Counter[str] = field(default_factory=Counter)
    timeline: list[tuple[float, str, bool]] = field(default_factory=list)  # (t, kind, ok)
    lock: threading.Lock = field(default_factory=threading.Lock)
    _free: list[str] = field(default_factory=list)  # ids no thread holds and not forgotten

    def canary(self) -> str:
        return f"chaos-{self.tag}-{secrets.token_hex(8)}"

    def take(self, rng: random.Random, origins: set[int] | None = None) -> Written | None:
        """A memory no other thread holds (of one of ``origins``, if given), or None."""
        with self.lock:
            return take_free(self._free, self.writes, rng, origins)

    def give_back(self, w: Written) -> None:
        with self.lock:
            if not (w.forgotten or w.maybe_forgotten):
                self._free.append(w.id)

    def record(self, t: float, kind: str, ok: bool) -> None:
        with self.lock:
            (self.acked if ok else self.failed)[kind] += 1
            self.timeline.append((t, kind, ok))

    def add(self, w: Written) -> None:
        with self.lock:
            self.writes[w.id] = w
            self._free.append(w.id)

    def all_canaries(self) -> list[str]:
        return [w.text for w in self.writes.values()] + [t for _, t in self.uncertain_texts]


class LoadGenerator:
    """``clients`` threads, ``rate`` operations per second in all, until stopped or
    ``seconds`` passed (whichever first); each thread paces itself on a timer."""

    def __init__(self, cluster: Cluster, ledger: Ledger, rate: float, seconds: float,
                 seed: int, clients: int = 4, t0: float | None = None) -> None:
        self.cluster, self.ledger = cluster, ledger
        self.rate, self.seconds, self.seed, self.n = rate, seconds, seed, clients
        self.t0 = t0 if t0 is not None else time.monotonic()
        self.stop_event = threading.Event()
        self.threads: list[threading.Thread] = []

    def start(self) -> None:
        for i in range(self.n):
            t = threading.Thread(target=self._run, args=(i,), daemon=True, name=f"load-{i}")
            t.start()
            self.threads.append(t)

    def stop(self) -> None:
        self.stop_event.set()
        for t in self.threads:
            t.join(60)

    def _run(self, i: int) -> None:
        from memnode import Client

        rng = random.Random(self.seed * 1000 + i)
        clients = [Client(p.addr, timeout=5) for p in self.cluster.pods]
        period = self.n / self.rate
        deadline = time.monotonic() + self.seconds
        due = time.monotonic() + rng.random() * period
        try:
            for _ in range(int(self.seconds * self.rate / self.n) + 10):
                if self.stop_event.wait(max(0.0, due - time.monotonic())):
                    return
                if time.monotonic() >= deadline:
                    return
                due += period
                kind = rng.choices(KINDS, MIX)[0]
                self._one(kind, rng, clients)
                due = max(due, time.monotonic() - period)  # no burst after a slow call
        finally:
            for c in clients:
                c.close()

    def forget_on(self, origins: list[int], rng: random.Random) -> str | None:
        """Forget one acknowledged memory written on one of ``origins`` (the partition
        driver calls this while those hosts are cut off from the rest, so the forget
        must reach the replicas once the partition heals). Returns what it did."""
        from memnode import Client

        w = self.ledger.take(rng, set(origins))
        if w is None:
            return None
        now = time.monotonic() - self.t0
        client = Client(self.cluster.pods[w.origin].addr, timeout=5)
        ok = True
        try:
            client.forget(w.id)
            w.forgotten, w.t_change = True, time.monotonic() - self.t0
        except Exception:
            ok = False
            w.maybe_forgotten = True
        finally:
            client.close()
            self.ledger.give_back(w)
        self.ledger.record(now, "forget", ok)
        return f"{w.id} on pod {w.origin}" + ("" if ok else " (raised)")

    def _one(self, kind: str, rng: random.Random, clients: list[Any]) -> None:
        led = self.ledger
        now = time.monotonic() - self.t0
        if kind != "remember":
            w = led.take(rng)
            if w is None:
                kind = "remember"
        if kind == "remember":
            origin = rng.randrange(len(clients))
            text = f"note {rng.randrange(10**6)} says {led.canary()} today"
            try:
                mid = clients[origin].remember(text, {"v": 0}, privacy="public")
            except Exception:
                with led.lock:
                    led.uncertain_texts.append((origin, text))
                led.record(now, kind, False)
                return
            led.add(Written(mid, origin, text, t=time.monotonic() - self.t0))
            led.record(now, kind, True)
            return
        c = clients[w.origin]
        ok = True
        try:
            if kind == "update":
                w.attempted += 1
                c.update(w.id, {"v": w.attempted})
                w.version, w.t_change = w.attempted, time.monotonic() - self.t0
            else:
                c.forget(w.id)
                w.forgotten, w.t_change = True, time.monotonic() - self.t0
        except Exception:
            ok = False
            if kind == "forget":
                w.maybe_forgotten = True
        finally:
            led.give_back(w)
        led.record(now, kind, ok)
