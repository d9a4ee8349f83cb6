"""Real nodes for the recall-quality benchmark: vectors in as own memories and as
replicas, each through the node's own write path, then every one in Chroma.

- ``origin`` node: the corpus goes in as its own memories with ``Node.remember``
  (batches of 1,000, text plus a precomputed embedding declared as the node's model, so
  each is validated, redacted, signed, logged and indexed like a client write);
- ``mesh`` node: the origin's signed events go through the pure replication core
  (``ReplicaState.apply_run``, signatures verified) and the node's durable path
  (``Node.persist_replication``), as the sidecar delivers them, into its replicas
  collection.

Both run in this process on data dirs under the work dir, with ``sync=normal``; ``settle``
waits until the index tail is empty, so that every vector is in Chroma and Chroma's HNSW
is what a recall searches.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

BATCH = 1000
RUN_EVENTS = 1000
RUN_BYTES = 32 << 20


def open_node(data_dir: Path, embedder: Any) -> Any:
    from memnode.config import NodeConfig
    from memnode.node.node import Node

    cfg = NodeConfig(data_dir=data_dir, listen="127.0.0.1:0", embedder="minilm",
                     sync="normal")
    return Node(cfg, embedder=embedder)


def settle(node: Any, timeout: float) -> None:
    """Poll until the index tail is empty (everything in Chroma), within ``timeout``."""
    deadline = time.monotonic() + timeout
    while node.tail.count() > 0:
        if time.monotonic() > deadline:
            raise TimeoutError(f"index tail still holds {node.tail.count()} after {timeout}s")
        node.indexer.flush(min(5.0, max(0.1, deadline - time.monotonic())))


def remember_all(node: Any, texts: list[str], vectors: np.ndarray[Any, Any],
                 timeout: float) -> tuple[list[str], dict[str, float]]:
    """Own memories of ``texts`` with their ``vectors``; their ids in order, the seconds
    Remember took and the seconds until the tail was empty (indexing included)."""
    from memnode.node.ingest import RememberInput

    ids: list[str] = []
    started = time.perf_counter()
    for start in range(0, len(texts), BATCH):
        items = [RememberInput(text=t, embedding=v.astype("<f4").tobytes(),
                               embedding_model=node.model)
                 for t, v in zip(texts[start:start + BATCH], vectors[start:start + BATCH],
                                 strict=True)]
        ids += [r.id for r in node.remember(items)]
    remembered = time.perf_counter() - started
    settle(node, timeout)
    return ids, {"remember_s": round(remembered, 2),
                 "indexed_s": round(time.perf_counter() - started, 2),
                 "remember_per_s": round(len(texts) / remembered, 1)}


def replicate_all(origin: Any, mesh: Any, timeout: float) -> dict[str, float]:
    """Every event of ``origin`` into ``mesh``'s replicas, as the sidecar would."""
    from federation.replica import ReplicaState

    core = ReplicaState(mesh.node_id, mesh.limits)
    started = time.perf_counter()
    after, applied = 0, 0
    while True:
        run = origin.log.run_after(origin.node_id, after, RUN_EVENTS, RUN_BYTES)
        if not run.events:
            break
        res = core.apply_run(run)
        if res.rejected:
            raise RuntimeError(f"the replication core rejected events: {res.rejected}")
        mesh.persist_replication(res.effects)
        applied += len(run.events)
        after = run.through_seq
    persisted = time.perf_counter() - started
    settle(mesh, timeout)
    return {"events": applied, "persist_s": round(persisted, 2),
            "indexed_s": round(time.perf_counter() - started, 2)}


def raw_collection(node: Any, name: str) -> Any:
    """The node's Chroma collection ``name``, opened directly (same path, same process:
    Chroma shares one system per path)."""
    import chromadb
    from chromadb.config import Settings

    client = chromadb.PersistentClient(path=str(node.store.path),
                                       settings=Settings(anonymized_telemetry=False))
    return client.get_collection(name, embedding_function=None)
