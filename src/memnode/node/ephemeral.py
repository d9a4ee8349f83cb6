"""EPHEMERAL memories: held in process memory with a TTL, never persisted or replicated."""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence

import numpy as np

from federation.events import origin_of
from memnode.node.domain import Hit, LocalRecord, MetaValue, Vector, cosine_score
from memnode.storage.tail import match_local


class EphemeralStore:
    """A small in-memory store searched by brute force (it holds few, short-lived items)."""

    def __init__(self, clock_ms: Callable[[], int], max_items: int) -> None:
        self._clock_ms = clock_ms
        self._max_items = max_items
        self._items: dict[str, LocalRecord] = {}
        self._lock = threading.Lock()

    def _expire(self) -> None:
        now = self._clock_ms()
        for mid in [m for m, r in self._items.items() if r.expires_at_ms <= now]:
            del self._items[mid]

    def put(self, record: LocalRecord) -> bool:
        """Store ``record``; False when the store is full."""
        with self._lock:
            self._expire()
            if record.id not in self._items and len(self._items) >= self._max_items:
                return False
            self._items[record.id] = record
            return True

    def put_all(self, records: Sequence[LocalRecord]) -> bool:
        """Store every record or none: False (nothing stored) when they do not all fit.
        Policy when full: refuse, never evict (an acknowledged memory stays until its
        TTL or a forget)."""
        with self._lock:
            self._expire()
            new = {r.id for r in records if r.id not in self._items}
            if len(self._items) + len(new) > self._max_items:
                return False
            for record in records:
                self._items[record.id] = record
            return True

    def remove(self, ids: Sequence[str]) -> None:
        with self._lock:
            for memory_id in ids:
                self._items.pop(memory_id, None)

    def get(self, memory_id: str) -> LocalRecord | None:
        with self._lock:
            self._expire()
            return self._items.get(memory_id)

    def forget(self, memory_id: str) -> bool:
        with self._lock:
            return self._items.pop(memory_id, None) is not None

    def count(self) -> int:
        with self._lock:
            self._expire()
            return len(self._items)

    def records(self) -> list[LocalRecord]:
        with self._lock:
            self._expire()
            return list(self._items.values())

    def query(self, embedding: Vector, k: int, where: Mapping[str, MetaValue]) -> list[Hit]:
        match = match_local(where)  # the filter of every other store
        with self._lock:
            self._expire()
            records = [r for r in self._items.values() if match(r)]
        if not records:
            return []
        matrix = np.stack([r.embedding for r in records])
        scores = matrix @ np.asarray(embedding, dtype=np.float32)
        order = np.argsort(-scores)[:k]
        return [
            Hit(
                id=records[i].id,
                origin=origin_of(records[i].id),
                score=cosine_score(scores[i]),
                privacy=records[i].privacy,
                local=True,
                created_at_ms=records[i].created_at_ms,
                text=records[i].text,
                metadata=dict(records[i].metadata),
            )
            for i in order
        ]
