"""The raw libraries' CPU cost per replicated entry, measured in the benchmark's own run:
a Chroma ``upsert`` of 384-dim vectors at batch 1, 10 and 100 (fresh collection in a
temp dir, as the node's replicas collection: cosine HNSW) and one Ed25519 verification
of a signed event (what the core checks for every event received)."""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from statistics import median
from typing import Any

import numpy as np

DIM = 384


def chroma_upsert_ms_per_vector(batches: tuple[int, ...] = (1, 10, 100),
                                vectors: int = 600, seed: int = 7) -> dict[str, float]:
    """Process CPU ms per vector upserted, by batch size (``vectors`` per size)."""
    import chromadb
    from chromadb.config import Settings

    rng = np.random.default_rng(seed)
    out: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="memnode-cpuref-") as tmp:
        client = chromadb.PersistentClient(path=str(Path(tmp)),
                                           settings=Settings(anonymized_telemetry=False))
        for batch in batches:
            col = client.create_collection(f"raw{batch}", metadata={"hnsw:space": "cosine"},
                                           embedding_function=None)
            col.upsert(ids=["warm"], embeddings=rng.standard_normal((1, DIM)).tolist())
            per_call = []
            for start in range(0, vectors, batch):
                vecs = rng.standard_normal((batch, DIM)).astype(np.float32)
                ids = [f"v{start + i}" for i in range(batch)]
                metas: list[Any] = [{"team": "h" * 16, "k": str(start + i)}
                                    for i in range(batch)]
                t = time.process_time()
                col.upsert(ids=ids, embeddings=vecs, metadatas=metas)
                per_call.append((time.process_time() - t) * 1000 / batch)
            out[str(batch)] = round(median(per_call), 3)
    return out


def verify_ms_per_event(n: int = 300) -> float:
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from federation import events as fe

    key = Ed25519PrivateKey.generate()
    event = fe.sign(fe.Event(
        origin=fe.node_id_from_public_key(fe.public_key_bytes(key)), seq=1,
        kind=fe.EventKind.PUT, local_id="m", timestamp_ms=1, privacy=fe.SharedPrivacy.TEAM,
        model=fe.ModelId("raw", DIM, "0" * 16), embedding=b"\1" * 4 * DIM,
        metadata={"team": "h" * 16}), key)
    t = time.process_time()
    for _ in range(n):
        assert fe.verify_signature(event)
    return round((time.process_time() - t) * 1000 / n, 4)
