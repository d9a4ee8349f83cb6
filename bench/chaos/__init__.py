"""``python -m bench chaos``: N hosts in network namespaces in the pod shape, steady
remember / update / forget load from several clients, kill -9, partitions and packet
loss together, then the checks of bench/chaos/checks.py on what was acknowledged.

Modules: ``pods`` (hosts and processes), ``load`` (clients and the ledger),
``parallel_driver_*`` (one fault each), ``checks`` (``eventually_*`` / ``finally_*``),
``drill`` (the run), ``plot``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DESCRIPTION = __doc__


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--hosts", type=int, default=3, help="pods, one per namespace (3)")
    parser.add_argument("--minutes", type=float, default=2.0, help="drill length (2)")
    parser.add_argument("--rate", type=float, default=10.0, help="operations/s in all (10)")
    parser.add_argument("--seed", type=int, default=1, help="seeds the load and drivers (1)")
    parser.add_argument("--clients", type=int, default=4, help="client threads (4)")
    parser.add_argument("--drivers", default="kill,partition,loss,disk,restore,clock",
                        help="comma-separated fault drivers (all of them: "
                        "kill,partition,loss,disk,restore,clock)")
    parser.add_argument("--agree-deadline", type=float, default=60.0,
                        help="seconds the vectors have to agree after the last heal (60)")
    parser.add_argument("--work", type=Path, default=None, help="keep data and logs here")
    parser.add_argument("--json", type=Path, default=None, help="write the report here")
    parser.add_argument("--plot", type=Path, default=None, help="plot over time (PNG)")
    parser.add_argument("--quick", action="store_true", help="3 hosts, 1 minute")


def run(args: argparse.Namespace) -> int:
    from bench._common import machine_info, write_json
    from bench._mesh import MeshUnavailable
    from bench.chaos.drill import DRIVERS, DrillOptions, run_drill, summary

    drivers = tuple(d for d in args.drivers.split(",") if d)
    unknown = [d for d in drivers if d not in DRIVERS]
    if unknown:
        print(f"unknown drivers {unknown} (known: {', '.join(DRIVERS)})", file=sys.stderr)
        return 2
    minutes = 1.0 if args.quick else args.minutes
    hosts = 3 if args.quick else args.hosts
    options = DrillOptions(hosts=hosts, seconds=minutes * 60, rate=args.rate, seed=args.seed,
                           clients=args.clients, drivers=drivers,
                           agree_deadline=args.agree_deadline, work=args.work)
    try:
        report = run_drill(options, say=lambda s: print(s, file=sys.stderr, flush=True))
    except MeshUnavailable as exc:
        print(f"chaos: cannot run here: {exc}", file=sys.stderr)
        return 77
    report["machine"] = machine_info()
    print(summary(report))
    if args.json:
        write_json(args.json, report)
    if args.plot:
        from bench.chaos.plot import plot

        print(plot(report, args.plot))
    return 0 if report["ok"] else 1
