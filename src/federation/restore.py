"""Restoring: a node brought back from a backup learns how far its own origin went.

Its log ends at the backup; its peers may hold its own events past that. Until it knows
how far, it must not write (a new event would reuse a seq the mesh holds and be dropped
everywhere as a duplicate). So the core starts in *restoring* mode
(``FederationCore(restoring=True)``): the replica takes back our own events above our
watermark from peers like any other origin's (``ReplicaState.restoring``), every
digest tells us the highest own seq that peer holds, and the restore ends - with an
:class:`~federation.effects.OwnSeqLearned` effect for the node - once at least one
peer's digest was heard and our watermark covers the highest own seq any digest showed.

Limit: a peer that has not answered yet may hold more of our events (say, a rumor that
reached only it before the crash). Those seqs would then be reused; the operator can
wait for more peers before starting the restored node's sidecar (docs/OPERATIONS.md).
"""

from __future__ import annotations

from collections.abc import Mapping

from federation.effects import OwnSeqLearned
from federation.replica import ReplicaState


class OwnSeqLearning:
    def __init__(self, node_id: str) -> None:
        self.node_id = node_id
        self.learned: int | None = None  # highest own seq a peer's digest showed

    def heard(self, version_vector: Mapping[str, int]) -> None:
        self.learned = max(self.learned or 0, version_vector.get(self.node_id, 0))

    def check(self, replica: ReplicaState) -> OwnSeqLearned | None:
        """End the restore if we now know enough (turns ``replica.restoring`` off)."""
        if not replica.restoring or self.learned is None:
            return None
        own = replica.watermark(self.node_id)
        if own < self.learned:
            return None
        replica.restoring = False
        return OwnSeqLearned(own, self.learned)
