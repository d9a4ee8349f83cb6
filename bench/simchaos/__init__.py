"""The chaos drill's fault mix in the pure simulator, for thousands of nodes.

    python -m bench simchaos --nodes N --rounds R [--seed S] [--rate OPS] [--json OUT]
        [--preset lan] [--drivers kill,partition,loss,restore] [--max-restores K]

The same load and faults as ``python -m bench chaos`` (bench/chaos/), on the
simulator of federation.sim: a remember / update / forget load from every node with
a ledger of acknowledged operations (load.py), kills and restarts from the durable
store, partitions (halves, one node isolated, one way) with a forget on the cut-off
side, loss and delay on some nodes' links, nodes wiped and restored from an earlier
backup (faults.py); after the last heal, the real drill's checks (checks.py). One
anti-entropy round stands for one second of the real drill. Seeded and
deterministic: the same options give the same report. Exits 1 if a check failed.
"""

from __future__ import annotations

import argparse
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, load_average, machine_info, write_json

DESCRIPTION = "the chaos drill's fault mix in the pure simulator, 1,000+ nodes, same checks"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", type=int, default=None, help="default 1000 (quick 50)")
    parser.add_argument("--rounds", type=int, default=None,
                        help="anti-entropy rounds of load and faults (default 200; quick 100)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=10.0,
                        help="operations per round, all nodes together (default 10)")
    parser.add_argument("--preset", choices=("local", "lan", "kubernetes"), default="lan")
    parser.add_argument("--drivers", default="kill,partition,loss,restore")
    parser.add_argument("--max-restores", type=int, default=3)
    parser.add_argument("--agree-rounds", type=int, default=120,
                        help="bound of eventually_vectors_agree, in rounds after the heal")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")


def say(message: str) -> None:
    print(f"[bench simchaos {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


def summary(r: dict[str, Any]) -> str:
    o, ops, sec = r["options"], r["operations"], r["seconds"]
    agree = r["checks"]["eventually_vectors_agree"]
    lines = [
        f"{o['nodes']} nodes, {o['rounds']} rounds, seed {o['seed']}: "
        f"{'every check passed' if r['ok'] else 'A CHECK FAILED'}",
        "operations acknowledged: " + ", ".join(f"{k} {v}" for k, v in
                                                 sorted(ops["acknowledged"].items()))
        + "; refused (node down or restoring): " + (", ".join(
            f"{k} {v}" for k, v in sorted(ops["refused"].items())) or "none"),
        "faults: " + ", ".join(f"{k} {v}" for k, v in r["faults"].items()),
        f"vectors agreed {agree.get('rounds')} rounds ({agree.get('simulated_seconds')} "
        f"simulated s) after the last heal",
        f"messages per node {r['messages_per_node']}, bytes per node {r['bytes_per_node']}",
        f"wall time {sec['total']} s (build {sec['build']}, chaos {sec['chaos']}, "
        f"agree {sec['agree']}; CPU {sec['cpu']} s)",
    ]
    for name, c in r["checks"].items():
        figures = {k: v for k, v in c.items() if k not in ("ok", "examples")}
        lines.append(f"  {'ok  ' if c['ok'] else 'FAIL'} {name} {figures}")
        lines += [f"       {e}" for e in c["examples"][:5]]
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    from bench.simchaos.drill import SimDrillOptions, run_drill

    quick = bool(args.quick)
    nodes = args.nodes or (50 if quick else 1000)
    rounds = args.rounds or (100 if quick else 200)
    o = SimDrillOptions(nodes=nodes, rounds=rounds, seed=args.seed, rate=args.rate,
                        preset=args.preset,
                        drivers=tuple(d for d in args.drivers.split(",") if d),
                        max_restores=args.max_restores, agree_rounds=args.agree_rounds)
    out = args.json or RESULTS / (f"simchaos-{nodes}x{rounds}-s{args.seed}"
                                  + ("-quick" if quick else "") + ".json")
    say(f"{nodes} nodes, {rounds} rounds, seed {args.seed}")
    result = run_drill(o, say)
    report = {"benchmark": "simchaos", "quick": quick,
              "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
              "command": " ".join(["python -m bench", *sys.argv[1:]]),
              "machine": machine_info(), **result, "loadavg_at_end": load_average()}
    write_json(out, report)
    print(summary(report))
    say(f"results in {out}")
    return 0 if report["ok"] else 1
