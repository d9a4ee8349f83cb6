"""Collected tombstones: GC, GC floors and reconciliation.

Compaction: the retained log of an origin is its live entries (newest event per
memory) plus its tombstones (FORGET events), so applying an event compacts.

Tombstone GC: a tombstone is collected once causally stable - covered by our version
vector and by the last vector of every live member that sent us one (FederationCore
.collect_tombstones, every ``tombstone_gc_interval_ticks``). A member unheard of for
``dead_after_ticks`` no longer counts: that is the GC horizon. After collection only
the watermark remembers the memory, and it is enough to prevent resurrection: every
PUT/UPDATE of that memory has a seq below the FORGET's, hence at or below the
watermark of anyone who passed the FORGET, so any replay is dropped as a duplicate.

Reconciliation covers the one case the watermark cannot: a node that holds the
memory and never saw the FORGET (away longer than the horizon, restored from an old
disk, or simply not counted by a partial view). Collected tombstones raise the
origin's *GC floor*, which travels in digests and batches; a log lacks a collected
tombstone only if its floor covers it. When a run makes our watermark jump over
absent seqs while it is below the floor, and we hold entries of that origin, an
absent seq may be such a FORGET, which no run will ever mention again. We then set a
cursor (``resync_from = 0``) advertised in our digests; peers that vouch for their
log up to the floor (their watermark, or their own cursor while they reconcile)
answer with runs from the cursor - a snapshot of their compacted log - and every live
entry of ours in a run's range that the run does not mention is deleted
(``DeleteReplica(forget=None)``). The cursor advances with each conclusive run until
it reaches our watermark. Outside this case, reconciliation never runs.
"""

from __future__ import annotations

from collections.abc import Callable

from federation.effects import DeleteReplica
from federation.events import Event, EventKind
from federation.messages import EventRun
from federation.origin import OriginState
from federation.outcome import ApplyResult
from federation.validate import Limits, check_event

ApplyForget = Callable[[OriginState, Event, ApplyResult], None]


def skips_below_floor(st: OriginState, run: EventRun, new: int) -> bool:
    """Whether moving the watermark to ``run.through_seq`` jumps over absent seqs (the
    run has only ``new`` events above the watermark) while tombstones above the
    watermark were collected (``gc_floor``): an absent seq may then be the FORGET of a
    memory we hold - or that this very run brings - which nothing will ever mention
    again. Evaluate before applying the run; act on it after (:func:`start_resync`)."""
    return st.gc_floor > st.watermark and run.through_seq - st.watermark > new


def start_resync(st: OriginState, res: ApplyResult) -> None:
    """Reconcile from 0, if we hold anything the skipped FORGETs may concern."""
    if st.resync_from is None and st.live:
        st.resync_from = 0
        res.resyncs_started += 1


def reconcile(
    st: OriginState,
    run: EventRun,
    res: ApplyResult,
    sender_watermark: int | None,
    limits: Limits,
    apply_forget: ApplyForget,
) -> None:
    """A run from the reconciliation cursor: drop our live entries in its range that
    the sender's compacted log no longer has, apply FORGETs we missed below our
    watermark, and advance the cursor if the sender vouched up to the GC floor."""
    assert st.resync_from is not None
    high = min(run.through_seq, st.watermark)
    seqs = {e.seq for e in run.events}
    mentioned = {e.memory_id for e in run.events}
    for event in list(st.retained_after(run.after_seq, high)):
        if event.seq in seqs or event.memory_id in mentioned:
            continue
        if event.kind is EventKind.FORGET:
            continue
        del st.live[event.memory_id]
        st.release(event.seq)
        res.effects.append(DeleteReplica(event.memory_id, None))
        res.reconciled += 1
    for event in run.events:
        if event.seq > st.watermark:
            break
        if event.kind is not EventKind.FORGET or event.memory_id in st.tombstones:
            continue
        current = st.live.get(event.memory_id)
        if current is not None and current.seq > event.seq:
            continue
        if check_event(event, limits) is not None:
            continue
        apply_forget(st, event, res)
    # conclusive only if the sender vouched for a log that passed the floor: its
    # advertised watermark (its cursor while it reconciles itself; run.through_seq
    # proves nothing, a stale log can reach far beyond a FORGET it never saw)
    conclusive = (sender_watermark or 0) >= st.gc_floor
    if conclusive and run.through_seq > st.resync_from:
        st.resync_from = run.through_seq


def raise_floor(st: OriginState, floor: int) -> bool:
    """Learn that some log lacks tombstones up to ``floor``. True if ours rose."""
    if floor <= st.gc_floor:
        return False
    st.gc_floor = floor
    if st.resync_from is not None and floor > st.watermark:
        st.resync_from = 0  # a higher floor: what was checked may be stale again
    return True


def collect(st: OriginState, limit: int) -> list[tuple[str, int]]:
    """Drop the tombstones with seq <= ``limit`` (causally stable); raise the floor.
    Returns the (memory id, seq) of the dropped ones."""
    limit = min(limit, st.watermark)
    gone = [(m, e.seq) for m, e in st.tombstones.items() if e.seq <= limit]
    for memory_id, seq in gone:
        del st.tombstones[memory_id]
        st.release(seq)
        st.gc_floor = max(st.gc_floor, seq)
    return gone
