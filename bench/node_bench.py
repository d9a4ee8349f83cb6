"""The node benchmark: one run, on this machine, of memnode against the raw libraries
doing the same work in the same run.

    python -m bench node [--quick] [--json OUT] [--only recall,remember,coldstart]
    python -m bench node --report bench/results/node.json   # re-render a saved run

1. Recall p50/p95 over gRPC at 10k and 100k own memories (``--quick``: 2k and 10k),
   local scope and mesh scope (as many replicas as own memories, both collections
   queried and merged), against raw Chroma queries on equivalent collections.
2. Remember throughput (RememberBatch, text embedded by the node) against raw
   ``encode`` + ``collection.add`` of the same texts; minilm with sync full (the
   default) and normal, and minilm-int8.
3. Cold start of the CLI client and of ``memnode serve`` per embedder, against
   ``python -c pass`` and ``python -c "import sentence_transformers"``.

Every loop is bounded in count and in time; everything runs on loopback, in a
temporary work directory removed at the end (``--keep`` keeps it). Writes JSON
(``--json``) and the markdown table next to it (``.md``), and prints the table.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench import _coldstart, _node_report, _remember
from bench._common import (
    RESULTS,
    ServeProcess,
    load_average,
    machine_info,
    run_json_child,
    write_json,
)

DESCRIPTION = "one node: recall latency, remember throughput, cold start vs raw libraries"
SECTIONS = ("coldstart", "remember", "recall")
POPULATE_BATCH = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true",
                        help="small sizes (2k, 10k), fewer texts and runs: a few minutes")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="result file (default bench/results/node.json, or "
                             "node-quick.json with --quick); the table goes to OUT.md")
    parser.add_argument("--only", default=",".join(SECTIONS),
                        help=f"comma-separated sections to run ({', '.join(SECTIONS)})")
    parser.add_argument("--sizes", default=None,
                        help="own-memory counts for recall, multiples of 1000 "
                             "(default 10000,100000; --quick 2000,10000)")
    parser.add_argument("--queries", type=int, default=None,
                        help="timed recall queries per kind and size (default 500; quick 200)")
    parser.add_argument("--texts", type=int, default=None,
                        help="memories per remember phase (default 4096; quick 1024)")
    parser.add_argument("--batch", type=int, default=256, help="memories per RememberBatch")
    parser.add_argument("--tail", type=int, default=None,
                        help="at the largest size, recall again with this many changes "
                             "held in the index tail (default 20000, the tail's bound; "
                             "quick 2000; 0: skip)")
    parser.add_argument("--minutes", type=float, default=None,
                        help="time budget of the recall section (default 90; quick 15)")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where data dirs go (default: a new temporary directory)")
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    parser.add_argument("--report", type=Path, default=None, metavar="JSON",
                        help="print the table of a saved result file and exit")


def _say(message: str) -> None:
    print(f"[bench node {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# -- recall ----------------------------------------------------------------------------

RECALL_SETUP = {
    "corpus": "Corpus: random unit 384-dim vectors; own memories (template sentences as "
              "text, 3 metadata keys, TEAM) written through the node's gRPC API, "
              "RememberBatch of 1,000 with a precomputed embedding on each item (each one "
              "validated, redacted, signed, logged, upserted); as many replicas (3 origins, "
              "keyed-hashed metadata) written straight into the node's replicas collection "
              "with node.store.upsert_replicas (replication is the sidecar's job).",
    "raw": "Raw: chromadb.PersistentClient, cosine, embedding_function=None, the same ids, "
           "vectors, documents and metadata; mesh = query both collections and merge by "
           "distance, as the node does.",
    "client": "Node: a `memnode serve --embedder test-hash` process (the embedder is never "
              "called); client: a grpc stub in another process, which also runs the raw "
              "queries.",
}


def _hold_tail(node_dir: Path, tail: int, log: Path) -> ServeProcess:
    """``memnode serve`` on ``node_dir`` whose indexer holds ``tail`` new own memories:
    no batch until the tail's bound (one more than ``tail``) or a day's window."""
    return ServeProcess(node_dir, "test-hash", log, [
        "--index-batch-window-seconds", "86400", "--index-batch-max", str(tail + 1),
        "--index-tail-max-items", str(tail + 1), "--metrics-listen", "127.0.0.1:0"])


def _fill_tail(addr: str, metrics_port: int, tail: int) -> float:
    """Remember ``tail`` memories (RememberBatch, 500 at a time); check the node holds
    them all in its tail. The seconds it took."""
    from bench._mesh import index_tail
    from memnode.client import Client, NewMemory

    started = time.perf_counter()
    with Client(addr, timeout=120) as client:
        for lo in range(0, tail, 500):
            client.remember_batch([NewMemory(f"tail memory {i}: unindexed on purpose",
                                             {"i": str(i)})
                                   for i in range(lo, min(tail, lo + 500))])
    held = index_tail(f"http://127.0.0.1:{metrics_port}/metrics", "local")
    if held != tail:
        raise RuntimeError(f"the tail holds {held} changes, expected {tail}")
    return time.perf_counter() - started


def recall_section(work: Path, sizes: list[int], queries: int, seconds: float,
                   progress: dict[str, Any], save: Any, tail: int = 0) -> dict[str, Any]:
    from memnode.client import Client

    py = sys.executable
    node_dir, raw_dir, ids_dir = work / "node", work / "raw", work / "ids"
    work.mkdir(parents=True, exist_ok=True)
    log = work / "recall.log"
    deadline = time.monotonic() + seconds
    out: dict[str, Any] = {"setup": RECALL_SETUP, "sizes": []}
    progress["recall"] = out
    have = 0
    common = ["--raw-dir", str(raw_dir), "--ids-dir", str(ids_dir),
              "--batch", str(POPULATE_BATCH)]
    for n in sizes:
        left = deadline - time.monotonic()
        if left <= 60:
            _say(f"recall: time budget spent, skipping {n}")
            out["cut_short"] = True
            break
        _say(f"recall: populating {have} -> {n} own memories and as many replicas")
        pop = run_json_child([py, "-m", "bench._recall", "populate", "--node-dir",
                              str(node_dir), "--start", str(have), "--end", str(n),
                              "--seconds", str(max(60.0, left - 120)), *common],
                             timeout=left + 300, log_path=log)
        have = pop["end"]
        if have == 0:
            break
        with ServeProcess(node_dir, "test-hash", log) as node:
            ready = node.start(timeout=900)
            with Client(node.addr, timeout=60) as client:
                memories = client.status().memories
            if memories["local"] != have or memories["replicated"] != have:
                raise RuntimeError(f"node reopened with {memories}, expected {have} + {have}")
            _say(f"recall: node ready in {ready:.1f}s with {have} + {have}; measuring")
            m = run_json_child([py, "-m", "bench._recall", "measure", "--addr", node.addr,
                                "--n-local", str(have), "--n-replicas", str(have),
                                "--queries", str(queries),
                                "--seconds", str(max(30.0, min(600.0, deadline -
                                                               time.monotonic()))),
                                *common], timeout=900, log_path=log)
        if tail and n == sizes[-1]:  # last: the tail's memories stay in this data dir
            _say(f"recall {have}: again with {tail} changes held in the index tail")
            with _hold_tail(node_dir, tail, log) as node:
                node.start(timeout=900)
                fill_s = _fill_tail(node.addr, node.ready["metrics_port"], tail)
                m["tail_full"] = run_json_child(
                    [py, "-m", "bench._recall", "measure", "--addr", node.addr,
                     "--n-local", str(have), "--n-replicas", str(have),
                     "--queries", str(queries), "--seconds", "600", *common],
                    timeout=900, log_path=log)
            m["tail_full"].update(tail=tail, fill_s=round(fill_s, 2))
        m["populate"] = pop
        m["serve_ready_s"] = round(ready, 2)
        out["sizes"].append(m)
        lat = m["latency"]
        _say("recall {}: node p50/p95 {}/{} ms, raw {}/{} ms".format(
            have, lat["node_local"]["p50_ms"], lat["node_local"]["p95_ms"],
            lat["raw_local"]["p50_ms"], lat["raw_local"]["p95_ms"]))
        save()
        if pop["cut_short"]:
            out["cut_short"] = True
            break
    return out


# -- run -------------------------------------------------------------------------------


def run(args: argparse.Namespace) -> int:
    if args.report is not None:
        print(_node_report.render(json.loads(args.report.read_text())))
        return 0
    quick = bool(args.quick)
    sections = [s.strip() for s in args.only.split(",") if s.strip()]
    unknown = set(sections) - set(SECTIONS)
    if unknown:
        print(f"bench node: unknown sections {sorted(unknown)}", file=sys.stderr)
        return 2
    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [2000, 10_000] if quick else [10_000, 100_000])
    if any(s <= 0 or s % POPULATE_BATCH for s in sizes) or sizes != sorted(sizes):
        print("bench node: --sizes must be increasing multiples of 1000", file=sys.stderr)
        return 2
    out_path = args.json or RESULTS / ("node-quick.json" if quick else "node.json")
    queries = args.queries or (200 if quick else 500)
    texts = args.texts or (1024 if quick else 4096)
    minutes = args.minutes or (15.0 if quick else 90.0)

    work = args.workdir or Path(tempfile.mkdtemp(prefix="memnode-bench-node-"))
    work.mkdir(parents=True, exist_ok=True)
    results: dict[str, Any] = {
        "benchmark": "node", "format": 1, "quick": quick, "complete": False,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench node", *sys.argv[2:]]),
        "machine": machine_info(), "sections": sections,
    }

    def save() -> None:
        results.setdefault("loadavg", []).append(load_average())
        write_json(out_path, results)

    _say(f"work dir {work}; results to {out_path}")
    started = time.monotonic()
    try:
        if "coldstart" in sections:
            _say("cold start")
            (work / "coldstart").mkdir(exist_ok=True)
            results["coldstart"] = _coldstart.run(
                work / "coldstart", cli_runs=5 if quick else 10, serve_runs=1 if quick else 3,
                seconds=300 if quick else 900)
            save()
        if "remember" in sections:
            rem_dir = work / "remember"
            rem_dir.mkdir(exist_ok=True)
            results["remember"] = {"raw_encoders": _remember.RAW_ENCODERS, "phases": []}
            encoders: dict[str, Any] = {}
            for embedder, sync in (("minilm", "full"), ("minilm", "normal"),
                                   ("minilm-int8", "full"), ("minilm-int8", "normal")):
                _say(f"remember: {embedder} sync={sync}, {texts} texts")
                p = _remember.phase(rem_dir, embedder, sync, texts=texts, batch=args.batch,
                                    seconds=240 if quick else 600, encoders=encoders)
                results["remember"]["phases"].append(p)
                _say(f"remember {embedder}/{sync}: node {p['node']['items_per_s']}/s, raw "
                     f"{p['raw']['items_per_s']}/s, ratio {p['ratio']}")
                save()
        if "recall" in sections:
            tail = args.tail if args.tail is not None else 2000 if quick else 20_000
            recall_section(work / "recall", sizes, queries, minutes * 60, results, save,
                           tail)
        results["complete"] = True
    finally:
        results["seconds"] = round(time.monotonic() - started, 1)
        results["targets"] = _node_report.targets(results)
        save()
        try:
            out_path.with_suffix(".md").write_text(_node_report.render(results) + "\n")
        except (KeyError, TypeError, ZeroDivisionError) as exc:  # a partial run
            _say(f"no table for this partial run ({exc!r})")
        if not args.keep and args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    print(_node_report.render(results))
    _say(f"done in {results['seconds']:.0f}s; {out_path} and {out_path.with_suffix('.md')}")
    return 0
