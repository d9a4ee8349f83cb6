"""Recall quality on text embeddings: recall@k of a node's recall against exact search.

    python -m bench recallq [--sizes 10000,100000] [--k 10] [--queries 200] [--json OUT]
                            [--variant ef_search=200] [--variant max_neighbors=32,...]

Random iid vectors misstate HNSW recall (they have no structure for the graph to use);
this measures it on what a node really holds. The corpus is distinct generated agent
memories (:mod:`bench._textvec`), embedded once with the real model and cached; the
queries are held-out texts of the same generator. For each size N:

1. an ``origin`` node remembers the N texts with their vectors (own memories), a
   ``mesh`` node receives the origin's signed events through the replication core and
   its durable path (replicas); both wait until the index tail is empty, so Chroma's
   HNSW index is what is measured (:mod:`bench._recallq_load`);
2. exact top-k by numpy brute force over the same vectors;
3. per query: local recall on the origin, mesh recall on the mesh node (both
   collections searched and merged), and raw Chroma queries of the same collections;
   recall@k = |returned ∩ exact top-k| / k, and a tie-aware one that also counts a
   returned memory whose exact similarity equals the k-th best within ``--eps`` (the
   corpus has near-duplicates); median, p5, min and mean, and latency p50/p95;
4. ``--variant``: a raw collection built from the same vectors (same ids, batches of
   Chroma's maximum) with other HNSW settings, its build time, recall and latency. Each
   is created with its settings: Chroma 1.5.9 stores an ``ef_search`` changed with
   ``collection.modify`` but searches an index already loaded in the process with the
   old one until the next load (measured: recall did not move in-process, moved after
   a restart), so a sweep by ``modify`` would measure nothing.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from bench._common import RESULTS, latency_summary, machine_info, percentile, write_json

DESCRIPTION = "recall@10 of local and mesh recall vs exact search, on cached text embeddings"
Ids = npt.NDArray[np.int64]


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--quick", action="store_true", help="one size of 10k")
    parser.add_argument("--sizes", default=None, help="corpus sizes (default 10000,100000)")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--eps", type=float, default=1e-4,
                        help="similarity tolerance of the tie-aware recall")
    parser.add_argument("--embedder", default="minilm")
    parser.add_argument("--variant", action="append", default=[],
                        help="HNSW settings of an extra raw collection of the same vectors, "
                             "e.g. ef_search=200 or max_neighbors=32,ef_construction=200, "
                             "or default (repeatable)")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT",
                        help="result file (default bench/results/recallq.json)")
    parser.add_argument("--workdir", type=Path, default=None)
    parser.add_argument("--keep", action="store_true", help="keep the work directory")


def _say(message: str) -> None:
    print(f"[bench recallq {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr,
          flush=True)


# -- the measure (pure numpy; tests/test_bench_recallq.py) ------------------------------


def exact_topk(corpus: npt.NDArray[np.float32], queries: npt.NDArray[np.float32],
               k: int) -> Ids:
    """Row indices of the ``k`` most cosine-similar corpus rows per query, best first
    (rows are unit vectors, so similarity is the dot product)."""
    sims = queries @ corpus.T
    k = min(k, corpus.shape[0])
    part = np.argpartition(-sims, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(sims, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1).astype(np.int64)


def recall_at_k(got: Sequence[Sequence[int]], exact: Ids, k: int) -> list[float]:
    """Per query, |got[:k] ∩ exact[:k]| / k."""
    return [len(set(g[:k]) & set(e[:k].tolist())) / k
            for g, e in zip(got, exact, strict=True)]


def tied_recall_at_k(got: Sequence[Sequence[int]], exact: Ids, k: int,
                     corpus: npt.NDArray[np.float32], queries: npt.NDArray[np.float32],
                     eps: float) -> list[float]:
    """Per query, the share of got[:k] whose exact similarity is at least the k-th best's
    minus ``eps``: a memory as near as the k-th is as good an answer."""
    out = []
    for g, e, q in zip(got, exact, queries, strict=True):
        kth = float(corpus[e[k - 1]] @ q)
        picked = list(dict.fromkeys(g[:k]))
        out.append(sum(1 for i in picked if float(corpus[i] @ q) >= kth - eps) / k)
    return out


def summary(values: Sequence[float]) -> dict[str, float]:
    return {"median": round(percentile(values, 50), 4), "p5": round(percentile(values, 5), 4),
            "min": round(min(values), 4) if values else float("nan"),
            "mean": round(float(np.mean(values)), 4) if values else float("nan")}


# -- one size ---------------------------------------------------------------------------


Search = Callable[[npt.NDArray[np.float32]], list[str]]


def _measure(search: Search, index: dict[str, int], queries: npt.NDArray[np.float32],
             exact: Ids, corpus: npt.NDArray[np.float32], k: int, eps: float
             ) -> dict[str, Any]:
    for q in queries[:10]:  # warm-up: load the index
        search(q)
    got, seconds = [], []
    for q in queries:
        t = time.perf_counter()
        ids = search(q)
        seconds.append(time.perf_counter() - t)
        got.append([index[mid] for mid in ids])
    return {"recall": summary(recall_at_k(got, exact, k)),
            "recall_tied": summary(tied_recall_at_k(got, exact, k, corpus, queries, eps)),
            "latency": {key: v for key, v in latency_summary(seconds).items()
                        if key in ("p50_ms", "p95_ms")}}


def node_search(node: Any, k: int, mesh: bool) -> Search:
    def search(q: npt.NDArray[np.float32]) -> list[str]:
        result = node.recall("", k, mesh=mesh, embedding=q.astype("<f4").tobytes())
        return [h.id for h in result.hits]
    return search


def raw_search(collection: Any, k: int) -> Search:
    def search(q: npt.NDArray[np.float32]) -> list[str]:
        res: Any = collection.query(query_embeddings=q.reshape(1, -1), n_results=k,
                                    include=["distances"])
        return list(res["ids"][0])
    return search


def _hnsw(collection: Any) -> dict[str, Any]:
    config = collection.configuration_json.get("hnsw") or {}
    return {key: config.get(key) for key in ("ef_construction", "max_neighbors", "ef_search")}


def _variant(spec: str) -> dict[str, int]:
    out = {}
    for part in filter(None, spec.replace("default", "").split(",")):
        key, _, value = part.partition("=")
        if key not in ("max_neighbors", "ef_construction", "ef_search"):
            raise SystemExit(f"bench recallq: unknown HNSW setting {key!r}")
        out[key] = int(value)
    return out


def build_variant(path: Path, settings: dict[str, int], ids: list[str],
                  vectors: npt.NDArray[np.float32]) -> tuple[Any, float]:
    """A raw Chroma collection of ``vectors`` with HNSW ``settings``; its build seconds."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(path),
                                       settings=Settings(anonymized_telemetry=False))
    config: Any = {"hnsw": {"space": "cosine", **settings}}
    collection = client.create_collection("variant", embedding_function=None,
                                          configuration=config)
    step = int(client.get_max_batch_size())
    started = time.perf_counter()
    for start in range(0, len(ids), step):
        collection.add(ids=ids[start:start + step], embeddings=vectors[start:start + step])
    return collection, time.perf_counter() - started


def one_size(n: int, tv: Any, queries: npt.NDArray[np.float32], args: argparse.Namespace,
             work: Path) -> dict[str, Any]:
    from bench import _recallq_load as load

    k, eps = args.k, args.eps
    corpus = tv.corpus(n)
    exact = exact_topk(corpus, queries, k)
    _say(f"{n}: remembering on the origin node")
    origin = load.open_node(work / f"origin-{n}", tv.embedder)
    mesh = load.open_node(work / f"mesh-{n}", tv.embedder)
    try:
        ids, own_load = load.remember_all(origin, tv.texts(n), corpus, timeout=3600)
        _say(f"{n}: {own_load}; replicating to the mesh node")
        replica_load = load.replicate_all(origin, mesh, timeout=3600)
        _say(f"{n}: {replica_load}; measuring")
        counts = (origin.store.count_local(), mesh.store.count_replicas())
        if counts != (n, n):
            raise RuntimeError(f"Chroma holds {counts}, expected {n} own and {n} replicas")
        index = {mid: i for i, mid in enumerate(ids)}
        raw_local = load.raw_collection(origin, "memories")
        raw_replicas = load.raw_collection(mesh, "replicas")
        targets = {"node_local": node_search(origin, k, mesh=False),
                   "node_mesh": node_search(mesh, k, mesh=True),
                   "raw_local": raw_search(raw_local, k),
                   "raw_replicas": raw_search(raw_replicas, k)}
        out: dict[str, Any] = {
            "n": n, "load": {"own": own_load, "replicas": replica_load},
        }
        row = {"hnsw": _hnsw(raw_local), **{name: _measure(fn, index, queries, exact,
                                                           corpus, k, eps)
                                            for name, fn in targets.items()}}
        _say(f"{n} {row['hnsw']}: " + ", ".join(
            f"{name} {row[name]['recall']['mean']}/p5 {row[name]['recall']['p5']} "
            f"{row[name]['latency']['p95_ms']} ms" for name in targets))
        out["default"] = row
    finally:
        origin.close()
        mesh.close()
    out["variants"] = []
    for spec in args.variant:
        settings = _variant(spec)
        _say(f"{n}: building a raw collection with {settings}")
        collection, built = build_variant(work / f"variant-{n}-{len(out['variants'])}",
                                          settings, ids, corpus)
        row = {"hnsw": _hnsw(collection),
               "raw": _measure(raw_search(collection, k), index, queries, exact, corpus, k,
                               eps)}
        _say(f"{n} variant {row['hnsw']}: built in {built:.1f}s, recall {row['raw']['recall']}, "
             f"p95 {row['raw']['latency']['p95_ms']} ms")
        out["variants"].append({**row, "build_s": round(built, 1),
                                "build_per_s": round(n / built, 1)})
    return out


def run(args: argparse.Namespace) -> int:
    from bench._textvec import TextVectors
    from memnode.embedders import load_embedder

    sizes = ([int(s) for s in args.sizes.split(",")] if args.sizes
             else [10_000] if args.quick else [10_000, 100_000])
    out_path = args.json or RESULTS / ("recallq-quick.json" if args.quick else "recallq.json")
    work = args.workdir or Path(tempfile.mkdtemp(prefix="memnode-bench-recallq-"))
    work.mkdir(parents=True, exist_ok=True)
    tv = TextVectors(load_embedder(args.embedder), say=_say)
    queries = tv.queries(args.queries)
    results: dict[str, Any] = {
        "benchmark": "recallq", "format": 1, "complete": False,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench recallq", *sys.argv[2:]]),
        "machine": machine_info(), "k": args.k, "queries": len(queries), "eps": args.eps,
        "embedder": str(tv.embedder.model), "cache": str(tv.root), "sizes": [],
    }
    try:
        for n in sizes:
            results["sizes"].append(one_size(n, tv, queries, args, work))
            results["embedded_now"] = tv.embedded
            write_json(out_path, results)
        results["complete"] = True
        write_json(out_path, results)
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    _say(f"results in {out_path}")
    return 0
