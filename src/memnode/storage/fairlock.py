"""A lock that serves its waiters in the order they came.

``threading.Lock`` lets a thread that releases it and asks again at once take it before
a thread that has been waiting: the waiter is woken, but the releaser still runs. The
indexer does exactly that between back-to-back batches, so with a plain lock a Status
(which counts memories under the same lock) waited for a whole catch-up's indexing,
seconds. Here every acquire queues, and the lock goes to the oldest waiter.
"""

from __future__ import annotations

import threading
from collections import deque
from types import TracebackType

__all__ = ["FairLock"]


class FairLock:
    def __init__(self) -> None:
        self._cond = threading.Condition(threading.Lock())
        self._held = False
        self._queue: deque[object] = deque()

    def acquire(self, blocking: bool = True, timeout: float = -1) -> bool:
        me = object()
        with self._cond:
            if not self._held and not self._queue:
                self._held = True
                return True
            if not blocking:
                return False
            self._queue.append(me)
            turn = self._cond.wait_for(
                lambda: not self._held and self._queue[0] is me,
                None if timeout < 0 else timeout)
            if not turn:
                self._queue.remove(me)
                self._cond.notify_all()  # the next in line may be free to go now
                return False
            self._queue.popleft()
            self._held = True
            return True

    def release(self) -> None:
        with self._cond:
            if not self._held:
                raise RuntimeError("release of an unheld FairLock")
            self._held = False
            self._cond.notify_all()

    def waiting(self) -> int:
        """Threads queued for the lock now."""
        with self._cond:
            return len(self._queue)

    def __enter__(self) -> FairLock:
        self.acquire()
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.release()
