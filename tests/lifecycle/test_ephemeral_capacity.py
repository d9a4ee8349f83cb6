"""A full ephemeral store refuses with RESOURCE_EXHAUSTED and never acknowledges a
memory it does not hold, even with many writers racing near capacity."""

from __future__ import annotations

import threading
from typing import Any

import pytest

from memnode.errors import ResourceExhausted
from memnode.node.ingest import RememberInput
from memnode.node.node import Node

from helpers import wait_for

CAPACITY = 5
THREADS = 12


class GateLock:
    """The node's write lock, held shut by the test while writers pile up behind it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._count = threading.Lock()
        self.waiting = 0

    def __enter__(self) -> GateLock:
        with self._count:
            self.waiting += 1
        self._lock.acquire()
        with self._count:
            self.waiting -= 1
        return self

    def __exit__(self, *exc: Any) -> None:
        self._lock.release()

    def acquire(self) -> None:
        self._lock.acquire()

    def release(self) -> None:
        self._lock.release()


def _item(text: str, privacy: int = 1) -> RememberInput:
    return RememberInput(text=text.encode(), metadata={}, privacy=privacy,
                         ttl_seconds=600 if privacy == 1 else 0)


def test_racing_writers_get_ids_only_for_stored_memories(node_factory) -> None:  # type: ignore[no-untyped-def]
    node: Node = node_factory(ephemeral_max_items=CAPACITY).node
    gate = GateLock()
    node._commits._write_lock = gate  # type: ignore[assignment]
    acked: list[str] = []
    refused: list[str] = []
    lock = threading.Lock()

    def writer(n: int) -> None:
        try:
            ids = [r.id for r in node.remember([_item(f"thought {n}")])]
        except ResourceExhausted as exc:
            with lock:
                refused.append(str(exc))
            return
        with lock:
            acked.extend(ids)

    gate.acquire()
    threads = [threading.Thread(target=writer, args=(n,), daemon=True) for n in range(THREADS)]
    for t in threads:
        t.start()
    # the first writer leads its group of one and waits on the lock; the others queue
    # behind it and commit as the next group, at capacity
    wait_for(lambda: gate.waiting == 1 and node._commits.queued() == THREADS - 1,
             f"{THREADS} writers waiting on the commit queue", timeout=30)
    gate.release()
    for t in threads:
        t.join(30)
    assert len(acked) == CAPACITY
    assert len(refused) == THREADS - CAPACITY
    assert all("ephemeral store is full" in r for r in refused)
    assert node.ephemeral.count() == CAPACITY
    for mid in acked:
        assert node.get(mid).id == mid
    assert node._commits.groups == 2


def test_a_batch_that_does_not_fit_stores_nothing(node_factory) -> None:  # type: ignore[no-untyped-def]
    node: Node = node_factory(ephemeral_max_items=3).node
    node.remember([_item("a"), _item("b")])
    with pytest.raises(ResourceExhausted):
        node.remember([_item("c"), _item("d"), _item("kept?", 2)])
    assert node.ephemeral.count() == 2
    assert node.store.count_local() == 0
