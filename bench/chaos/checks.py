"""The drill's invariants, checked after the last heal and restart. ``eventually_*``
polls until it holds or its deadline passes; ``finally_*`` reads the state once. Each
returns a :class:`Check`: whether it held, what was counted, and the first offenders.

- ``eventually_vectors_agree``: every node reports the same version vector, naming
  every node; the seconds it took is the time to agree.
- ``finally_no_write_lost``: every acknowledged, not forgotten write is on its origin
  with its exact text, and on every other node by id with the same origin.
- ``finally_no_duplicates``: no id twice in any node's list, no canary text in two
  memories (an uncertain remember retried into two copies would show here).
- ``finally_no_resurrection``: every acknowledged forget is gone from every node.
- ``finally_updates_agree``: each memory's metadata is the same everywhere, and on its
  origin it is the last acknowledged update or a later attempted one.
- ``finally_no_canary_on_wire``: no canary, nor its random part, in the capture.
- ``finally_resources_bounded``: threads and RSS of every process stayed under bounds.
"""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.chaos.load import Ledger
from bench.chaos.pods import Cluster

MAX_THREADS = 300
MAX_RSS_MB = 1500.0


@dataclass
class Check:
    name: str
    ok: bool
    figures: dict[str, Any] = field(default_factory=dict)
    examples: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {"ok": self.ok, **self.figures, "examples": self.examples[:10]}


def _clients(cluster: Cluster) -> list[Any]:
    from memnode import Client

    return [Client(p.addr, timeout=30) for p in cluster.pods]


def eventually_vectors_agree(cluster: Cluster, deadline: float = 60.0,
                             interval: float = 0.2) -> Check:
    clients = _clients(cluster)
    ids = {p.node_id for p in cluster.pods}
    started = time.monotonic()
    last: list[dict[str, int]] = []
    error = ""
    try:
        for _ in range(int(deadline / interval) + 1):
            try:
                last = [c.status().version_vector for c in clients]
                error = ""
            except Exception as exc:  # a node still starting
                error = f"{type(exc).__name__}: {exc}"
            if last and not error and all(v == last[0] for v in last) \
                    and set(last[0]) >= ids - {""}:
                took = time.monotonic() - started
                return Check("eventually_vectors_agree", True,
                             {"seconds": round(took, 3), "origins": len(last[0]),
                              "events": sum(last[0].values())})
            if time.monotonic() - started > deadline:
                break
            time.sleep(interval)  # the poll's own interval, bounded by the deadline
    finally:
        for c in clients:
            c.close()
    return Check("eventually_vectors_agree", False,
                 {"seconds": round(time.monotonic() - started, 3)},
                 [f"vectors {last}", error] if error else [f"vectors {last}"])


@dataclass
class Snapshot:
    """Every node's full list (scope mesh), read once after agreement."""

    lists: list[list[Any]]

    @classmethod
    def take(cls, cluster: Cluster) -> Snapshot:
        clients = _clients(cluster)
        try:
            return cls([list(c.list(scope="mesh")) for c in clients])
        finally:
            for c in clients:
                c.close()


Windows = dict[int, list[tuple[float, float]]]


def lost_with_disk(restored: Windows | None, origin: int, t: float) -> bool:
    """Was an op acknowledged at drill time ``t`` on pod ``origin`` between a backup and
    the wipe that destroyed the disk it was on? If it had not replicated by then, it is
    gone with that disk: the mesh cannot carry what never left the node."""
    return any(began <= t <= wiped for began, wiped in (restored or {}).get(origin, []))


def finally_no_write_lost(cluster: Cluster, ledger: Ledger, snap: Snapshot,
                          restored: Windows | None = None) -> Check:
    """``restored``: pod index -> (backup began, data wiped) of each restore, in drill
    seconds. A remember acknowledged on that pod in between may come back with an empty
    text (the text never left the node; the node counts it in ``lost_texts``) and must
    be everywhere by id, or, if it had not replicated before the wipe, nowhere (counted
    as lost with the disk). Every other one must have its exact text on its origin."""
    clients = _clients(cluster)
    origins = [p.node_id for p in cluster.pods]
    by_node = [{m.id: m for m in lst} for lst in snap.lists]
    missing: list[str] = []
    checked = texts_lost = with_disk = 0

    try:
        reported = sum(c.status().lost_texts for c in clients)
        for w in ledger.writes.values():
            if w.forgotten or w.maybe_forgotten:
                continue
            checked += 1
            at_risk = lost_with_disk(restored, w.origin, w.t)
            if at_risk and all(w.id not in mems for mems in by_node):
                with_disk += 1
                continue
            try:
                got = clients[w.origin].get(w.id)
                if got.local and got.text == "" and at_risk:
                    texts_lost += 1
                elif got.text != w.text or not got.local:
                    missing.append(f"{w.id} on its origin host{w.origin}: text {got.text!r}")
            except Exception as exc:
                missing.append(f"{w.id} on its origin host{w.origin}: {type(exc).__name__}")
            for i, mems in enumerate(by_node):
                m = mems.get(w.id)
                if m is None or m.origin != origins[w.origin]:
                    missing.append(f"{w.id} (from host{w.origin}) on host{i}")
    finally:
        for c in clients:
            c.close()
    if texts_lost > reported:
        missing.append(f"{texts_lost} texts lost by restores, the nodes report {reported}")
    return Check("finally_no_write_lost", not missing,
                 {"writes_checked": checked, "lost": len(missing),
                  "texts_lost_by_restore": texts_lost, "lost_texts_reported": reported,
                  "lost_with_disk": with_disk},
                 missing)


def finally_no_duplicates(ledger: Ledger, snap: Snapshot) -> Check:
    dups: list[str] = []
    canary = re.compile(rf"chaos-{ledger.tag}-[0-9a-f]{{16}}")
    texts: Counter[str] = Counter()
    for i, lst in enumerate(snap.lists):
        ids = Counter(m.id for m in lst)
        dups += [f"{mid} {n} times on host{i}" for mid, n in ids.items() if n > 1]
        for m in lst:
            if m.local:
                texts.update(canary.findall(m.text))
    dups += [f"canary {t} in {n} memories" for t, n in texts.items() if n > 1]
    return Check("finally_no_duplicates", not dups, {"duplicated": len(dups)}, dups)


def finally_no_resurrection(ledger: Ledger, snap: Snapshot,
                            restored: Windows | None = None) -> Check:
    """Every acknowledged forget is gone everywhere, except one acknowledged on a pod
    between its backup and its wipe that had not replicated: undone with the disk, it
    must then be undone everywhere alike (counted)."""
    forgotten = {w.id: w for w in ledger.writes.values() if w.forgotten}
    where: dict[str, list[int]] = {}
    for i, lst in enumerate(snap.lists):
        for m in lst:
            if m.id in forgotten:
                where.setdefault(m.id, []).append(i)
    back: list[str] = []
    undone = 0
    for mid, hosts in where.items():
        w = forgotten[mid]
        if lost_with_disk(restored, w.origin, w.t_change) and len(hosts) == len(snap.lists):
            undone += 1
        else:
            back += [f"{mid} on host{i}" for i in hosts]
    return Check("finally_no_resurrection", not back,
                 {"forgets_checked": len(forgotten), "resurrected": len(back),
                  "forgets_undone_with_disk": undone}, back)


def finally_updates_agree(cluster: Cluster, ledger: Ledger, snap: Snapshot,
                          restored: Windows | None = None) -> Check:
    by_node = [{m.id: m for m in lst} for lst in snap.lists]
    bad: list[str] = []
    checked = 0
    for w in ledger.writes.values():
        if w.forgotten or w.maybe_forgotten:
            continue
        own = by_node[w.origin].get(w.id)
        if own is None:
            continue  # finally_no_write_lost reports it
        checked += 1
        v = own.metadata.get("v")
        floor = 0 if lost_with_disk(restored, w.origin, w.t_change) else w.version
        if not isinstance(v, int) or not floor <= v <= w.attempted:
            bad.append(f"{w.id} on its origin: v={v!r}, acknowledged {w.version}, "
                       f"attempted up to {w.attempted}")
        for i, mems in enumerate(by_node):
            m = mems.get(w.id)
            if m is not None and m.metadata != own.metadata:
                bad.append(f"{w.id} on host{i}: {m.metadata} != origin's {own.metadata}")
    return Check("finally_updates_agree", not bad,
                 {"memories_checked": checked, "disagreeing": len(bad)}, bad)


def finally_no_canary_on_wire(pcap: Path, ledger: Ledger, capture_report: str) -> Check:
    if not pcap.is_file():
        return Check("finally_no_canary_on_wire", False, {}, [f"no capture at {pcap}"])
    raw = pcap.read_bytes()
    found: list[str] = []
    if f"chaos-{ledger.tag}-".encode() in raw:
        found.append("the canary prefix")
    bare = {t.rsplit("-", 1)[1] for t in ledger.all_canaries()}
    hexes = {h.decode() for h in re.findall(rb"[0-9a-f]{16}", raw)}
    found += sorted(bare & hexes)
    dropped = re.search(r"(\d+) packets? dropped by kernel", capture_report)
    return Check("finally_no_canary_on_wire", not found,
                 {"capture_bytes": len(raw), "canaries_searched": len(bare),
                  "found": len(found),
                  "kernel_dropped": int(dropped.group(1)) if dropped else None}, found)


class ResourceMonitor:
    """Samples threads and RSS of every pod process every ``interval`` seconds."""

    def __init__(self, cluster: Cluster, interval: float = 2.0) -> None:
        self.cluster, self.interval = cluster, interval
        self.peak: dict[str, dict[str, float]] = {}
        self.samples: list[tuple[float, str, int, float]] = []  # t, process, threads, MB
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True, name="resources")
        self.t0 = time.monotonic()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(10)

    def _run(self) -> None:
        for _ in range(1_000_000):
            self.sample()
            if self._stop.wait(self.interval):
                return

    def sample(self) -> None:
        t = time.monotonic() - self.t0
        for pod in self.cluster.pods:
            for name, pid in pod.pids().items():
                threads, rss = _proc_status(pid)
                if threads is None:
                    continue
                key = f"{pod.name}.{name}"
                peak = self.peak.setdefault(key, {"threads": 0, "rss_mb": 0.0})
                peak["threads"] = max(peak["threads"], threads)
                peak["rss_mb"] = max(peak["rss_mb"], rss)
                self.samples.append((round(t, 2), key, threads, rss))


def _proc_status(pid: int) -> tuple[int | None, float]:
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return None, 0.0
    fields = dict(line.split(":", 1) for line in text.splitlines() if ":" in line)
    threads = int(fields.get("Threads", "0").strip())
    rss_kb = int(fields.get("VmRSS", "0 kB").split()[0])
    return threads, round(rss_kb / 1024, 1)


def finally_resources_bounded(monitor: ResourceMonitor, max_threads: int = MAX_THREADS,
                              max_rss_mb: float = MAX_RSS_MB) -> Check:
    over = [f"{k}: {v['threads']} threads, {v['rss_mb']} MB" for k, v in monitor.peak.items()
            if v["threads"] > max_threads or v["rss_mb"] > max_rss_mb]
    worst_t = max((v["threads"] for v in monitor.peak.values()), default=0)
    worst_m = max((v["rss_mb"] for v in monitor.peak.values()), default=0.0)
    return Check("finally_resources_bounded", not over,
                 {"max_threads": worst_t, "max_rss_mb": worst_m, "bound_threads": max_threads,
                  "bound_rss_mb": max_rss_mb, "peaks": monitor.peak}, over)
