"""The convergence runs the README's figures need beyond 3 nodes on loopback.

    python -m bench scale [--quick] [--only loopback16,netns]

- ``loopback16``: 16 nodes on loopback (star), as ``bench convergence --nodes 16``, at
  the default 20 writes/s, and again at 5 writes/s (``--slow-rate``): 16 node processes
  replicating 20 writes/s take about 2 cores of this 2-core machine, so the first run
  shows the latency of a saturated machine and the second the protocol's; the slow
  run is repeated with the ``lan`` preset (fanout 3, 10 hops), the one meant for tens
  of nodes (``local``: fanout 2, 3 hops, for a few nodes on one host).
- ``loopback32``: 32 nodes on loopback, ``lan`` preset, at 5 writes/s (``--slow-rate``):
  propagation, p99 and resident memory per node.
- ``netns25``: 25 network-namespace hosts, 100 ms one-way delay on gossip packets, ``lan``
  preset, 20 writes/s: median and max latency and messages per write (the Gossip
  Glomers 3d bar: median < 400 ms, max < 600 ms, < 30 messages per write).
- ``netns``: 3 nodes on 3 network-namespace hosts with 10% loss and 50 ms one-way delay
  on gossip packets, as ``bench convergence --hosts netns --loss 10 --delay 50``. Skipped
  (with the reason in its result file) where namespaces, iptables or NetfilterQueue
  are missing; without delay support it runs with loss only and says so.

Each run writes the same result file and plot as the equivalent ``bench convergence``.
"""

from __future__ import annotations

import argparse
import dataclasses
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, load_average, machine_info, write_json
from bench._mesh import MeshOptions, MeshUnavailable
from bench.convergence import measure, pick_median, result_name, table

DESCRIPTION = "convergence at 16 nodes on loopback and across netns hosts with loss + delay"
RUNS = ("loopback16", "netns", "loopback32", "netns25")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--only", default=",".join(RUNS))
    parser.add_argument("--writes", type=int, default=None, help="default 200 (quick 60)")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--slow-rate", type=float, default=5.0,
                        help="a second 16-node run at this rate (0 or --quick: none)")
    parser.add_argument("--repeat", type=int, default=None,
                        help="runs per configuration, the median p99 run reported "
                             "(default 3; quick 1)")
    parser.add_argument("--quick", action="store_true")


def say(message: str) -> None:
    print(f"[bench scale {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def configs(only: list[str], rate: float, slow: float) -> list[tuple[MeshOptions, float]]:
    out = []
    if "loopback16" in only:
        out.append((MeshOptions(nodes=16), rate))
        if slow:
            out.append((MeshOptions(nodes=16), slow))
            out.append((MeshOptions(nodes=16, preset="lan"), slow))
    if "netns" in only:
        out.append((MeshOptions(nodes=3, hosts="netns", loss=10.0, delay_ms=50.0), rate))
    if "loopback32" in only:
        out.append((MeshOptions(nodes=32, preset="lan"), slow or 5.0))
    if "netns25" in only:
        out.append((MeshOptions(nodes=25, hosts="netns", delay_ms=100.0, preset="lan"), rate))
    return out


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    writes = args.writes or (60 if quick else 200)
    only = [s.strip() for s in args.only.split(",") if s.strip()]
    slow = 0.0 if quick else args.slow_rate
    repeat = args.repeat or (1 if quick else 3)
    for o, rate in configs(only, args.rate, slow):
        n_writes = writes if rate >= args.rate else max(20, writes // 2)
        out = RESULTS / f"{result_name(o, quick, rate)}.json"
        head: dict[str, Any] = {
            "benchmark": "convergence", "quick": quick,
            "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "command": f"python -m bench scale{' --quick' if quick else ''} "
                       f"(= convergence --nodes {o.nodes} --hosts {o.hosts}"
                       + (f" --loss {o.loss:g} --delay {o.delay_ms:g}" if o.hosts == "netns"
                          else "") + f" --writes {n_writes} --rate {rate:g})",
            "machine": machine_info(),
        }
        work = Path(tempfile.mkdtemp(prefix="memnode-bench-scale-"))
        say(o.describe())
        try:
            timeout = 30.0 if o.hosts == "netns" else 10.0
            try:
                r = pick_median([measure(o, n_writes, rate, work / f"run{k}",
                                         timeout=timeout, log=say) for k in range(repeat)])
            except MeshUnavailable as exc:
                if o.delay_ms and "delay" in str(exc):
                    say(f"no delay here ({exc}); running with loss only")
                    o2 = dataclasses.replace(o, delay_ms=0.0)
                    r = measure(o2, n_writes, rate, work / "loss-only", timeout=timeout,
                                log=say)
                    r["delay_unavailable"] = str(exc)
                else:
                    say(f"skipped: {exc}")
                    write_json(out, {**head, "skipped": str(exc), "nodes": o.nodes,
                                     "hosts": o.hosts, "loss": o.loss, "delay": o.delay_ms})
                    continue
        finally:
            shutil.rmtree(work, ignore_errors=True)
        result = {**head, **r, "loadavg_at_end": load_average()}
        write_json(out, result)
        from bench import _plots

        _plots.convergence(result, out.with_suffix(".png"))
        print(table(result))
    return 0
