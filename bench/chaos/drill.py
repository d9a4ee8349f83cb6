"""One chaos drill: start the pods, capture the bridge, run the load and the fault
drivers together for the drill's length, heal everything, then run the checks.

:func:`run_drill` returns the report (a dict, what ``--json`` writes); the test suite
calls it with a short length and a fixed seed.
"""

from __future__ import annotations

import random
import secrets
import signal
import tempfile
import time
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bench.chaos import checks
from bench.chaos._driver import Driver
from bench.chaos.liveness import LivenessProbe
from bench.chaos.load import Ledger, LoadGenerator
from bench.chaos.parallel_driver_clock import ClockDriver
from bench.chaos.parallel_driver_disk import DiskDriver
from bench.chaos.parallel_driver_kill import KillDriver
from bench.chaos.parallel_driver_loss import LossDriver
from bench.chaos.parallel_driver_partition import PartitionDriver
from bench.chaos.parallel_driver_restore import RestoreDriver
from bench.chaos.pods import GOSSIP_PORT, Cluster

DRIVERS = {"kill": KillDriver, "partition": PartitionDriver, "loss": LossDriver,
           "disk": DiskDriver, "restore": RestoreDriver, "clock": ClockDriver}


@dataclass(frozen=True)
class DrillOptions:
    hosts: int = 3
    seconds: float = 60.0
    rate: float = 10.0
    seed: int = 1
    clients: int = 4
    drivers: tuple[str, ...] = ("kill", "partition", "loss", "disk", "restore", "clock")
    agree_deadline: float = 60.0
    work: Path | None = None


def run_drill(o: DrillOptions, say: Any = print) -> dict[str, Any]:
    work = o.work or Path(tempfile.mkdtemp(prefix="memnode-chaos-"))
    work.mkdir(parents=True, exist_ok=True)
    tag = random.Random(o.seed).getrandbits(32).to_bytes(4, "big").hex() + secrets.token_hex(2)
    # the last host's data dir is on a small tmpfs when the disk driver runs
    cluster = Cluster(o.hosts, work, small_disk=(o.hosts - 1,) if "disk" in o.drivers else ())
    report: dict[str, Any] = {"options": {"hosts": o.hosts, "seconds": o.seconds,
                                          "rate": o.rate, "seed": o.seed,
                                          "clients": o.clients, "drivers": list(o.drivers)},
                              "work": str(work)}
    drivers: list[Driver] = []
    liveness: LivenessProbe | None = None
    tcpdump = None
    capture_report = ""
    try:
        cluster.create()
        pcap = work / "bridge.pcap"
        tcpdump = cluster.lab.start_capture(pcap, f"tcp port {GOSSIP_PORT}")
        started = time.monotonic()
        cluster.start_all()
        say(f"{o.hosts} pods up in {time.monotonic() - started:.1f}s ({work})")
        t0 = time.monotonic()
        ledger = Ledger(tag)
        monitor = checks.ResourceMonitor(cluster)
        monitor.start()
        load = LoadGenerator(cluster, ledger, o.rate, o.seconds, o.seed, o.clients, t0)
        drivers = [DRIVERS[d](cluster, o.seed, t0) for d in o.drivers]
        for d in drivers:
            if isinstance(d, PartitionDriver):
                d.on_cut = load.forget_on
        liveness = LivenessProbe(cluster, o.seed, t0)
        liveness.start(o.seconds + o.agree_deadline + 600)  # until the checks are done
        load.start()
        for d in drivers:
            d.start(o.seconds)
        for t in load.threads:
            t.join(o.seconds + 120)
        load.stop()
        for d in drivers:
            d.stop()
        t_heal = time.monotonic()
        say(f"load done at {t_heal - t0:.1f}s, every fault healed; checking")

        restored = {i: w for d in drivers if isinstance(d, RestoreDriver)
                    for i, w in d.windows.items()}
        agree = checks.eventually_vectors_agree(cluster, o.agree_deadline)
        snap = checks.Snapshot.take(cluster)
        results = [agree,
                   checks.finally_no_write_lost(cluster, ledger, snap, restored),
                   checks.finally_no_duplicates(ledger, snap),
                   checks.finally_no_resurrection(ledger, snap, restored),
                   checks.finally_updates_agree(cluster, ledger, snap, restored)]
        monitor.stop()
        liveness.stop()
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(30)
        assert tcpdump.stderr is not None
        capture_report = cluster.lab.capture_banner + tcpdump.stderr.read().decode(
            errors="replace")
        results += [checks.finally_no_canary_on_wire(pcap, ledger, capture_report),
                    checks.finally_resources_bounded(monitor)]
        faults: Counter[str] = Counter()
        for d in drivers:
            faults.update(d.counts())
        report.update({
            "ok": all(c.ok for c in results),
            "ops_acknowledged": dict(ledger.acked),
            "ops_failed": dict(ledger.failed),
            "faults": dict(faults),
            "driver_errors": [e for d in [*drivers, liveness] for e in d.errors],
            "liveness_restarts": [vars(f) for f in liveness.faults],
            "time_to_agree_s": agree.figures.get("seconds"),
            "lost": _fig(results, "finally_no_write_lost", "lost"),
            "duplicated": _fig(results, "finally_no_duplicates", "duplicated"),
            "resurrected": _fig(results, "finally_no_resurrection", "resurrected"),
            "canaries_on_wire": _fig(results, "finally_no_canary_on_wire", "found"),
            "checks": {c.name: c.to_json() for c in results},
            "timeline": {"ops": ledger.timeline,
                         "faults": [vars(f) | {"driver": d.name} for d in drivers
                                    for f in d.faults],
                         "resources": monitor.samples},
            "restarts": {p.name: {n: pr.starts - 1 for n, pr in p.procs.items()}
                         for p in cluster.pods},
        })
        return report
    finally:
        for d in drivers:
            d.stop_event.set()
        if liveness is not None:
            liveness.stop_event.set()
        if tcpdump is not None and tcpdump.poll() is None:
            tcpdump.send_signal(signal.SIGINT)
        if cluster.lab is not None:
            cluster.nft_delete("bridge", f"mmpart{cluster.lab.tag}")
        cluster.teardown()


def _fig(results: list[checks.Check], name: str, key: str) -> Any:
    return next(c.figures.get(key) for c in results if c.name == name)


def summary(report: dict[str, Any]) -> str:
    o = report["options"]
    lines = [f"chaos drill: {o['hosts']} hosts, {o['seconds']:.0f}s, {o['rate']:g} ops/s, "
             f"seed {o['seed']}, drivers {', '.join(o['drivers'])}",
             f"  ops acknowledged: {report['ops_acknowledged']}  (raised: "
             f"{report['ops_failed']})",
             f"  faults injected:  {report['faults']}",
             f"  restarts:         {report['restarts']}",
             f"  liveness restarts (a process stopped answering): "
             f"{len(report['liveness_restarts'])} {report['liveness_restarts'][:3]}",
             f"  time to agree after the last heal: {report['time_to_agree_s']} s",
             f"  lost {report['lost']}, duplicated {report['duplicated']}, resurrected "
             f"{report['resurrected']}, canaries on the wire {report['canaries_on_wire']}"]
    for name, c in report["checks"].items():
        figs = {k: v for k, v in c.items() if k not in ("ok", "examples", "peaks")}
        lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {name} {figs}")
        lines += [f"         {e}" for e in c["examples"][:5]]
    if report["driver_errors"]:
        lines.append(f"  driver errors: {report['driver_errors'][:5]}")
    lines.append("  PASS" if report["ok"] else "  FAIL")
    return "\n".join(lines)
