"""The Chroma adapter: this node's memories and its replicas of others', on local disk.

Two collections, so the hot path never filters by origin (a ``where`` filter is 5x slower
at 10k vectors and 20-35x at 100k on these machines):

- ``memories``: own memories, with reserved keys ``_privacy``, ``_created``, ``_updated``;
  encrypted at rest (a sealer, :mod:`memnode.storage.atrest`): no document, text and
  metadata sealed in ``_sealed``, each user metadata value as its keyed hash (for
  ``where``); a store kept in clear: text in ``documents``, metadata in clear;
- ``replicas``: other nodes' memories, with no document, shared metadata (TEAM values are
  keyed hashes) and reserved keys ``_origin``, ``_privacy``, ``_created``, ``_updated``.

Cosine space, explicit embeddings, telemetry off (:mod:`memnode.storage.chroma_calls`,
which also runs Chroma in a process of its own for the node), writes batched within
``get_max_batch_size()``. This module shapes what Chroma stores and reads it back; it
seals own memories before they reach Chroma.

What "forget" leaves on disk: Chroma deletes are soft in its files. The record leaves the
index and every query at once, but its bytes (the sealed text and metadata, whose key
forget destroyed; the metadata hashes; the vector) can remain in Chroma's SQLite pages
and WAL and in HNSW segment files until ``memnode compact``. See docs/STORAGE.md.
"""

from __future__ import annotations

import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from memnode.errors import DataDirError
from memnode.node.domain import (
    Hit,
    LocalRecord,
    MetaValue,
    Privacy,
    ReplicaRecord,
    Vector,
)
from memnode.storage import chroma_rows as rows
from memnode.storage.chroma_calls import (
    LOCAL,
    REPLICAS,
    ChromaCalls,
    ChromaError,
    ChromaProcess,
    InlineChroma,
)

if TYPE_CHECKING:
    from memnode.storage.atrest import Sealer

CHROMA_DIR = "chroma"
__all__ = ["CHROMA_DIR", "LOCAL", "REPLICAS", "ChromaError", "ChromaStore"]
def _where(clauses: list[dict[str, Any]]) -> dict[str, Any] | None:
    if not clauses:
        return None
    return clauses[0] if len(clauses) == 1 else {"$and": clauses}


class _FirstWrite:
    """Chroma 1.5.9 fails a query that runs while the first write to a never-written
    collection creates its HNSW files ("Error creating hnsw segment reader: Nothing found
    on disk"); later writes do not race. So until a collection's first upsert is done,
    its queries and writes take turns; after it, this costs one flag read."""

    def __init__(self, written: bool) -> None:
        self.written = written
        self._lock = threading.Lock()

    def turn(self) -> Any:
        return nullcontext() if self.written else self._lock

    @contextmanager
    def upsert(self) -> Iterator[None]:
        with self.turn():
            yield
        self.written = True


class ChromaStore:
    """Thread-safe as Chroma's client is; the node serialises writes. ``process``: Chroma
    runs in a child process of its own (:mod:`memnode.storage.chroma_calls`: its writes
    hold the GIL), else in this one (offline tools and tests)."""

    def __init__(self, data_dir: Path, dim: int, sealer: Sealer | None = None, *,
                 process: bool = False) -> None:
        self.path = data_dir / CHROMA_DIR
        self.dim = dim
        self.sealer = sealer
        try:
            self._db: ChromaCalls = ChromaProcess(self.path) if process else InlineChroma(
                self.path)
        except ChromaError as exc:
            raise DataDirError(str(exc)) from exc
        self.batch_size = self._db.batch_size
        #: Chroma's count per collection, taken again right after each write: a Status
        #: never calls Chroma (in a child busy with a batch, a count waited for it)
        self._counts: dict[str, int] = {}
        self._first_local = _FirstWrite(self.count_local() > 0)
        self._first_replicas = _FirstWrite(self.count_replicas() > 0)

    # -- writes -------------------------------------------------------------------------

    def close(self) -> None:
        """Release Chroma's files and threads (or end its process)."""
        self._db.close()

    def _batches(self, n: int) -> range:
        return range(0, n, self.batch_size)

    def _removed_keys(self, collection: str, records: Sequence[LocalRecord | ReplicaRecord],
                      changed_ids: Collection[str]) -> dict[str, dict[str, None]]:
        """Chroma's upsert merges metadata: keys a changed record dropped must be set to None.
        Only records changed after creation can have dropped keys, so new ones cost no read."""
        changed = [r for r in records if r.id in changed_ids]
        if not changed:
            return {}
        got = self._db.call(collection, "get", ids=[r.id for r in changed],
                            include=["metadatas"])
        wanted = {r.id: r.metadata for r in changed}
        return {
            mid: {k: None for k in (old or {}) if k not in rows.RESERVED and k not in wanted[mid]}
            for mid, old in zip(got["ids"], got["metadatas"], strict=True)
        }

    @contextmanager
    def _writing(self, collection: str) -> Iterator[None]:
        """A write to ``collection``; then its count, again (forgotten if it failed)."""
        self._counts.pop(collection, None)
        yield
        self._counts[collection] = int(self._db.call(collection, "count"))

    def upsert_local(self, records: Sequence[LocalRecord]) -> None:
        """Sealed: a record whose data key is gone (forgotten since) is skipped."""
        with self._writing(LOCAL):
            self._upsert_local(records)

    def _upsert_local(self, records: Sequence[LocalRecord]) -> None:
        for start in self._batches(len(records)):
            chunk = records[start : start + self.batch_size]
            sealed: dict[str, dict[str, Any]] = {}
            if self.sealer is not None:
                keys = self.sealer.keys([r.id for r in chunk])
                chunk = [r for r in chunk if r.id in keys]
                if not chunk:
                    continue
                sealed = {r.id: {**self.sealer.tokens(r.metadata), "_sealed": self.sealer.seal(
                    keys[r.id], r.id, r.text, r.metadata)} for r in chunk}
            updated = {r.id for r in chunk if r.updated_at_ms != r.created_at_ms}
            removed = self._removed_keys(LOCAL, chunk, updated)
            with self._first_local.upsert():
                self._db.call(
                    LOCAL, "upsert", ids=[r.id for r in chunk],
                    embeddings=np.stack([r.embedding for r in chunk]),
                    documents=None if self.sealer else [r.text for r in chunk],
                    metadatas=[
                        {
                            **removed.get(r.id, {}),
                            **sealed.get(r.id, r.metadata),
                            "_privacy": int(r.privacy),
                            "_created": r.created_at_ms,
                            "_updated": r.updated_at_ms,
                        }
                        for r in chunk
                    ],
                )

    def upsert_replicas(self, records: Sequence[ReplicaRecord],
                        changed_ids: Collection[str] = ()) -> None:
        """``changed_ids``: replicas that existed before (their dropped keys are removed)."""
        with self._writing(REPLICAS):
            self._upsert_replicas(records, changed_ids)

    def _upsert_replicas(self, records: Sequence[ReplicaRecord],
                         changed_ids: Collection[str]) -> None:
        for start in self._batches(len(records)):
            chunk = records[start : start + self.batch_size]
            removed = self._removed_keys(REPLICAS, chunk, changed_ids)
            with self._first_replicas.upsert():
                self._db.call(
                    REPLICAS, "upsert", ids=[r.id for r in chunk],
                    embeddings=np.stack([r.embedding for r in chunk]),
                    metadatas=[
                        {
                            **removed.get(r.id, {}),
                            **r.metadata,
                            "_origin": r.origin,
                            "_privacy": int(r.privacy),
                            "_created": r.created_at_ms,
                            "_updated": r.updated_at_ms,
                        }
                        for r in chunk
                    ],
                )

    def delete_local(self, ids: Sequence[str]) -> None:
        with self._writing(LOCAL):
            for start in self._batches(len(ids)):
                with self._first_local.turn():
                    self._db.call(LOCAL, "delete",
                                  ids=list(ids[start : start + self.batch_size]))

    def delete_replicas(self, ids: Sequence[str]) -> None:
        with self._writing(REPLICAS):
            for start in self._batches(len(ids)):
                with self._first_replicas.turn():
                    self._db.call(REPLICAS, "delete",
                                  ids=list(ids[start : start + self.batch_size]))

    # -- reads --------------------------------------------------------------------------

    def count_local(self) -> int:
        return self._count(LOCAL)

    def count_replicas(self) -> int:
        return self._count(REPLICAS)

    def _count(self, collection: str) -> int:
        count = self._counts.get(collection)
        if count is None:
            count = self._counts[collection] = int(self._db.call(collection, "count"))
        return count

    def existing_local(self, ids: Sequence[str]) -> set[str]:
        return self._existing(LOCAL, ids)

    def existing_replicas(self, ids: Sequence[str]) -> set[str]:
        return self._existing(REPLICAS, ids)

    def _existing(self, collection: str, ids: Sequence[str]) -> set[str]:
        return {i for got in self._get_many(collection, ids, []) for i in got["ids"]}

    def find_local(self, where: Mapping[str, MetaValue]) -> dict[str, Privacy]:
        """Own memories whose clear metadata equals ``where`` (the filter recall uses):
        id -> privacy. ``where`` must not be empty."""
        assert where, "find_local needs a filter"
        found: dict[str, Privacy] = {}
        offset = 0
        while True:
            got = self._db.call(LOCAL, "get", where=self._local_where(where),
                                limit=self.batch_size, offset=offset, include=["metadatas"])
            metas: list[Any] = got["metadatas"] or []
            for mid, meta in zip(got["ids"], metas, strict=True):
                found[mid] = Privacy(int((meta or {}).get("_privacy", Privacy.PRIVATE)))
            if len(got["ids"]) < self.batch_size:
                return found
            offset += len(got["ids"])

    def get_local(self, memory_id: str) -> LocalRecord | None:
        got = self._db.call(LOCAL, "get", ids=[memory_id], include=_INCLUDE_ALL)
        records = rows.local_records(self.sealer, got)
        return records[0] if records else None

    def get_local_many(self, ids: Sequence[str]) -> list[LocalRecord]:
        """The own memories of ``ids`` that Chroma holds (one call per batch)."""
        return [r for got in self._get_many(LOCAL, ids, _INCLUDE_ALL)
                for r in rows.local_records(self.sealer, got)]

    def get_replica_many(self, ids: Sequence[str]) -> list[ReplicaRecord]:
        return [r for got in self._get_many(REPLICAS, ids, _INCLUDE_REPLICA)
                for r in rows.replica_records(got)]

    def _get_many(self, collection: str, ids: Sequence[str], include: Any) -> list[Any]:
        unique = list(dict.fromkeys(ids))
        return [self._db.call(collection, "get", ids=unique[start: start + self.batch_size],
                              include=include)
                for start in self._batches(len(unique))]

    def get_replica(self, memory_id: str) -> ReplicaRecord | None:
        records = rows.replica_records(
            self._db.call(REPLICAS, "get", ids=[memory_id], include=_INCLUDE_REPLICA)
        )
        return records[0] if records else None

    def list_local(self, offset: int, limit: int) -> list[LocalRecord]:
        """Rows by offset: only while nothing writes (a backup's snapshot)."""
        got = self._db.call(LOCAL, "get", limit=limit, offset=offset, include=_INCLUDE_ALL)
        return rows.local_records(self.sealer, got)

    def local_ids(self) -> set[str]:
        ids: set[str] = set()
        while True:
            got = self._db.call(LOCAL, "get", limit=self.batch_size, offset=len(ids),
                                include=[])
            ids.update(got["ids"])
            if len(got["ids"]) < self.batch_size:
                return ids

    def query(
        self,
        embedding: Vector,
        k: int,
        *,
        include_replicas: bool,
        where_local: Mapping[str, MetaValue] | None = None,
        where_replica: Mapping[str, Sequence[MetaValue]] | None = None,
    ) -> list[Hit]:
        """The ``k`` nearest own memories (and replicas), merged by cosine similarity.

        ``where_replica`` maps each key to the values a replica may hold for it (the clear
        value of PUBLIC metadata or the keyed hash of TEAM metadata).
        """
        query = np.asarray(embedding, dtype=np.float32).reshape(1, -1)
        hits = self._query_local(query, k, where_local or {})
        if include_replicas:
            hits += self._query_replicas(query, k, where_replica or {})
            hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]

    def _local_where(self, where: Mapping[str, MetaValue]) -> dict[str, Any] | None:
        """Chroma's filter for own memories: equality on each value, as stored (its keyed
        token when the store is sealed)."""
        return _where([{key: self.sealer.token(value) if self.sealer else value}
                       for key, value in where.items()])

    def _query_local(self, query: Vector, k: int, where: Mapping[str, MetaValue]) -> list[Hit]:
        with self._first_local.turn():
            res: Any = self._db.call(
                LOCAL, "query", query_embeddings=query,
                n_results=k,
                where=self._local_where(where),
                include=["documents", "metadatas", "distances"],
            )
        return rows.local_hits(self.sealer, res)

    def _query_replicas(
        self, query: Vector, k: int, where: Mapping[str, Sequence[MetaValue]]
    ) -> list[Hit]:
        clauses: list[dict[str, Any]] = []
        for key, values in where.items():
            alternatives = [{key: v} for v in values]
            clauses.append(alternatives[0] if len(alternatives) == 1 else {"$or": alternatives})
        with self._first_replicas.turn():
            res: Any = self._db.call(
                REPLICAS, "query", query_embeddings=query,
                n_results=k,
                where=_where(clauses),
                include=["metadatas", "distances"],
            )
        return rows.replica_hits(res)


_INCLUDE_ALL: Any = ["embeddings", "documents", "metadatas"]
_INCLUDE_REPLICA: Any = ["embeddings", "metadatas"]
