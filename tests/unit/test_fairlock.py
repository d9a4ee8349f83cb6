"""The index tail's lock serves waiters in order: a thread that releases it and asks
again at once (the indexer between batches) goes behind one already waiting (a count)."""

from __future__ import annotations

import threading

import pytest

from memnode.storage.fairlock import FairLock

from helpers import wait_for


def test_a_waiter_goes_before_a_releaser_that_asks_again() -> None:
    lock = FairLock()
    lock.acquire()
    got: list[str] = []
    waiter = threading.Thread(target=lambda: (lock.acquire(), got.append("waiter"),
                                              lock.release()))
    waiter.start()
    wait_for(lambda: lock.waiting() == 1, "the waiter to queue")
    lock.release()
    assert not lock.acquire(blocking=False), "the releaser jumped the queue"
    assert lock.acquire(timeout=10)  # behind the waiter, which has had its turn
    assert got == ["waiter"]
    lock.release()
    waiter.join(10)


def test_back_to_back_holders_do_not_starve_a_waiter() -> None:
    lock = FairLock()
    rounds = {"n": 0}
    stop = threading.Event()

    def indexer() -> None:
        while not stop.is_set():
            with lock:
                rounds["n"] += 1
                stop.wait(0.001)

    thread = threading.Thread(target=indexer)
    thread.start()
    wait_for(lambda: rounds["n"] > 2, "the loop to run")
    try:
        assert lock.acquire(timeout=5), "starved by a loop that re-takes the lock"
        held_at = rounds["n"]
        lock.release()
        assert held_at < 1000
    finally:
        stop.set()
        thread.join(10)


def test_a_timed_out_waiter_leaves_the_queue() -> None:
    lock = FairLock()
    lock.acquire()
    assert not lock.acquire(timeout=0.05)
    assert lock.waiting() == 0
    lock.release()
    assert lock.acquire(blocking=False)
    lock.release()
    with pytest.raises(RuntimeError):
        lock.release()
