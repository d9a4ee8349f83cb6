"""Chroma 1.5.9 fails a query that runs while the first write to a never-written
collection creates its HNSW files ("Nothing found on disk"); the store makes them take
turns, so recall never sees that error (it did in a 3-node test, 1 run in ~20)."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np

from memnode.node.domain import LocalRecord, Privacy, ReplicaRecord
from memnode.storage.chroma import ChromaStore

TRIALS = 25
READERS = 3


def _vectors(rng: np.random.Generator, n: int) -> np.ndarray:
    v = rng.standard_normal((n, 8)).astype(np.float32)
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_queries_during_the_first_writes_never_fail(tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    errors: list[str] = []
    for trial in range(TRIALS):
        store = ChromaStore(tmp_path / f"t{trial}", 8)
        done = threading.Event()

        def read(store: ChromaStore = store, done: threading.Event = done) -> None:
            while not done.is_set():
                try:
                    store.query(_vectors(rng, 1)[0], 3, include_replicas=True)
                except Exception as exc:  # the failure this test is about
                    errors.append(repr(exc))

        readers = [threading.Thread(target=read) for _ in range(READERS)]
        for t in readers:
            t.start()
        try:
            for batch in range(3):
                vecs = _vectors(rng, 4)
                store.upsert_local([LocalRecord(id=f"n1/{batch}-{i}", text="t", embedding=v,
                                                metadata={}, privacy=Privacy.PRIVATE,
                                                created_at_ms=1, updated_at_ms=1)
                                    for i, v in enumerate(vecs)])
                store.upsert_replicas([ReplicaRecord(id=f"n2/{batch}-{i}", origin="n2",
                                                     embedding=v, metadata={},
                                                     privacy=Privacy.TEAM, created_at_ms=1,
                                                     updated_at_ms=1)
                                       for i, v in enumerate(vecs)])
        finally:
            done.set()
            for t in readers:
                t.join(30)
        assert len(store.query(_vectors(rng, 1)[0], 30, include_replicas=True)) == 24
        store.close()
    assert errors == []
