"""The pure replication core at scale: N FederationCores in one process over the
simulator's network (federation.sim.simulation), no sockets, no clock.

    python -m bench simulate --nodes 16,64,256,1000,10000 [--writes 10] [--loss PCT]
        [--fanout F] [--partition FRACTION:ROUNDS] [--json OUT] [--plot OUT.png]

For each N: build the mesh (each node told about ``--seeds-per-node`` random peers plus
its ring successor, as static discovery would), let membership settle for
``--warmup-rounds`` anti-entropy rounds, then write W events on random nodes, spread
evenly over one anti-entropy interval, and step tick by tick until every node's
watermark covers every write (ages count from each write's own tick). One tick is one
message hop (the network delivers in 1 tick unless ``--max-delay`` says otherwise) and
an anti-entropy round is ``anti_entropy_interval_ticks`` ticks (10 in the lan preset).

Reported per N: ticks and rounds to 100% and to 99.99% of nodes (worst write, and the
median write), the residue (mean share of nodes lacking a write) by age in ticks, messages and bytes
(the core's size model of the protobuf messages) from the writes to convergence, and
the two references: log2(N) and the Serf convergence model (see _plots.serf_rounds).

With ``--partition F:R`` the first F*N nodes are cut off from the rest for R rounds
after the writes (which land on both sides), then healed; the ``after_heal`` figures
count from the heal. Signature verification is skipped above 256 nodes (the config's
``insecure_skip_signature_verification``, simulator only): every other check runs.
"""

from __future__ import annotations

import argparse
import math
import random
import sys
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from bench._common import RESULTS, load_average, machine_info, write_json
from bench._plots import serf_rounds

if TYPE_CHECKING:
    from federation.config import FederationConfig

DESCRIPTION = "the pure core simulated: rounds, messages and bytes to converge, up to 10k nodes"
VERIFY_UP_TO = 256


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--nodes", default=None,
                        help="comma-separated sizes (default 16,64,256,1000,2000,5000,10000; "
                             "quick 16,64,256,1000)")
    parser.add_argument("--writes", type=int, default=None, help="default 10 (quick 5)")
    parser.add_argument("--loss", type=float, default=0.0, help="percent of messages dropped")
    parser.add_argument("--fanout", type=int, default=None, help="default: the preset's (3)")
    parser.add_argument("--preset", choices=("local", "lan", "kubernetes"), default="lan")
    parser.add_argument("--partition", default="", metavar="FRACTION:ROUNDS",
                        help="cut the first FRACTION of nodes off for ROUNDS rounds")
    parser.add_argument("--seeds-per-node", type=int, default=8)
    parser.add_argument("--warmup-rounds", type=float, default=2.0)
    parser.add_argument("--max-delay", type=int, default=1, help="ticks (delay uniform in 1..)")
    parser.add_argument("--max-rounds", type=float, default=60.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget: sizes that would not fit are skipped "
                             "(default 25; quick 3)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument("--plot", type=Path, default=None, metavar="OUT.png")


def say(message: str) -> None:
    print(f"[bench simulate {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


def config_for(preset: str, n: int, fanout: int | None = None) -> FederationConfig:
    """The preset's config for an N-node simulation: signatures verified up to
    VERIFY_UP_TO nodes (the simulator's only shortcut above that)."""
    from federation.config import FederationConfig

    make = {"local": FederationConfig.local, "lan": FederationConfig.lan,
            "kubernetes": FederationConfig.kubernetes}[preset]
    overrides: dict[str, Any] = {"insecure_skip_signature_verification": n > VERIFY_UP_TO}
    if fanout is not None:
        overrides["fanout"] = fanout
    return make(**overrides)


def one(n: int, args: argparse.Namespace, writes: int) -> dict[str, Any]:
    from federation.sim.network import NetConfig
    from federation.sim.simulation import Simulation

    config = config_for(args.preset, n, args.fanout)
    interval = config.anti_entropy_interval_ticks
    t0 = time.perf_counter()
    sim = Simulation(n, config=config, seed=args.seed + n,
                     net=NetConfig(drop=args.loss / 100.0, max_delay=args.max_delay),
                     seeds_per_node=min(n - 1, args.seeds_per_node))
    sim.rounds(args.warmup_rounds)
    members = sorted(sum(1 for _ in node.core.membership) for node in sim.nodes)
    built = time.perf_counter() - t0
    rng = random.Random(args.seed * 7919 + n)
    m0, b0, e0, _ = sim.totals()
    cut, cut_rounds = _partition(args.partition)
    if cut:
        sim.partition([range(int(cut * n))])
    # Writes are spread evenly over one anti-entropy interval (all at once with
    # --partition): every node's rounds are in phase in the simulator (discovery at
    # tick 0 starts them all), so a single write's phase against them would decide the
    # result; spreading averages over phases. Each write's age counts from its own tick.
    origins_at = rng.sample(range(n), min(writes, n))
    w_count = len(origins_at)
    starts = [0 if cut else (k * interval) // w_count for k in range(w_count)]
    targets: list[tuple[str, int]] = []
    need = math.ceil(0.9999 * n)
    full_at: list[int | None] = [None] * w_count
    most_at: list[int | None] = [None] * w_count
    residue_sum: list[float] = []
    heal_tick = int(cut_rounds * interval) if cut else 0
    limit = int(args.max_rounds * interval) + heal_tick + interval
    tick = 0
    while tick < limit and (len(targets) < w_count or any(t is None for t in full_at)):
        while len(targets) < w_count and starts[len(targets)] <= tick:
            e = sim.put(origins_at[len(targets)])
            targets.append((e.origin, e.seq))
        if cut and tick == heal_tick:
            sim.heal()
        sim.step()
        tick += 1
        by_origin: dict[str, list[int]] = {}
        for origin in {o for o, _ in targets}:
            by_origin[origin] = sorted(node.core.replica.watermark(origin)
                                       for node in sim.nodes)
        for w, (origin, seq) in enumerate(targets):
            if full_at[w] is not None:
                continue
            age = tick - starts[w]
            have = n - _first_at_least(by_origin[origin], seq)
            while len(residue_sum) < age:
                residue_sum.append(0.0)
            residue_sum[age - 1] += (n - have) / n
            if most_at[w] is None and have >= need:
                most_at[w] = age
            if have == n:
                full_at[w] = age
    residue = [round(x / w_count, 6) for x in residue_sum]
    m1, b1, e1, kinds = sim.totals()
    converged = all(t is not None for t in full_at)
    verified = sim.converged() if converged else False
    done = [t for t in full_at if t is not None]
    worst = max(done) if converged else None
    worst_most = max(t for t in most_at if t is not None) if all(most_at) else None
    msgs, size = m1 - m0, b1 - b0
    out: dict[str, Any] = {
        "nodes": n, "writes": len(targets), "converged": converged, "verified": verified,
        "ticks_to_converge": worst,
        "ticks_to_99_99": worst_most,
        "rounds_to_converge": round(worst / interval, 2) if worst else None,
        "median_write_ticks": sorted(done)[len(done) // 2] if done else None,
        "after_heal_ticks": (worst - heal_tick) if (cut and worst) else None,
        "write_ticks": starts,
        "messages": msgs, "bytes": size, "events_sent": e1 - e0,
        "messages_per_node_per_write": round(msgs / n / len(targets), 2),
        "bytes_per_node_per_write": round(size / n / len(targets), 1),
        "events_sent_per_replicated_entry": round((e1 - e0) / (len(targets) * (n - 1)), 3),
        "residue_by_tick": residue,
        "residue_note": "mean over writes of the share of nodes lacking it, by ticks since "
                        "each write",
        "residue_by_round": residue[interval - 1::interval],
        "log2_n": round(math.log2(n), 2),
        "serf_rounds": round(serf_rounds(n, config.fanout, args.loss), 2),
        "members_known_median": members[len(members) // 2],
        "signatures_verified": n <= VERIFY_UP_TO,
        "seconds": round(time.perf_counter() - t0, 1), "build_seconds": round(built, 1),
    }
    del kinds
    return out


def _first_at_least(sorted_marks: list[int], seq: int) -> int:
    import bisect

    return bisect.bisect_left(sorted_marks, seq)


def _partition(spec: str) -> tuple[float, float]:
    if not spec:
        return 0.0, 0.0
    frac, _, rounds = spec.partition(":")
    f, r = float(frac), float(rounds or 5)
    if not 0 < f < 1 or r <= 0:
        raise ValueError("--partition FRACTION:ROUNDS with 0 < FRACTION < 1, ROUNDS > 0")
    return f, r


def table(r: dict[str, Any]) -> str:
    head = ("N", "ticks 100%", "median write", "ticks 99.99%", "AE rounds", "log2 N",
            "Serf model",
            "msgs/node/write", "bytes/node/write", "residue after 1 round", "wall s")
    lines = [" | ".join(head), " | ".join("---" for _ in head)]
    for x in r["runs"]:
        if x.get("skipped"):
            lines.append(f"{x['nodes']} | skipped: {x['skipped']}")
            continue
        res = x["residue_by_round"][0] if x["residue_by_round"] else None
        lines.append(" | ".join(str(v) for v in (
            x["nodes"], x["ticks_to_converge"], x["median_write_ticks"], x["ticks_to_99_99"],
            x["rounds_to_converge"],
            x["log2_n"], x["serf_rounds"], x["messages_per_node_per_write"],
            x["bytes_per_node_per_write"], res, x["seconds"])))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    sizes = [int(s) for s in (args.nodes or ("16,64,256,1000" if quick else
                                             "16,64,256,1000,2000,5000,10000")).split(",")]
    writes = args.writes or (5 if quick else 10)
    budget = (args.minutes or (3.0 if quick else 25.0)) * 60
    out = args.json or RESULTS / ("simulate-quick.json" if quick else "simulate.json")
    plot = args.plot or out.with_suffix(".png")
    from federation.config import FederationConfig

    base = {"local": FederationConfig.local, "lan": FederationConfig.lan,
            "kubernetes": FederationConfig.kubernetes}[args.preset]()
    result: dict[str, Any] = {
        "benchmark": "simulate", "quick": quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": machine_info(), "preset": args.preset, "writes": writes,
        "loss": args.loss, "fanout": args.fanout or base.fanout,
        "partition": args.partition, "seeds_per_node": args.seeds_per_node,
        "warmup_rounds": args.warmup_rounds, "max_delay_ticks": args.max_delay,
        "anti_entropy_interval_ticks": base.anti_entropy_interval_ticks,
        "tick_ms": base.tick_ms,
        "serf_model": "fraction(x) = 1 / (1 + (N+1) exp(-fanout/2 * (1-loss) * x)); rounds "
                      "to 99.99% = ln((N+1) * 0.9999 / 0.0001) / (fanout/2 * (1-loss)) "
                      "(Serf's convergence simulator; 8.92 at N=64, fanout 3)",
        "runs": [],
    }
    deadline = time.monotonic() + budget
    per_node_s = None
    for n in sizes:
        left = deadline - time.monotonic()
        if per_node_s is not None and per_node_s * n * 1.5 > left:
            say(f"N={n}: skipped, would take ~{per_node_s * n:.0f}s and {left:.0f}s are left")
            result["runs"].append({"nodes": n, "skipped": f"time budget ({budget / 60:g} min)"})
            continue
        say(f"N={n}: {writes} writes")
        r = one(n, args, writes)
        per_node_s = max(per_node_s or 0.0, r["seconds"] / n)
        say(f"N={n}: 100% in {r['ticks_to_converge']} ticks ({r['rounds_to_converge']} "
            f"rounds), 99.99% in {r['ticks_to_99_99']}; Serf {r['serf_rounds']}; "
            f"{r['seconds']}s")
        result["runs"].append(r)
        write_json(out, result)
    result["loadavg_at_end"] = load_average()
    write_json(out, result)
    from bench import _plots

    if _plots.simulate(result, plot):
        result["plot"] = str(plot)
    print(table(result))
    say(f"results in {out}")
    return 0
