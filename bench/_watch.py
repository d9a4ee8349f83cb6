"""Write-to-visible measurement, shared by memnode and the side-by-side peers.

The workload: ``W`` writes at ``R`` per second, round-robin over the nodes (write ``k``
goes to node ``k % N``, scheduled at ``k / R`` s), one writer thread per node so that
each origin's writes are sequential: the ``j``-th write on a node is that origin's
event ``base + j`` (one write = one event), so its seq is known without asking.

Visibility: one thread per node calls ``probe()`` (one call returning that node's whole
version vector ``{origin: highest contiguous seq}``) every ``poll_ms`` while some
issued write is not yet visible there, and waits for the next write otherwise (a poll
a second at most while idle). Each poll's answer
is stamped with the time the RPC returned (an upper bound: the write became visible
between the previous poll and this one). A write of origin ``O`` with seq ``s`` is
visible on a node from the first poll whose ``vv[O] >= s``.

Latency of a write = (last node to see it) - (its ack at the client), 0 when every
node already had it when the ack came back; ``from_request`` counts from when the
client sent the write instead.
"""

from __future__ import annotations

import bisect
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from bench._common import percentile

Probe = Callable[[], dict[str, int]]
Writer = Callable[[int], None]
"""``write(k)``: perform write number k on its node; returns once it is acknowledged."""


@dataclass
class WriteRecord:
    k: int
    node: int
    origin: str
    seq: int
    sent: float = 0.0
    acked: float = 0.0
    error: str = ""


@dataclass
class _Timeline:
    """One node's observations: per origin, ascending (watermark, time first seen)."""

    marks: dict[str, list[int]] = field(default_factory=dict)
    times: dict[str, list[float]] = field(default_factory=dict)
    polls: int = 0
    poll_seconds: list[float] = field(default_factory=list)

    def observe(self, vv: dict[str, int], at: float) -> None:
        for origin, seq in vv.items():
            marks = self.marks.setdefault(origin, [])
            if not marks or seq > marks[-1]:
                marks.append(seq)
                self.times.setdefault(origin, []).append(at)

    def seen(self, origin: str, seq: int) -> float | None:
        marks = self.marks.get(origin)
        if not marks:
            return None
        i = bisect.bisect_left(marks, seq)
        return self.times[origin][i] if i < len(marks) else None

    def covers(self, expected: dict[str, int]) -> bool:
        return all(self.marks.get(o, [0])[-1] >= s for o, s in expected.items())


class Watcher:
    """Pollers and writers over ``probes`` (one per node); see the module docstring."""

    def __init__(self, probes: Sequence[Probe], origins: Sequence[str], poll_ms: float = 2.0,
                 idle_ms: float = 1000.0) -> None:
        self.probes = list(probes)
        self.origins = list(origins)
        self.poll = poll_ms / 1000.0
        self.idle = idle_ms / 1000.0
        self.timelines = [_Timeline() for _ in probes]
        self.expected: dict[str, int] = {}
        self.probe_errors = 0
        self._cond = threading.Condition()
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []

    # pollers -------------------------------------------------------------------------
    def start(self) -> dict[str, int]:
        """First poll of every node (the base seqs), then the polling threads."""
        base: dict[str, int] = {}
        for i, probe in enumerate(self.probes):
            vv = probe()
            self.timelines[i].observe(vv, time.perf_counter())
            for o, s in vv.items():
                base[o] = max(base.get(o, 0), s)
        for i in range(len(self.probes)):
            t = threading.Thread(target=self._poll_loop, args=(i,), daemon=True,
                                 name=f"poll-{i}")
            t.start()
            self._threads.append(t)
        return base

    def _poll_loop(self, i: int) -> None:
        probe, timeline = self.probes[i], self.timelines[i]
        while not self._stop.is_set():
            with self._cond:
                expected = dict(self.expected)
            if timeline.covers(expected):
                with self._cond:
                    if self.expected == expected:
                        self._cond.wait(self.idle)
            t0 = time.perf_counter()
            try:
                vv = probe()
            except Exception:  # a node busy or restarting: count and go on
                self.probe_errors += 1
                time.sleep(self.poll)
                continue
            t1 = time.perf_counter()
            timeline.observe(vv, t1)
            timeline.polls += 1
            if len(timeline.poll_seconds) < 100_000:
                timeline.poll_seconds.append(t1 - t0)
            left = self.poll - (time.perf_counter() - t1)
            if left > 0:
                time.sleep(left)

    def stop(self) -> None:
        self._stop.set()
        with self._cond:
            self._cond.notify_all()
        for t in self._threads:
            t.join(10)

    # writers -------------------------------------------------------------------------
    def run_writes(self, writes: int, rate: float, write: Writer, base: dict[str, int],
                   seconds: float) -> list[WriteRecord]:
        """Issue the writes on schedule (bounded by ``seconds``); returns the records."""
        n = len(self.probes)
        counts = {o: base.get(o, 0) for o in self.origins}
        records = []
        for k in range(writes):
            origin = self.origins[k % n]
            counts[origin] += 1
            records.append(WriteRecord(k, k % n, origin, counts[origin]))
        start = time.perf_counter() + 0.05
        deadline = start + seconds

        def writer(node: int) -> None:
            for rec in records[node::n]:
                due = start + rec.k / rate
                now = time.perf_counter()
                if now >= deadline:
                    rec.error = "not sent: time budget spent"
                    continue
                if due > now:
                    time.sleep(due - now)
                with self._cond:  # visible may come before the ack: expect it from now
                    self.expected[rec.origin] = max(self.expected.get(rec.origin, 0), rec.seq)
                    self._cond.notify_all()
                rec.sent = time.perf_counter()
                try:
                    write(rec.k)
                    rec.acked = time.perf_counter()
                except Exception as exc:  # recorded, the run goes on
                    rec.error = f"{type(exc).__name__}: {exc}"[:200]

        threads = [threading.Thread(target=writer, args=(i,), name=f"write-{i}")
                   for i in range(n)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        self.started_at = start
        return records

    def wait_visible(self, records: list[WriteRecord], timeout: float) -> bool:
        """Until every acknowledged write is visible on every node, or ``timeout``."""
        want: dict[str, int] = {}
        for r in records:
            if r.acked:
                want[r.origin] = max(want.get(r.origin, 0), r.seq)
        deadline = time.perf_counter() + timeout
        while time.perf_counter() < deadline:
            if all(t.covers(want) for t in self.timelines):
                return True
            time.sleep(0.01)
        return False

    # results -------------------------------------------------------------------------
    def analyse(self, records: list[WriteRecord], timeout: float) -> dict[str, Any]:
        lat, from_req, ack, curve = [], [], [], []
        half: list[float] = []
        visible_before_ack = 0
        missing: list[int] = []
        for r in records:
            if not r.acked:
                continue
            seen = [t.seen(r.origin, r.seq) for t in self.timelines]
            ack.append(r.acked - r.sent)
            if any(s is None for s in seen):
                missing.append(r.k)
                continue
            last = max(s for s in seen if s is not None)
            if last - r.acked > timeout:
                missing.append(r.k)
                continue
            if last <= r.acked:
                visible_before_ack += 1
            lat.append(max(0.0, last - r.acked))
            ordered = sorted(s for s in seen if s is not None)
            half.append(max(0.0, ordered[len(ordered) // 2] - r.acked))
            from_req.append(last - r.sent)
            curve.append((r.acked - self.started_at, last - self.started_at))
        acked = sum(1 for r in records if r.acked)
        polls = [s for t in self.timelines for s in t.poll_seconds]
        return {
            "writes_acked": acked,
            "write_errors": sorted({r.error for r in records if r.error})[:5],
            "propagated": len(lat),
            "propagation_rate": round(len(lat) / len(records), 4) if records else 0.0,
            "not_propagated": missing[:50],
            "latency_ms": summary_ms(lat),
            "from_request_ms": summary_ms(from_req),
            "half_of_nodes_ms": summary_ms(half),
            "ack_ms": summary_ms(ack),
            "visible_before_ack": visible_before_ack,
            "poll": {"interval_ms": self.poll * 1000,
                     "rpc_ms_p50": round(percentile(polls, 50) * 1000, 3) if polls else None,
                     "rpc_ms_p99": round(percentile(polls, 99) * 1000, 3) if polls else None,
                     "polls": sum(t.polls for t in self.timelines),
                     "errors": self.probe_errors},
            "samples": {"latency_ms": [round(x * 1000, 3) for x in lat],
                        "half_ms": [round(x * 1000, 3) for x in half],
                        "acked_s": [round(a, 4) for a, _ in curve],
                        "visible_s": [round(v, 4) for _, v in curve]},
        }


def summary_ms(seconds: Sequence[float]) -> dict[str, float | None]:
    if not seconds:
        return {"n": 0, "p50": None, "p90": None, "p99": None, "max": None, "mean": None}
    ms = [s * 1000 for s in seconds]
    return {"n": len(ms), "p50": round(percentile(ms, 50), 2),
            "p90": round(percentile(ms, 90), 2), "p99": round(percentile(ms, 99), 2),
            "max": round(max(ms), 2), "mean": round(sum(ms) / len(ms), 2)}
