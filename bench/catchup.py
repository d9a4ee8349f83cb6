"""Bulk catch-up: a new node joins a node that holds M memories.

    python -m bench catchup --memories 10000 [--embedder test-hash] [--tls] [--json OUT]

1. Node A (``memnode serve`` with its sidecar, no peers) gets M memories through
   RememberBatch (1,000 per call) with precomputed random unit 384-dim embeddings and
   TEAM metadata, so that no embedding time is counted anywhere.
2. Node B starts with ``--peer A``. Measured: from B's ready line until B's status shows
   A's watermark at M *and* M replicas in its Chroma collection (polled every 50 ms);
   also from B's spawn. Throughput = M / that time. Gossip bytes sent by A during the
   catch-up / M = bytes per entry when batched.
3. Raw: ``chromadb.PersistentClient(...).get_or_create_collection(cosine,
   embedding_function=None).add`` of the same ids, vectors and replica-shaped metadata
   (keyed-hash strings plus origin/privacy/timestamps, as the node stores replicas), in
   batches of ``--raw-batch``, in this process while no node runs; before and after the
   nodes (full run) or after them (quick). Ratio = node throughput / raw throughput.
"""

from __future__ import annotations

import argparse
import hashlib
import hmac
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, load_average, machine_info, median, write_json
from bench._mesh import MeshOptions, NodeProc, federation_metrics, index_tail, scrape

DESCRIPTION = "a new node catches up M memories, against raw chromadb add of the same vectors"
DIM = 384
INSERT_BATCH = 1000


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memories", type=int, default=None, help="default 10000 (quick 2000)")
    parser.add_argument("--embedder", default="test-hash", choices=("test-hash", "minilm-int8"))
    parser.add_argument("--tls", action="store_true")
    parser.add_argument("--sync", choices=("full", "normal"), default=None)
    parser.add_argument("--raw-batch", type=int, default=1000)
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")
    parser.add_argument("--workdir", type=Path, default=None)


def say(message: str) -> None:
    print(f"[bench catchup {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


def vectors(m: int, seed: int = 7) -> Any:
    import numpy as np

    rng = np.random.default_rng(seed)
    v = rng.standard_normal((m, DIM), dtype=np.float32)
    v /= np.linalg.norm(v, axis=1, keepdims=True)
    return v.astype("<f4")


def _node(i: int, work: Path, o: MeshOptions, creds: Path | None, peers: list[str]
          ) -> NodeProc:
    security = ["--federation", str(creds)] if creds else ["--insecure"]
    extra = [*security, "--preset", o.preset, "--gossip-listen", "127.0.0.1:0",
             "--metrics-listen", "127.0.0.1:0", *(["--sync", o.sync] if o.sync else []),
             *peers]
    return NodeProc(i, work / f"node{i}", o.embedder, work / f"node{i}.log", extra)


def insert(addr: str, vecs: Any, token: str) -> float:
    """RememberBatch of INSERT_BATCH with precomputed embeddings; returns seconds."""
    from memnode.client import Client, NewMemory, _request
    from memnode.v1 import memnode_pb2 as pb

    started = time.perf_counter()
    with Client(addr, timeout=300) as client:
        model = client.status().model  # the vectors are declared as the node's model's
        for lo in range(0, len(vecs), INSERT_BATCH):
            items = [_request(NewMemory(f"catch-up memory {k} {token}",
                                        {"team": "bench", "k": str(k)}),
                              vecs[k].tobytes(), model)
                     for k in range(lo, min(lo + INSERT_BATCH, len(vecs)))]
            client._call("RememberBatch", pb.RememberBatchRequest(items=items))
    return time.perf_counter() - started


def raw_add(path: Path, vecs: Any, origin: str, batch: int) -> float:
    """Raw Chroma: the same vectors and replica-shaped metadata; returns seconds."""
    import os

    os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
    import chromadb
    from chromadb.config import Settings

    key = secrets.token_bytes(32)

    def h(value: str) -> str:
        return hmac.new(key, value.encode(), hashlib.sha256).hexdigest()[:32]

    now = int(time.time() * 1000)
    ids = [f"{origin}/{secrets.token_hex(8)}" for _ in range(len(vecs))]
    metas = [{"team": h("bench"), "k": h(str(k)), "_origin": origin, "_privacy": 2,
              "_created": now, "_updated": now} for k in range(len(vecs))]
    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    col = client.get_or_create_collection("raw", embedding_function=None,
                                          configuration={"hnsw": {"space": "cosine"}})
    started = time.perf_counter()
    for lo in range(0, len(vecs), batch):
        col.add(ids=ids[lo:lo + batch], embeddings=vecs[lo:lo + batch],
                metadatas=metas[lo:lo + batch])  # type: ignore[arg-type]
    elapsed = time.perf_counter() - started
    assert col.count() == len(vecs)
    del col, client
    return elapsed


def measure_catchup(memories: int, work: Path, *, tls: bool = False,
                    embedder: str = "test-hash", sync: str = "", timeout: float = 900.0,
                    log: Any = say) -> dict[str, Any]:
    """Seed node A with ``memories``, start B, time B's catch-up. Nodes only (no raw)."""
    from memnode import Client

    o = MeshOptions(nodes=2, tls=tls, embedder=embedder, sync=sync)
    work.mkdir(parents=True, exist_ok=True)
    creds: list[Path | None] = [None, None]
    if tls:
        from federation.io.pki import init_federation, issue_node

        init_federation(work / "federation", name="bench federation")
        creds = [issue_node(work / "federation", f"node{i}", work / f"creds{i}")
                 for i in range(2)]
    vecs = vectors(memories)
    a = _node(0, work, o, creds[0], [])
    b: NodeProc | None = None
    try:
        a.start(300)
        token = secrets.token_hex(4)
        insert_s = insert(a.addr, vecs, token)
        log(f"node A holds {memories} ({memories / insert_s:.0f}/s through RememberBatch); "
            "starting B")
        before = federation_metrics(scrape(a.metrics_url))
        b = _node(1, work, o, creds[1], ["--peer", a.gossip])
        spawned = time.perf_counter()
        b.start(300)
        ready = time.perf_counter()
        origin = a.node_id
        progress: list[tuple[float, int]] = []
        done_at = None
        with Client(b.addr, timeout=30) as client:
            deadline = ready + timeout
            while time.perf_counter() < deadline:
                st = client.status()
                have = st.version_vector.get(origin, 0)
                now = time.perf_counter()
                if not progress or progress[-1][1] != have:
                    progress.append((round(now - ready, 3), have))
                if have >= memories and st.memories["replicated"] >= memories:
                    done_at = now
                    break
                time.sleep(0.05)
        after = federation_metrics(scrape(a.metrics_url))
        indexed_at = None
        while done_at and time.perf_counter() < deadline:  # and Chroma holds them all
            if not index_tail(b.metrics_url):
                indexed_at = time.perf_counter()
                break
            time.sleep(0.05)
        replicated = memories if done_at else progress[-1][1] if progress else 0
    finally:
        if b is not None:
            b.stop(30)
        a.stop(30)
    catchup_s = (done_at - ready) if done_at else None
    sent = after["bytes_sent"] - before["bytes_sent"]
    return {
        "memories": memories, "tls": tls, "embedder": embedder,
        "complete": done_at is not None, "replicated": replicated,
        "insert_s": round(insert_s, 2),
        "catchup_s": round(catchup_s, 3) if catchup_s else None,
        "catchup_from_spawn_s": round(done_at - spawned, 3) if done_at else None,
        "indexed_s": round(indexed_at - ready, 3) if indexed_at else None,
        "b_start_s": round(ready - spawned, 2),
        "node_per_s": round(memories / catchup_s, 1) if catchup_s else None,
        "bytes_per_entry": round(sent / memories, 1),
        "events_sent_per_entry": round((after["events_sent"] - before["events_sent"])
                                       / memories, 3),
        "progress": progress[:400],
    }


def measure_raw(memories: int, work: Path, batch: int, runs: int) -> dict[str, Any]:
    vecs = vectors(memories)
    times = []
    for _ in range(runs):
        path = work / f"raw-{secrets.token_hex(4)}"  # Chroma caches clients by path
        times.append(raw_add(path, vecs, "rawbench", batch))
        shutil.rmtree(path, ignore_errors=True)
    s = median(times)
    return {"seconds": [round(t, 3) for t in times], "median_s": round(s, 3),
            "per_s": round(memories / s, 1), "batch": batch}


def run(args: argparse.Namespace) -> int:
    quick = bool(args.quick)
    m = args.memories or (2000 if quick else 10_000)
    out = args.json or RESULTS / (f"catchup{'-tls' if args.tls else ''}"
                                  f"{'-quick' if quick else ''}.json")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="memnode-bench-catchup-"))
    result: dict[str, Any] = {
        "benchmark": "catchup", "quick": quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": machine_info(),
    }
    try:
        raw_runs: list[dict[str, Any]] = []
        if not quick:
            say(f"raw chromadb add of {m} vectors (before the nodes)")
            raw_runs.append(measure_raw(m, work, args.raw_batch, 1))
        say(f"catch-up of {m} memories ({'mTLS' if args.tls else 'plaintext'})")
        node = measure_catchup(m, work / "nodes", tls=args.tls, embedder=args.embedder,
                               sync=args.sync or "", timeout=args.timeout)
        say(f"raw chromadb add of {m} vectors")
        raw_runs.append(measure_raw(m, work, args.raw_batch, 1))
    finally:
        if args.workdir is None:
            shutil.rmtree(work, ignore_errors=True)
    raw_s = median([s for r in raw_runs for s in r["seconds"]])
    raw = {"seconds": [s for r in raw_runs for s in r["seconds"]], "median_s": round(raw_s, 3),
           "per_s": round(m / raw_s, 1), "batch": args.raw_batch}
    ratio = round(node["node_per_s"] / raw["per_s"], 3) if node["node_per_s"] else None
    indexed = node["indexed_s"]
    result.update({"memories": m, "node": node, "raw": raw, "ratio": ratio,
                   "ratio_indexed": round(raw_s / indexed, 3) if indexed else None,
                   "target_ratio": 0.95, "loadavg_at_end": load_average()})
    write_json(out, result)
    print(f"catch-up of {m} memories ({'mTLS' if args.tls else 'plaintext'}, embedder "
          f"{args.embedder}):\n"
          f"  new node: {node['catchup_s']} s after ready ({node['node_per_s']}/s; "
          f"{node['catchup_from_spawn_s']} s from spawn), {node['bytes_per_entry']} gossip "
          f"bytes per entry\n"
          f"  raw chromadb add: {raw['median_s']} s ({raw['per_s']}/s, batches of "
          f"{args.raw_batch})\n"
          f"  ratio node/raw: {ratio} (target >= 0.95); all in Chroma {indexed} s after "
          f"ready: {result['ratio_indexed']} of raw\n"
          f"  progress (s after ready, memories held): "
          + ", ".join(f"{t}s {k}" for t, k in node["progress"][:12]))
    say(f"results in {out}")
    return 0
