"""The cost of mutual TLS between sidecars, as ratios against ``--insecure`` in one run.

    python -m bench tls [--writes 200] [--memories 10000] [--pairs 2]

Alternates plaintext and mTLS (plaintext, mTLS, plaintext, mTLS, ...: ``--pairs``
pairs) so that drift in the machine's load hits both alike, for:

- the 3-node loopback write-to-visible latency (bench convergence): p50/p99 ratio
  mTLS / plaintext (> 1: TLS is slower);
- the bulk catch-up of M memories by a new node (bench catchup, nodes only):
  throughput ratio mTLS / plaintext (< 1: TLS is slower).

Ratios are of the medians over the pairs.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, load_average, machine_info, median, write_json
from bench._mesh import MeshOptions
from bench.catchup import measure_catchup
from bench.convergence import measure

DESCRIPTION = "mTLS vs --insecure: 3-node write-to-visible latency and bulk catch-up ratios"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--writes", type=int, default=None, help="default 200 (quick 60)")
    parser.add_argument("--rate", type=float, default=20.0)
    parser.add_argument("--memories", type=int, default=None, help="default 10000 (quick 1000)")
    parser.add_argument("--pairs", type=int, default=None, help="default 2 (quick 1)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")


def say(message: str) -> None:
    print(f"[bench tls {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def _ratio(a: list[float], b: list[float]) -> float | None:
    if not a or not b or not median(b):
        return None
    return round(median(a) / median(b), 3)


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    writes = args.writes or (60 if quick else 200)
    memories = args.memories or (1000 if quick else 10_000)
    pairs = args.pairs or (1 if quick else 2)
    out = args.json or RESULTS / ("tls-quick.json" if quick else "tls.json")
    work = Path(tempfile.mkdtemp(prefix="memnode-bench-tls-"))
    runs: dict[str, list[dict[str, Any]]] = {"latency": [], "catchup": []}
    try:
        for p in range(pairs):
            for tls in (False, True):
                mode = "mTLS" if tls else "plaintext"
                say(f"pair {p + 1}/{pairs}: 3-node latency, {mode}")
                r = measure(MeshOptions(nodes=3, tls=tls), writes, args.rate,
                            work / f"lat{p}{int(tls)}", log=say)
                runs["latency"].append({"tls": tls, "latency_ms": r["latency_ms"],
                                        "from_request_ms": r["from_request_ms"],
                                        "propagation_rate": r["propagation_rate"],
                                        "bytes_per_entry": r["bytes_per_entry"],
                                        "cpu_seconds_per_node": r["cpu_seconds_per_node"]})
            for tls in (False, True):
                mode = "mTLS" if tls else "plaintext"
                say(f"pair {p + 1}/{pairs}: catch-up of {memories}, {mode}")
                c = measure_catchup(memories, work / f"cu{p}{int(tls)}", tls=tls, log=say)
                c.pop("progress", None)
                runs["catchup"].append(c)
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def lat(tls: bool, q: str) -> list[float]:
        return [r["latency_ms"][q] for r in runs["latency"]
                if r["tls"] == tls and r["latency_ms"][q] is not None]

    def thr(tls: bool) -> list[float]:
        return [c["node_per_s"] for c in runs["catchup"] if c["tls"] == tls and c["node_per_s"]]

    result: dict[str, Any] = {
        "benchmark": "tls", "quick": quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": machine_info(), "writes": writes, "memories": memories, "pairs": pairs,
        "runs": runs,
        "latency_p50_ratio": _ratio(lat(True, "p50"), lat(False, "p50")),
        "latency_p99_ratio": _ratio(lat(True, "p99"), lat(False, "p99")),
        "catchup_throughput_ratio": _ratio(thr(True), thr(False)),
        "medians": {"plaintext_p50_ms": median(lat(False, "p50")) if lat(False, "p50") else None,
                    "tls_p50_ms": median(lat(True, "p50")) if lat(True, "p50") else None,
                    "plaintext_p99_ms": median(lat(False, "p99")) if lat(False, "p99") else None,
                    "tls_p99_ms": median(lat(True, "p99")) if lat(True, "p99") else None,
                    "plaintext_catchup_per_s": median(thr(False)) if thr(False) else None,
                    "tls_catchup_per_s": median(thr(True)) if thr(True) else None},
        "loadavg_at_end": load_average(),
    }
    result["medians"] = {k: (round(v, 2) if isinstance(v, float) else v)
                         for k, v in result["medians"].items()}
    write_json(out, result)
    md = result["medians"]
    print(f"mTLS vs plaintext, {pairs} pair(s), same run:\n"
          f"  3-node ack->visible p50: {md['tls_p50_ms']} vs {md['plaintext_p50_ms']} ms "
          f"= {result['latency_p50_ratio']}x\n"
          f"  3-node ack->visible p99: {md['tls_p99_ms']} vs {md['plaintext_p99_ms']} ms "
          f"= {result['latency_p99_ratio']}x\n"
          f"  catch-up of {memories}: {md['tls_catchup_per_s']} vs "
          f"{md['plaintext_catchup_per_s']} memories/s = {result['catchup_throughput_ratio']}x")
    say(f"results in {out}")
    return 0
