"""What the core asks the adapter to do to durable storage (the node's Replica API).

The core never touches storage. Every input may produce effects, delivered in
order in ``Ready.effects``; the adapter applies them in that order, then calls
``advance()``. Each effect is idempotent, so replaying a prefix after a crash is
safe, and the order (events before the origin's marks) means a crash can only leave
a watermark *behind* the data, never ahead of it: peers then re-send.

Upserts and deletes concern other origins' memories, except while a restored node
takes back its own events from peers (see :class:`OwnSeqLearned`): then they carry the
node's own origin, and the node stores them as its own memories (their text is lost:
it never left the node).
"""

from __future__ import annotations

from dataclasses import dataclass

from federation.events import Event


@dataclass(frozen=True, slots=True)
class UpsertReplica:
    """Store (or replace) the replica of ``event.memory_id``: embedding and shared
    metadata of this PUT/UPDATE. The log keeps this event and drops older events of
    the same memory (compaction)."""

    event: Event


@dataclass(frozen=True, slots=True)
class DeleteReplica:
    """Remove the replica of ``memory_id`` (its vector must leave the store).

    ``forget`` is the FORGET event to keep in the log as the memory's tombstone; it
    is None when reconciliation found that the memory was forgotten and its tombstone
    already collected (the watermark alone then prevents resurrection).
    """

    memory_id: str
    forget: Event | None


@dataclass(frozen=True, slots=True)
class DropTombstone:
    """The tombstone of ``memory_id`` (FORGET at ``origin``/``seq``) is causally stable
    and is removed from the log. Applies to the node's own origin too."""

    memory_id: str
    origin: str
    seq: int


@dataclass(frozen=True, slots=True)
class OriginMarks:
    """Durable per-origin scalars, to persist as one row and give back at restart
    (``RestartState``): the watermark (may pass seqs that were compacted away),
    the GC floor (highest collected tombstone seq this log may lack), and the
    reconciliation cursor (None when not reconciling)."""

    origin: str
    watermark: int
    gc_floor: int
    resync_from: int | None


@dataclass(frozen=True, slots=True)
class OwnSeqLearned:
    """A restored node's restore is over: a peer's digest showed our origin up to
    ``learned``, and our log now holds our events through ``watermark`` (>= learned,
    taken back from peers). The node may write again, from ``watermark + 1`` on: it
    never reuses a seq a peer holds."""

    watermark: int
    learned: int


@dataclass(frozen=True, slots=True)
class KeepErasures:
    """Keep ``record``, the CA-signed erasure orders now enforced (opaque to the core:
    the sidecar verified it), in place of the one kept before; it comes back at restart
    in ``RestartState.erasure_record``. Follows the deletes the new orders caused, in
    the same persist."""

    record: bytes


Effect = (UpsertReplica | DeleteReplica | DropTombstone | OriginMarks | OwnSeqLearned
          | KeepErasures)
