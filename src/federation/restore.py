"""Restoring: a node brought back from a backup learns how far its own origin went.

Its log ends at the backup; its peers may hold its own events past that. Until it knows
how far, it must not write (a new event would reuse a seq the mesh holds and be dropped
everywhere as a duplicate). So the core starts in *restoring* mode
(``FederationCore(restoring=True)``): the replica takes back our own events above our
watermark from peers like any other origin's (``ReplicaState.restoring``), every
digest tells us the highest own seq that peer holds, and the restore ends - with an
:class:`~federation.effects.OwnSeqLearned` effect for the node - once our watermark
covers the highest own seq any digest showed and either every origin the backup knew
has sent us a digest, or ``restore_wait_ticks`` passed since the first digest and the
unheard ones are no longer members (never heard of, or reaped), and no
reconciliation of our own origin is under way (a FORGET written after the backup may
have been collected since: federation.tombstones).

Waiting for every known origin matters under partitions: the first peer to answer may
lack our latest events (a rumor that reached only a peer cut off at the time); ending
the restore on its word alone would reuse those seqs, and origin and peers would hold
different events under one seq (the chaos drill's restore driver found this).

An unheard origin that membership still counts (configured, discovered or gossiped
as alive, and not yet reaped: a partition) is waited for however long it takes: it
may hold our latest events (the chaos drill found seqs reused when the wait ran out
during a partition). Limit: an origin reaped while cut off, or one the backup never
knew, may hold more of our events; those seqs would then be reused. The operator can
wait for more peers before starting the restored node's sidecar (docs/OPERATIONS.md).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping

from federation.effects import OwnSeqLearned
from federation.replica import ReplicaState


class OwnSeqLearning:
    def __init__(self, node_id: str, expected: Iterable[str] = (), wait_ticks: int = 0
                 ) -> None:
        """``expected``: the origins the backup knew (ourselves aside), whose digests we
        wait for, at most ``wait_ticks`` after the first digest."""
        self.node_id = node_id
        self.learned: int | None = None  # highest own seq a peer's digest showed
        self.expected = set(expected) - {node_id}
        self.heard_from: set[str] = set()
        self.first_heard: int | None = None  # tick of the first digest
        self.wait_ticks = wait_ticks

    def heard(self, peer: str, version_vector: Mapping[str, int], now: int) -> None:
        self.learned = max(self.learned or 0, version_vector.get(self.node_id, 0))
        self.heard_from.add(peer)
        if self.first_heard is None:
            self.first_heard = now

    def check(self, replica: ReplicaState, now: int,
              is_member: Callable[[str], bool] = lambda _id: False) -> OwnSeqLearned | None:
        """End the restore if we now know enough (turns ``replica.restoring`` off).
        ``is_member``: whether membership still counts an origin (any state, until
        reaped): an unheard origin is waited for past ``wait_ticks`` while it does."""
        if not replica.restoring or self.learned is None or self.first_heard is None:
            return None
        unheard = self.expected - self.heard_from
        if now - self.first_heard < self.wait_ticks:
            if unheard:
                return None
        elif any(is_member(origin) for origin in unheard):
            return None
        own = replica.watermark(self.node_id)
        if own < self.learned or self.node_id in replica.resync_cursors():
            return None  # behind, or still reconciling: a collected FORGET may be missing
        replica.restoring = False
        return OwnSeqLearned(own, self.learned)
