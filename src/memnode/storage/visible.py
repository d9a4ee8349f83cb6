"""What readers see: Chroma's collections with the index tail laid over them.

Every read takes the tail first, then Chroma: an entry leaves the tail only after Chroma
holds it, so a change the tail no longer shows is already in Chroma. A memory in the
tail shadows Chroma's copy (an update replaces it, a forget hides it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence

import numpy as np

from federation.events import origin_of
from memnode.errors import Unavailable
from memnode.node.domain import (
    Hit,
    LocalRecord,
    MetaValue,
    Privacy,
    ReplicaRecord,
    Vector,
    cosine_score,
)
from memnode.storage.chroma import ChromaStore
from memnode.storage.tail import IndexTail, Record, match_local, match_replica

#: Chroma is asked for at most this many extra hits to make up for shadowed ones.
MAX_OVERFETCH = 1000
#: How long a filter over own memories waits for an index batch in progress.
FIND_WAIT_SECONDS = 30.0


class VisibleStore:
    def __init__(self, store: ChromaStore, tail: IndexTail) -> None:
        self.store = store
        self.tail = tail

    def count_local(self) -> int:
        with self.tail.indexing:
            return max(0, self.store.count_local() + self.tail.shadow("local")[2])

    def count_replicas(self) -> int:
        with self.tail.indexing:
            return max(0, self.store.count_replicas() + self.tail.shadow("replicas")[2])

    def get_local(self, memory_id: str) -> LocalRecord | None:
        decided, record = self.tail.get("local", memory_id)
        if decided:
            assert record is None or isinstance(record, LocalRecord)
            return record
        return self.store.get_local(memory_id)

    def get_local_many(self, ids: Sequence[str]) -> dict[str, LocalRecord]:
        """get_local of many ids: the tail's decisions, then one Chroma read for the rest."""
        return self._many("local", ids, self.store.get_local_many)  # type: ignore[return-value]

    def get_replica_many(self, ids: Sequence[str]) -> dict[str, ReplicaRecord]:
        return self._many("replicas", ids, self.store.get_replica_many)  # type: ignore[return-value]

    def _many(self, collection: str, ids: Sequence[str],
              from_chroma: Callable[[Sequence[str]], Sequence[Record]]) -> dict[str, Record]:
        found: dict[str, Record] = {}
        rest = []
        for memory_id in ids:
            decided, record = self.tail.get(collection, memory_id)
            if not decided:
                rest.append(memory_id)
            elif record is not None:
                found[memory_id] = record
        found.update((r.id, r) for r in from_chroma(rest))
        return found

    def get_replica(self, memory_id: str) -> ReplicaRecord | None:
        decided, record = self.tail.get("replicas", memory_id)
        if decided:
            assert record is None or isinstance(record, ReplicaRecord)
            return record
        return self.store.get_replica(memory_id)

    def find_local(self, where: Mapping[str, MetaValue]) -> dict[str, Privacy]:
        """Own persisted memories whose clear metadata equals ``where``, in the tail and
        in Chroma (the tail decides the memories it holds): id -> privacy."""
        # no batch may delete rows under Chroma's offsets meanwhile; a stuck one refuses
        if not self.tail.indexing.acquire(timeout=FIND_WAIT_SECONDS):
            raise Unavailable(f"the indexer has held Chroma for {FIND_WAIT_SECONDS:g} s; "
                              "try again")
        try:
            records, decided = self.tail.matching("local", match_local(where))
            found = {mid: p for mid, p in self.store.find_local(where).items()
                     if mid not in decided}
        finally:
            self.tail.indexing.release()
        found.update({r.id: r.privacy for r in records})
        return found

    def query(self, embedding: Vector, k: int, *, include_replicas: bool,
              where_local: Mapping[str, MetaValue] | None = None,
              where_replica: Mapping[str, Sequence[MetaValue]] | None = None) -> list[Hit]:
        query = np.asarray(embedding, dtype=np.float32).reshape(-1)
        where_local = where_local or {}
        where_replica = where_replica or {}
        found, shadow, held = self.tail.search("local", query, k, match_local(where_local))
        hits = [_local_hit(s, r) for s, r in found if isinstance(r, LocalRecord)]
        if include_replicas:
            found, more, more_held = self.tail.search("replicas", query, k,
                                                      match_replica(where_replica))
            hits += [_replica_hit(s, r) for s, r in found if isinstance(r, ReplicaRecord)]
            shadow |= more
            held += more_held
        indexed = self.store.query(query, k + min(held, MAX_OVERFETCH),
                                   include_replicas=include_replicas,
                                   where_local=where_local, where_replica=where_replica)
        hits += [h for h in indexed if h.id not in shadow]
        hits.sort(key=lambda h: h.score, reverse=True)
        return hits[:k]


def _local_hit(score: float, r: LocalRecord) -> Hit:
    return Hit(id=r.id, origin=origin_of(r.id), score=cosine_score(score), privacy=r.privacy,
               local=True, created_at_ms=r.created_at_ms, text=r.text,
               metadata=dict(r.metadata))


def _replica_hit(score: float, r: ReplicaRecord) -> Hit:
    return Hit(id=r.id, origin=r.origin, score=cosine_score(score), privacy=r.privacy,
               local=False, created_at_ms=r.created_at_ms, metadata=dict(r.metadata))

