"""Erasure by subject: forget every own memory whose metadata matches, in one batch.

``memnode forget --where K=V`` (``ForgetRequest.where``). The match is recall's: equality
on the clear metadata of the node's own memories (:func:`memnode.storage.tail.match_local`
for the index tail and the ephemeral store, Chroma's equal filter for the indexed ones).
Replicas of other nodes' memories are never touched: only their origin may forget them.

Every match is forgotten in ONE write of the commit queue: its FORGET events (one per
replicated memory) and the journal's forgets go to the log in one synced transaction,
so a crash leaves all of them forgotten or none. An empty filter is refused: "forget
everything" must never happen by accident.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING

import numpy as np

from federation.events import EventKind
from memnode.errors import InvalidArgument
from memnode.node import validation
from memnode.node.commits import Overlay, Staged
from memnode.node.domain import LocalRecord, Metadata, Privacy
from memnode.storage.tail import match_local

if TYPE_CHECKING:
    from memnode.node.node import Node


def wanted(node: Node, where: Mapping[str, object] | None, *, required: bool = False
           ) -> Metadata:
    """``where`` checked as metadata (the limits of a write); InvalidArgument if it is
    empty and ``required``."""
    if required and not where:
        raise InvalidArgument("forget needs a memory id or at least one where KEY=VALUE "
                              "(an empty filter would forget every memory: refused)")
    return validation.metadata(where or {}, node.metadata_limits)


def forget_where(node: Node, where: Mapping[str, object]) -> int:
    """Forget every own memory (persisted or ephemeral) whose metadata equals ``where``;
    how many. Durable before it returns, like every write."""
    filter_ = wanted(node, where, required=True)
    match = match_local(filter_)

    def write(overlay: Overlay) -> tuple[Staged, int]:
        found = node.visible.find_local(filter_)
        for memory_id, staged in overlay.items():  # changed earlier in the same group
            if staged is not None and match(staged):
                found[memory_id] = staged.privacy
            else:
                found.pop(memory_id, None)
        gone = [r for r in node.ephemeral.records() if match(r)]
        node.ephemeral.remove([r.id for r in gone])
        now = node.now_ms()
        events = [node._event(EventKind.FORGET, _stub(memory_id, privacy, now))
                  for memory_id, privacy in sorted(found.items()) if privacy.replicated]
        undo: list[Callable[[], object]] = [lambda: node.ephemeral.put_all(gone)]
        return Staged(forgets=sorted(found), events=events, undo=undo), len(found) + len(gone)

    forgotten: int = node._commits.submit(write)
    return forgotten


def _stub(memory_id: str, privacy: Privacy, now_ms: int) -> LocalRecord:
    """What a FORGET event needs of a memory: its id, privacy and the time."""
    return LocalRecord(id=memory_id, text="", embedding=np.zeros(0, np.float32), metadata={},
                       privacy=privacy, created_at_ms=now_ms, updated_at_ms=now_ms)
