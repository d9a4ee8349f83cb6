"""``python -m bench <benchmark> [options]``; ``python -m bench all [--quick]`` runs each.

To add a benchmark: write ``bench/<name>.py`` with ``DESCRIPTION``,
``add_arguments(parser)`` (accepting at least ``--quick`` and ``--json OUT``) and
``run(args) -> int``, then add one line to ``BENCHMARKS``. Only the module of the chosen
benchmark is imported, so each pays only for its own dependencies.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence
from types import ModuleType

#: name -> (module, one-line help). Order is the order of ``all``.
BENCHMARKS: dict[str, tuple[str, str]] = {
    "node": ("bench.node_bench",
             "one node: recall latency, remember throughput, cold start vs raw libraries"),
    "convergence": ("bench.convergence",
                    "a real mesh: write-to-visible latency, propagation, bytes/entry, CPU"),
    "scale": ("bench.scale",
              "convergence at 16 nodes on loopback and across netns hosts with loss + delay"),
    "simulate": ("bench.simulate",
                 "the pure core simulated: rounds, messages, bytes to converge, up to 10k nodes"),
    "simchaos": ("bench.simchaos",
                 "the chaos drill's fault mix in the pure simulator, 1,000+ nodes, same checks"),
    "catchup": ("bench.catchup",
                "a new node catches up M memories, against raw chromadb add of the same vectors"),
    "wire": ("bench.wire",
             "bytes per replicated entry and per in-sync digest exchange at 1k and 100k"),
    "sidebyside": ("bench.sidebyside",
                   "memnode vs the 2.01 s reference, a naive full-state puller and pycrdt"),
    "tls": ("bench.tls_cost",
            "mTLS vs --insecure: 3-node write-to-visible latency and bulk catch-up, as ratios"),
    "audit": ("bench.audit_bench",
              "Remember throughput with the audit trail on vs off, medians of one run"),
    "chaos": ("bench.chaos",
              "pods in netns under kill -9, partitions and loss; nothing acknowledged lost"),
    "atrest": ("bench.atrest",
               "encryption at rest on vs off: remember throughput and recall p95, same run"),
    "recallq": ("bench.recallq",
                "recall@10 of local and mesh recall vs exact search, on cached text embeddings"),
    "figures": ("bench.figures",
                "rewrite the README figures table (between its bench markers) from results"),
}


def _load(name: str) -> ModuleType:
    return importlib.import_module(BENCHMARKS[name][0])


def _parser(chosen: str | None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="benchmark", required=True, metavar="BENCHMARK")
    for name, (_, help_text) in BENCHMARKS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name == chosen:
            _load(name).add_arguments(p)
    p = sub.add_parser("all", help="run every benchmark in turn, with default options")
    p.add_argument("--quick", action="store_true", help="pass --quick to each benchmark")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    chosen = next((a for a in argv if not a.startswith("-")), None)
    args = _parser(chosen if chosen in BENCHMARKS else None).parse_args(argv)
    if args.benchmark != "all":
        code: int = _load(args.benchmark).run(args)
        return code
    worst = 0
    for name in BENCHMARKS:
        sub_argv = [name, *(["--quick"] if args.quick else [])]
        sub_args = _parser(name).parse_args(sub_argv)
        print(f"== bench {' '.join(sub_argv)}", file=sys.stderr, flush=True)
        worst = max(worst, _load(name).run(sub_args))
    return worst


if __name__ == "__main__":
    sys.exit(main())
