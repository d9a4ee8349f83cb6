"""Group commit: concurrent local writes share one synced log transaction.

Each writer queues its write and takes the node's write lock; whoever holds it first
commits every write queued so far (in queue order) in one transaction, then wakes the
others, whose writes are then durable. A writer that finds its write already committed
returns at once. So while one fsync runs, the writes arriving meanwhile gather into the
next group: "durable before ack" holds, and the log pays one sync per group.

A write is a function from the group's view of memories changed earlier in the same
group (:class:`Overlay`) to a :class:`Staged` change and the writer's result; the node
supplies it and the code that commits a group (:meth:`memnode.node.node.Node._run_group`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from federation.events import Event
from memnode.errors import ResourceExhausted
from memnode.node import validation
from memnode.node.domain import LocalRecord
from memnode.storage.durable import StoreWriteError

if TYPE_CHECKING:
    from memnode.node.node import Node

T = TypeVar("T")

#: Most writes committed in one group (each may be a RememberBatch of many memories).
MAX_GROUP = 64


@dataclass
class Staged:
    """One write's share of a group: records to put, ids to forget, its signed events,
    the puts that change a memory held before, and what undoes its side effects."""

    puts: list[LocalRecord] = field(default_factory=list)
    forgets: list[str] = field(default_factory=list)
    events: list[Event] = field(default_factory=list)
    changed: set[str] = field(default_factory=set)
    undo: list[Callable[[], object]] = field(default_factory=list)  # if it fails

    def extend(self, other: Staged) -> None:
        self.puts += other.puts
        self.forgets += other.forgets
        self.events += other.events
        self.changed |= other.changed


#: Memories changed by earlier writes of the same group: a record, or None if forgotten.
Overlay = dict[str, LocalRecord | None]
Write = Callable[[Overlay], tuple[Staged, Any]]


class Pending(Generic[T]):
    def __init__(self, write: Write) -> None:
        self.write = write
        self.done = False
        self.result: Any = None
        self.error: BaseException | None = None

    def succeed(self, result: Any) -> None:
        self.result, self.done = result, True

    def fail(self, error: BaseException) -> None:
        self.error, self.done = error, True


class CommitQueue:
    def __init__(self, write_lock: threading.Lock,
                 run_group: Callable[[list[Pending[Any]]], None]) -> None:
        self._write_lock = write_lock
        self._run_group = run_group
        self._queue: list[Pending[Any]] = []
        self._cond = threading.Condition(threading.Lock())
        self._leading = False
        self.groups = 0
        self.writes = 0

    def queued(self) -> int:
        with self._cond:
            return len(self._queue)

    def submit(self, write: Write) -> Any:
        """Queue ``write`` and return its result once it is durable (or raise its error).

        One writer at a time leads: it takes the queue (up to MAX_GROUP writes), commits
        it under the write lock, then wakes everyone; the writes queued meanwhile go to
        the next leader, so an acknowledged writer never waits for a later group."""
        pending: Pending[Any] = Pending(write)
        with self._cond:
            self._queue.append(pending)
            while not pending.done:
                if self._leading:
                    self._cond.wait()
                    continue
                self._leading = True
                group, self._queue = self._queue[:MAX_GROUP], self._queue[MAX_GROUP:]
                self._cond.release()
                try:
                    with self._write_lock:
                        self._run_group(group)
                finally:
                    for p in group:
                        if not p.done:
                            p.fail(RuntimeError("write was not committed"))
                    self._cond.acquire()
                    self._leading = False
                    self.groups += 1
                    self.writes += len(group)
                    self._cond.notify_all()
        if pending.error is not None:
            raise pending.error
        return pending.result


def group_commit(node: Node, group: list[Pending[object]]) -> None:
    """Node._run_group: commit a group of queued writes (under the write lock): refuse
    while restoring or failing, wait for room in the tail, stage each write in order
    (seqs, signatures, the door; a write that fails gives its seqs back), then one
    durable commit for all."""
    cfg = node.config
    try:
        node._writable()
        if not node.tail.wait_for_room(cfg.index_backpressure_seconds):
            raise ResourceExhausted(
                f"the index tail is full ({node.tail.count()} changes not yet in "
                f"Chroma, limits {cfg.index_tail_max_items} changes / "
                f"{cfg.index_tail_max_bytes} bytes) for "
                f"{cfg.index_backpressure_seconds}s: the indexer is behind")
    except BaseException as exc:  # noqa: BLE001 - handed to every writer
        for pending in group:
            pending.fail(exc)
        return
    overlay: Overlay = {}
    staged = Staged()
    accepted: list[tuple[Pending[object], Staged, object]] = []
    first_seq = node._seq
    for pending in group:
        seq = node._seq
        mine = Staged()
        try:
            mine, result = pending.write(overlay)
            validation.admit(mine.events, node.limits, node.metrics)
        except BaseException as exc:  # noqa: BLE001 - handed to its writer
            node._seq = seq
            for undo in mine.undo:
                undo()
            pending.fail(exc)
            continue
        overlay.update({r.id: r for r in mine.puts})
        overlay.update(dict.fromkeys(mine.forgets))
        staged.extend(mine)
        accepted.append((pending, mine, result))
    try:
        if staged.puts or staged.forgets:
            node.durable.commit_local(staged.puts, staged.forgets, staged.events,
                                      staged.changed)
    except BaseException as exc:
        node._seq = first_seq  # commit_local wrote nothing (one transaction)
        error = (node.health.failed(exc, committed=False, what=exc.what)
                 if isinstance(exc, StoreWriteError) else exc)
        for pending, mine, _ in accepted:
            for undo in mine.undo:
                undo()
            pending.fail(error)
        return
    if not node.durable.apply_failed:
        node.health.ok()
    node._announce(staged.events)
    for pending, _, result in accepted:
        pending.succeed(result)



def indexer_failed(node: Node, exc: Exception) -> None:
    """The indexer cannot write Chroma: refuse new writes until it can (it retries)."""
    node.durable.index_failed(exc)
    node.health.failed(exc, committed=True, what="store")


def indexer_ok(node: Node) -> None:
    node.durable.index_ok()
    node.health.ok()
