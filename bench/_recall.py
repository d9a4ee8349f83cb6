"""Recall benchmark children: ``populate`` fills a node and its raw-Chroma twin,
``measure`` times recalls against both. Run by :mod:`bench.node_bench`, one process at a
time, so that no Chroma directory is ever open in two processes::

    python -m bench._recall populate --node-dir D --raw-dir R --ids-dir I --start 0 --end 10000
    python -m bench._recall measure --addr HOST:PORT --raw-dir R --ids-dir I --n-local 10000 ...

Each prints one JSON object as its last stdout line.

populate: own memories go through the node's gRPC API (``RememberBatch`` of 1,000, each
item with a precomputed ``embedding``, privacy TEAM, so each is validated, redacted,
signed, logged and upserted like any write); the node runs in this process on a
loopback port with the test-hash embedder (never called: every item has its vector) and
``sync=normal``. Replicas of other nodes' memories (the federation's job, not this
API's) are written with ``node.store.upsert_replicas``: realistic records (3 origins,
TEAM metadata keyed-hashed by the node's metadata key). The raw twin gets the same ids,
vectors, documents and metadata with ``collection.add``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from bench import _corpus as corpus
from bench._common import Budget, latency_summary

LOCAL_STREAM, REPLICA_STREAM, QUERY_STREAM = 1, 2, 3
LOCAL_COLLECTION, REPLICA_COLLECTION = "memories", "replicas"
TEAM = 3


def _raw_collections(raw_dir: Path) -> tuple[Any, Any]:
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(raw_dir),
                                       settings=Settings(anonymized_telemetry=False))
    config: Any = {"hnsw": {"space": "cosine"}}
    return tuple(  # type: ignore[return-value]
        client.get_or_create_collection(name, embedding_function=None, configuration=config)
        for name in (LOCAL_COLLECTION, REPLICA_COLLECTION)
    )


def _origins(seed: int) -> list[str]:
    """Three node ids of made-up peers, derived as real node ids are."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from federation.events import node_id_from_public_key, public_key_bytes

    keys = [Ed25519PrivateKey.from_private_bytes(hashlib.sha256(f"{seed}:{i}".encode())
                                                 .digest()) for i in range(3)]
    return [node_id_from_public_key(public_key_bytes(k)) for k in keys]


def _suffix(seed: int, index: int) -> str:
    digest = hashlib.sha256(f"replica:{seed}:{index}".encode()).digest()[:8]
    return base64.b32encode(digest).decode().rstrip("=").lower()


def populate(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    from federation.io.convert import model_to_proto
    from memnode.api.server import NodeServer
    from memnode.config import NodeConfig
    from memnode.embedders import HashEmbedder
    from memnode.node.domain import Privacy, ReplicaRecord
    from memnode.node.node import Node
    from memnode.v1 import memnode_pb2 as pb
    from memnode.v1 import memnode_pb2_grpc as pb_grpc

    cfg = NodeConfig(data_dir=args.node_dir, listen="127.0.0.1:0", embedder="test-hash",
                     sync="normal")
    node = Node(cfg, embedder=HashEmbedder())
    server = NodeServer(node)
    server.start()
    channel = grpc.insecure_channel(server.address,
                                    options=[("grpc.max_send_message_length", 64 << 20)])
    stub = pb_grpc.MemoryServiceStub(channel)
    declared = model_to_proto(node.model)  # the client's vectors, declared as the node's
    raw_local, raw_replicas = _raw_collections(args.raw_dir)
    origins = _origins(args.seed)
    args.ids_dir.mkdir(parents=True, exist_ok=True)
    seconds = {"node_grpc": 0.0, "raw_local_add": 0.0, "node_replicas": 0.0,
               "raw_replicas_add": 0.0}
    size = args.batch
    first, last = args.start // size, args.end // size
    budget = Budget(max_count=last - first, seconds=args.seconds)
    with (args.ids_dir / "local.txt").open("a") as local_ids, \
            (args.ids_dir / "replicas.txt").open("a") as replica_ids:
        while budget.more():
            b = first + budget.count
            vectors = corpus.unit_vectors(args.seed, LOCAL_STREAM, b, size)
            items = corpus.records(args.seed, b * size, size)
            request = pb.RememberBatchRequest()
            for (text, meta), vec in zip(items, vectors, strict=True):
                item = request.items.add(text=text, privacy=pb.TEAM,
                                         embedding=vec.astype("<f4").tobytes())
                item.embedding_model.CopyFrom(declared)
                for key, value in meta.items():
                    if isinstance(value, str):
                        item.metadata[key].s = value
                    else:
                        item.metadata[key].i = int(value)
            t = time.perf_counter()
            ids = [r.id for r in stub.RememberBatch(request, timeout=600).results]
            seconds["node_grpc"] += time.perf_counter() - t
            now = int(time.time() * 1000)
            reserved = {"_privacy": TEAM, "_created": now, "_updated": now}
            t = time.perf_counter()
            raw_local.add(ids=ids, embeddings=vectors, documents=[text for text, _ in items],
                          metadatas=[{**meta, **reserved} for _, meta in items])
            seconds["raw_local_add"] += time.perf_counter() - t

            rvectors = corpus.unit_vectors(args.seed, REPLICA_STREAM, b, size)
            replicas = []
            for i, ((_, meta), vec) in enumerate(
                    zip(corpus.records(args.seed + 1, b * size, size), rvectors, strict=True)):
                origin = origins[(b * size + i) % len(origins)]
                replicas.append(ReplicaRecord(
                    id=f"{origin}/{_suffix(args.seed, b * size + i)}", origin=origin,
                    embedding=vec, metadata=node.metakey.shared_form(meta, Privacy.TEAM),
                    privacy=Privacy.TEAM, created_at_ms=now, updated_at_ms=now))
            t = time.perf_counter()
            node.store.upsert_replicas(replicas)
            seconds["node_replicas"] += time.perf_counter() - t
            t = time.perf_counter()
            raw_replicas.add(
                ids=[r.id for r in replicas], embeddings=rvectors,
                metadatas=[{**r.metadata, "_origin": r.origin, **reserved} for r in replicas])
            seconds["raw_replicas_add"] += time.perf_counter() - t
            local_ids.write("".join(f"{mid}\n" for mid in ids))
            replica_ids.write("".join(f"{r.id}\n" for r in replicas))
            local_ids.flush()
            replica_ids.flush()
            budget.tick()
            print(f"populate: {(b + 1) * size} + {(b + 1) * size}", file=sys.stderr,
                  flush=True)
    channel.close()
    server.stop(grace=10)
    added = budget.count * size
    return {
        "start": args.start, "end": args.start + added, "cut_short": budget.cut_short,
        "seconds": {k: round(v, 2) for k, v in seconds.items()},
        "per_second": {k: round(added / v, 1) if v else None for k, v in seconds.items()},
        "node_count": node.store.count_local(), "replica_count": node.store.count_replicas(),
    }


# -- measure ---------------------------------------------------------------------------


def _sources(ids_dir: Path, name: str, n: int) -> list[str]:
    with (ids_dir / name).open() as f:
        ids = [line.strip() for _, line in zip(range(n), f, strict=False)]
    if len(ids) < n:
        raise SystemExit(f"{ids_dir / name} has {len(ids)} ids, expected {n}")
    return ids


def _queries(seed: int, stream: int, indices: list[int], batch: int) -> np.ndarray[Any, Any]:
    """Unit vectors near the corpus vectors at ``indices`` of ``stream``."""
    rows = []
    cache: dict[int, corpus.Vectors] = {}
    for i in indices:
        b = i // batch
        if b not in cache:
            cache[b] = corpus.unit_vectors(seed, stream, b, batch)
        rows.append(cache[b][i % batch])
    rng = np.random.default_rng([seed, QUERY_STREAM, stream, len(indices)])
    return corpus.near(np.stack(rows), rng)


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import grpc

    from memnode.v1 import memnode_pb2 as pb
    from memnode.v1 import memnode_pb2_grpc as pb_grpc

    k, size = args.k, args.batch
    local_ids = _sources(args.ids_dir, "local.txt", args.n_local)
    replica_ids = _sources(args.ids_dir, "replicas.txt", args.n_replicas)
    rng = np.random.default_rng([args.seed, QUERY_STREAM, args.n_local])
    total = min(args.queries + args.warmup, args.n_local, args.n_replicas)
    args.queries = total - args.warmup
    li = [int(i) for i in rng.choice(args.n_local, size=total, replace=False)]
    ri = [int(i) for i in rng.choice(args.n_replicas, size=total, replace=False)]
    local_q = _queries(args.seed, LOCAL_STREAM, li, size)
    replica_q = _queries(args.seed, REPLICA_STREAM, ri, size)
    # Local recall: queries near own memories. Mesh: alternately near own and replicas.
    mesh_q = np.where((np.arange(total) % 2 == 0)[:, None], local_q, replica_q)
    expected = {"local": [local_ids[i] for i in li],
                "mesh": [local_ids[a] if n % 2 == 0 else replica_ids[b]
                         for n, (a, b) in enumerate(zip(li, ri, strict=True))]}
    queries = {"local": local_q, "mesh": mesh_q}

    channel = grpc.insecure_channel(args.addr)
    stub = pb_grpc.MemoryServiceStub(channel)
    raw_local, raw_replicas = _raw_collections(args.raw_dir)
    include_docs: Any = ["documents", "metadatas", "distances"]
    include_meta: Any = ["metadatas", "distances"]
    requests = {scope: [pb.RecallRequest(k=k, scope=pb.LOCAL if scope == "local" else pb.MESH,
                                         embedding=q.astype("<f4").tobytes())
                        for q in queries[scope]] for scope in ("local", "mesh")}
    server_search: dict[str, list[float]] = {"local": [], "mesh": []}

    def node(scope: str, n: int) -> list[str]:
        response = stub.Recall(requests[scope][n], timeout=30)
        server_search[scope].append(response.search_seconds)
        return [h.id for h in response.hits]

    def raw(scope: str, n: int) -> list[str]:
        q = queries[scope][n].reshape(1, -1)
        res: Any = raw_local.query(query_embeddings=q, n_results=k, include=include_docs)
        if scope == "local":
            return list(res["ids"][0])
        rep: Any = raw_replicas.query(query_embeddings=q, n_results=k, include=include_meta)
        merged = sorted(zip(res["distances"][0] + rep["distances"][0],
                            res["ids"][0] + rep["ids"][0], strict=True))
        return [mid for _, mid in merged[:k]]

    targets = {"node_local": (node, "local"), "raw_local": (raw, "local"),
               "node_mesh": (node, "mesh"), "raw_mesh": (raw, "mesh")}
    for fn, scope in targets.values():  # warm-up: load indexes, open connections
        for n in range(args.warmup):
            fn(scope, args.queries + n)
    for scope in server_search:
        server_search[scope].clear()
    latencies: dict[str, list[float]] = {name: [] for name in targets}
    results: dict[str, dict[int, list[str]]] = {name: {} for name in targets}
    rounds = -(-args.queries // args.block)
    budget = Budget(max_count=rounds, seconds=args.seconds)
    names = list(targets)
    while budget.more():
        r = budget.count
        lo, hi = r * args.block, min((r + 1) * args.block, args.queries)
        for name in names[r % 4:] + names[: r % 4]:  # rotate who goes first
            fn, scope = targets[name]
            for n in range(lo, hi):
                t = time.perf_counter()
                ids = fn(scope, n)
                latencies[name].append(time.perf_counter() - t)
                results[name][n] = ids
        budget.tick()
    channel.close()

    def overlap(a: str, b: str) -> float:
        common = [len(set(results[a][n]) & set(results[b][n])) / k for n in results[a]]
        return round(sum(common) / len(common), 4) if common else float("nan")

    def top1(name: str, scope: str) -> float:
        got = [results[name][n][:1] == [expected[scope][n]] for n in results[name]]
        return round(sum(got) / len(got), 4) if got else float("nan")

    return {
        "n_local": args.n_local, "n_replicas": args.n_replicas, "k": k,
        "queries_per_target": len(latencies["node_local"]), "warmup": args.warmup,
        "cut_short": budget.cut_short,
        "latency": {name: latency_summary(v) for name, v in latencies.items()},
        "node_server_search": {scope: latency_summary(v) for scope, v in server_search.items()},
        "top10_overlap_node_vs_raw": {"local": overlap("node_local", "raw_local"),
                                      "mesh": overlap("node_mesh", "raw_mesh")},
        "top1_is_source": {name: top1(name, scope) for name, (_, scope) in targets.items()},
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench._recall")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("populate")
    p.add_argument("--node-dir", type=Path, required=True)
    p.add_argument("--start", type=int, required=True)
    p.add_argument("--end", type=int, required=True)
    p = sub.add_parser("measure")
    p.add_argument("--addr", required=True)
    p.add_argument("--n-local", type=int, required=True)
    p.add_argument("--n-replicas", type=int, required=True)
    p.add_argument("--k", type=int, default=10)
    p.add_argument("--queries", type=int, default=500)
    p.add_argument("--warmup", type=int, default=20)
    p.add_argument("--block", type=int, default=25)
    for p in sub.choices.values():
        p.add_argument("--raw-dir", type=Path, required=True)
        p.add_argument("--ids-dir", type=Path, required=True)
        p.add_argument("--seed", type=int, default=7)
        p.add_argument("--batch", type=int, default=1000)
        p.add_argument("--seconds", type=float, default=600.0, help="time budget")
    args = parser.parse_args(argv)
    result = populate(args) if args.command == "populate" else measure(args)
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
