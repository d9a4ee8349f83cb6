"""What encryption at rest costs: two ``memnode serve`` nodes in the same run, one with
it (the default) and one created with ``--no-encrypt-at-rest``, fed the same batches
and asked the same queries, alternately, so both see the same machine load.

    python -m bench atrest [--size N] [--batch 256] [--queries 500] [--json OUT]

1. Remember throughput: ``RememberBatch`` of the corpus' texts (``test-hash`` embedder,
   ``--sync normal``: the node's own work, not the embedder or fsync, is what is
   measured, so encryption's share is as large as it gets), paired batch by batch up
   to ``--size`` own memories; with the index tail's backpressure this is the rate
   Chroma indexing sustains.
   The node processes' CPU time per memory (stored and indexed) is the steadier figure
   on a shared machine: wall-clock rates move with whatever else runs.
2. Recall at ``--size``: k=10 by embedding (local scope) and with a ``where`` filter on
   a metadata value (a keyed hash when encrypted), client latency over gRPC and the
   server's own search time (``search_seconds``), p50/p95.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import _corpus as corpus
from bench._common import (
    RESULTS,
    Budget,
    ServeProcess,
    latency_summary,
    load_average,
    machine_info,
    median,
    ratio,
    write_json,
)
from bench._remember import _request

DESCRIPTION = "encryption at rest on vs off: remember throughput and recall p95, same run"
MODES = {"on": [], "off": ["--no-encrypt-at-rest"]}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="5k memories, 200 queries")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="result file (default bench/results/atrest.json)")
    parser.add_argument("--size", type=int, default=None,
                        help="own memories per node (default 20000; --quick 5000)")
    parser.add_argument("--batch", type=int, default=256, help="memories per RememberBatch")
    parser.add_argument("--queries", type=int, default=None, help="timed queries per kind")
    parser.add_argument("--minutes", type=float, default=30.0, help="time budget of the load")
    parser.add_argument("--workdir", type=Path, default=None,
                        help="where the two nodes' data go (default: a temporary directory, "
                        "removed at the end)")


def _cpu_seconds(node: ServeProcess) -> float:
    """User + system CPU of the node process (Chroma runs inside it)."""
    import os

    assert node.proc is not None
    fields = Path(f"/proc/{node.proc.pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _written_bytes(node: ServeProcess) -> int:
    """Bytes the node process caused to be written to storage (/proc/PID/io)."""
    assert node.proc is not None
    for line in Path(f"/proc/{node.proc.pid}/io").read_text().splitlines():
        if line.startswith("write_bytes:"):
            return int(line.split()[1])
    return 0


def _wait_indexed(node: ServeProcess, timeout: float = 900) -> None:
    from urllib.request import urlopen

    url = f"http://127.0.0.1:{node.ready['metrics_port']}/metrics"
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with urlopen(url, timeout=10) as response:
            text = response.read().decode()
        lag = [line for line in text.splitlines()
               if line.startswith("memnode_index_lag_seconds ")]
        if lag and float(lag[0].split()[1]) == 0.0:
            return
        time.sleep(0.5)  # a benchmark polling a server, not a test waiting on a condition
    raise TimeoutError(f"{node.data_dir}: the index tail did not drain in {timeout}s")


def run(args: argparse.Namespace) -> int:
    import tempfile

    import grpc

    from memnode.v1 import memnode_pb2 as pb
    from memnode.v1 import memnode_pb2_grpc as pb_grpc

    size = args.size or (5000 if args.quick else 20000)
    queries = args.queries or (200 if args.quick else 500)
    work = args.workdir or Path(tempfile.mkdtemp(prefix="bench-atrest-"))
    nodes = {m: ServeProcess(work / f"node-{m}", "test-hash", work / "serve.log",
                             extra=["--sync", "normal", "--sidecar", "off",
                                    "--metrics-listen", "127.0.0.1:0", *extra])
             for m, extra in MODES.items()}
    try:
        for node in nodes.values():
            node.start(timeout=300)
        stubs = {m: pb_grpc.MemoryServiceStub(grpc.insecure_channel(
            n.addr, options=[("grpc.max_send_message_length", 64 << 20)]))
            for m, n in nodes.items()}
        for m in MODES:  # warm-up, not timed
            stubs[m].RememberBatch(_request(corpus.records(99, 0, 32)), timeout=600)
        cpu_before = {m: _cpu_seconds(n) for m, n in nodes.items()}
        io_before = {m: _written_bytes(n) for m, n in nodes.items()}
        batches = (size + args.batch - 1) // args.batch
        spent: dict[str, list[float]] = {m: [] for m in MODES}
        budget = Budget(max_count=batches, seconds=args.minutes * 60)
        while budget.more():
            request = _request(corpus.records(11, budget.count * args.batch, args.batch))
            order = list(MODES) if budget.count % 2 == 0 else list(reversed(MODES))
            for m in order:
                t = time.perf_counter()
                stubs[m].RememberBatch(request, timeout=600)
                spent[m].append(time.perf_counter() - t)
            budget.tick()
            if budget.count % 20 == 0:
                print(f"atrest: {budget.count * args.batch} per node", file=sys.stderr,
                      flush=True)
        written = budget.count * args.batch
        remember = {m: {"items_per_s": round(written / sum(s), 1),
                        "batch_p50_s": round(median(s), 4)} for m, s in spent.items()}
        paired = [on / off for on, off in zip(spent["on"], spent["off"], strict=True)]

        for node in nodes.values():  # recall on an idle node: the tail all in Chroma
            _wait_indexed(node)
        cpu = {m: round((_cpu_seconds(n) - cpu_before[m]) / written * 1e6, 1)
               for m, n in nodes.items()}  # node CPU per memory stored and indexed
        written_kb = {m: round((_written_bytes(n) - io_before[m]) / written / 1024, 1)
                      for m, n in nodes.items()}  # bytes the node wrote, per memory
        rng = np.random.default_rng(5)
        picks = rng.integers(0, written, size=queries + 20)
        texts = [corpus.record(11, int(i)) for i in picks]
        kinds = {
            "recall": [pb.RecallRequest(query=t, k=10, scope=pb.LOCAL) for t, _ in texts],
            # a where filter is 20-35x slower in Chroma at 100k: a fifth as many queries
            "recall_where": [pb.RecallRequest(query=t, k=10, scope=pb.LOCAL)
                             for t, _ in texts[: queries // 5 + 20]],
        }
        for request, (_, meta) in zip(kinds["recall_where"], texts, strict=False):
            request.where["kind"].s = meta["kind"]
        recall: dict[str, Any] = {}
        for kind, requests in kinds.items():
            client = {m: [] for m in MODES}
            server = {m: [] for m in MODES}
            for n, request in enumerate(requests):
                for m in MODES if n % 2 == 0 else reversed(MODES):
                    t = time.perf_counter()
                    response = stubs[m].Recall(request, timeout=30)
                    if n >= 20:  # the first 20: warm-up
                        client[m].append(time.perf_counter() - t)
                        server[m].append(response.search_seconds)
            recall[kind] = {m: {"client": latency_summary(client[m]),
                                "server_search": latency_summary(server[m])} for m in MODES}
            recall[kind]["p95_delta_ms"] = round(
                recall[kind]["on"]["client"]["p95_ms"]
                - recall[kind]["off"]["client"]["p95_ms"], 3)
    finally:
        for node in nodes.values():
            node.stop()
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    result = {
        "benchmark": "atrest", "size": written, "batch": args.batch, "queries": queries,
        "remember": remember,
        "remember_ratio_on_off": ratio(remember["on"]["items_per_s"],
                                       remember["off"]["items_per_s"]),
        "remember_paired_time_ratio_p50": round(median(paired), 3),
        "remember_node_cpu_us_per_memory": cpu,
        "remember_cpu_ratio_on_off": ratio(cpu["on"], cpu["off"]),
        "remember_node_written_kib_per_memory": written_kb,
        "recall": recall, "machine": machine_info(), "load_average": load_average(),
    }
    out = args.json or RESULTS / ("atrest-quick.json" if args.quick else "atrest.json")
    write_json(out, result)
    print(_table(result))
    return 0


def _table(r: dict[str, Any]) -> str:
    rows = [f"encryption at rest, {r['size']} own memories per node "
            f"(test-hash, sync normal, batch {r['batch']})",
            f"remember items/s: on {r['remember']['on']['items_per_s']}, off "
            f"{r['remember']['off']['items_per_s']} (ratio {r['remember_ratio_on_off']}, "
            f"paired batch time ratio p50 {r['remember_paired_time_ratio_p50']})",
            f"node CPU per memory stored and indexed, us: {r['remember_node_cpu_us_per_memory']}"
            f" (ratio {r['remember_cpu_ratio_on_off']}); written KiB per memory: "
            f"{r['remember_node_written_kib_per_memory']}"]
    for kind in ("recall", "recall_where"):
        x = r["recall"][kind]
        rows.append(f"{kind} p50/p95 ms: on {x['on']['client']['p50_ms']}/"
                    f"{x['on']['client']['p95_ms']}, off {x['off']['client']['p50_ms']}/"
                    f"{x['off']['client']['p95_ms']} (p95 delta {x['p95_delta_ms']} ms; "
                    f"server search p95 on {x['on']['server_search']['p95_ms']}, off "
                    f"{x['off']['server_search']['p95_ms']})")
    return "\n".join(rows)
