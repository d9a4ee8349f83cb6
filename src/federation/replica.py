"""The apply rule: how events and runs from peers change a node's replica state.

State per origin (:class:`~federation.origin.OriginState`): a watermark (highest
contiguous seq applied), live entries (memory id -> newest PUT/UPDATE), tombstones
(memory id -> FORGET), a bounded buffer of runs waiting above a gap, a GC floor and
a reconciliation cursor. The node's own origin is in the same table.

For a run ``(after, through]`` of origin O (a single event is the run
``(seq-1, seq]``), with W = O's watermark:

- ``through <= W``: everything in it is known: duplicates, dropped unverified.
- the events above W are validated (:func:`federation.validate.check_event`); one
  bad event rejects the whole run, counted by reason, with no state change.
- ``after > W``: a gap below it: the run is buffered (bounded; overflow drops the
  furthest runs and counts them: anti-entropy sends them again).
- ``after <= W``: its events above W are applied in order, W becomes ``through``
  (seqs absent from the run were compacted away by the sender), and buffered runs
  whose gap is now filled are applied in turn.

Applying: PUT/UPDATE upserts the entry (unless the memory has a tombstone: FORGET is
terminal, such an event is ignored and counted), FORGET removes the entry and keeps
a tombstone. Each change is an :mod:`effect <federation.effects>` for the adapter.

Compaction, tombstone GC and reconciliation: see :mod:`federation.tombstones`.

Restoring (``ReplicaState(..., restoring=True)``): a node brought back from a backup
is behind its own origin. Until the engine ends the restore, runs of our own origin
above our watermark are applied like any other origin's (signatures verified), with
effects, so the node takes back the events it wrote after the backup. Our own GC
floor is learnt from peers then too, so a FORGET written after the backup and collected
since (no peer will send it again) is found by reconciliation, as for any origin
restored from an old disk; the restore ends only once that reconciliation is done.
Otherwise own runs are rejected as OWN_ORIGIN (only a fork of our identity can produce
them).

Limit: a run's range is vouched for by the member that sends it, not signed by the
origin; an authenticated but malicious member can make receivers skip events
(withholding). It cannot forge or alter events.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, replace

from federation.effects import (
    DeleteReplica,
    DropTombstone,
    Effect,
    KeepErasures,
    OriginMarks,
    UpsertReplica,
)
from federation.erasure import ErasureOrder, Erasures, purge
from federation.errors import LocalEventError
from federation.events import Event, EventKind, origin_of
from federation.messages import EventRun
from federation.origin import OriginState
from federation.outcome import ApplyResult
from federation.tombstones import (
    collect,
    raise_floor,
    reconcile,
    skips_below_floor,
    start_resync,
)
from federation.validate import Limits, RejectReason, check_event
from federation.versions import VersionVector

__all__ = ["ApplyResult", "RestartState", "ReplicaState", "fingerprint"]


@dataclass(frozen=True)
class RestartState:
    """Durable state to rebuild the core from at restart: the compacted log (newest
    event per live memory and tombstones, every origin including our own) and the
    last :class:`OriginMarks` persisted per origin (our own origin's watermark is the
    head of our log). Trusted as is: it is our own disk."""

    events: Sequence[Event] = ()
    marks: Sequence[OriginMarks] = ()
    erasures: Sequence[ErasureOrder] = ()
    """The erasure orders the node enforces (from the signed record below)."""
    erasure_record: bytes = b""
    """The CA-signed erasure orders the node keeps (opaque here: see KeepErasures)."""


def _run_is_malformed(run: EventRun) -> bool:
    if not isinstance(run, EventRun) or not isinstance(run.origin, str) or not run.origin:
        return True
    for value in (run.after_seq, run.through_seq):
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            return True
    if run.through_seq < run.after_seq or not isinstance(run.events, tuple):
        return True
    previous = run.after_seq
    for event in run.events:
        if not isinstance(event, Event) or event.origin != run.origin:
            return True
        if not isinstance(event.seq, int) or not previous < event.seq <= run.through_seq:
            return True
        previous = event.seq
    return False


class ReplicaState:
    """Every origin's replica state on one node, and the apply rule."""

    def __init__(
        self, node_id: str, limits: Limits, *, max_buffered_per_origin: int = 1024,
        restoring: bool = False,
    ) -> None:
        self.node_id = node_id
        self.limits = limits
        self._own_limits = replace(limits, verify_signatures=False)
        self.max_buffered = max_buffered_per_origin
        self._origins: dict[str, OriginState] = {}
        self._own = self._state(node_id)
        self._vv: VersionVector | None = None
        self.restoring = restoring
        self.erasures = Erasures()

    # queries -----------------------------------------------------------------------
    def _state(self, origin: str) -> OriginState:
        st = self._origins.get(origin)
        if st is None:
            st = self._origins[origin] = OriginState(origin)
        return st

    def origin(self, origin: str) -> OriginState | None:
        return self._origins.get(origin)

    def origins(self) -> Iterator[OriginState]:
        return iter(self._origins.values())

    def watermark(self, origin: str) -> int:
        st = self._origins.get(origin)
        return st.watermark if st is not None else 0

    def version_vector(self) -> VersionVector:
        if self._vv is None:
            self._vv = VersionVector(
                {o: st.watermark for o, st in self._origins.items() if st.watermark}
            )
        return self._vv

    def gc_floors(self) -> dict[str, int]:
        return {o: st.gc_floor for o, st in self._origins.items() if st.gc_floor}

    def vouched(self, origin: str) -> int:
        """How far our log of ``origin`` can be trusted to reflect every FORGET: the
        watermark, or the reconciliation cursor while we reconcile that origin."""
        st = self._origins.get(origin)
        if st is None:
            return 0
        return st.resync_from if st.resync_from is not None else st.watermark

    def resync_cursors(self) -> dict[str, int]:
        return {
            o: st.resync_from for o, st in self._origins.items() if st.resync_from is not None
        }

    def live_entries(self) -> Iterator[Event]:
        for st in self._origins.values():
            yield from st.live.values()

    def live_count(self) -> int:
        return sum(len(st.live) for st in self._origins.values())

    def get_live(self, memory_id: str) -> Event | None:
        origin = origin_of(memory_id)
        st = self._origins.get(origin)
        return st.live.get(memory_id) if st is not None else None

    def is_forgotten(self, memory_id: str) -> bool:
        """True while the memory's tombstone is held (before GC)."""
        st = self._origins.get(origin_of(memory_id))
        return st is not None and memory_id in st.tombstones

    def tombstone_count(self) -> int:
        return sum(len(st.tombstones) for st in self._origins.values())

    def buffered_events(self) -> int:
        return sum(st.buffered_events for st in self._origins.values() if st.buffer)

    def _marks(self, st: OriginState) -> OriginMarks:
        return OriginMarks(st.origin, st.watermark, st.gc_floor, st.resync_from)

    # own events ---------------------------------------------------------------------
    def append_local(self, event: Event) -> ApplyResult:
        """Append our own next event (already signed and durable in the node's log).

        Raises LocalEventError if it is not ours or not the next seq. Emits no
        Upsert/Delete effects: the node has written its own memory already.

        An own event the mesh would refuse (only a log written before the node checked
        its writes at the door can hold one) is counted as rejected and *skipped*: the
        watermark moves past it but it is not retained, so every run we serve vouches
        for its seq as compacted and peers go on past it. It never reaches a peer, and
        nothing after it stalls. ``result.applied`` stays 0 for it.
        """
        st = self._own
        if event.origin != self.node_id:
            raise LocalEventError(f"event of origin {event.origin!r}, this node is {self.node_id}")
        if event.seq != st.watermark + 1:
            raise LocalEventError(f"own seq {event.seq}, expected {st.watermark + 1}")
        result = ApplyResult()
        reason = check_event(event, self._own_limits)
        if reason is not None:
            result.reject(reason)
        else:
            self._apply_one(st, event, result)
        st.watermark = event.seq
        self._vv = None
        result.effects.append(self._marks(st))
        return result

    # events and runs from peers -------------------------------------------------------
    def apply_event(self, event: Event, result: ApplyResult | None = None) -> ApplyResult:
        """A single event (a rumor): the run ``(seq-1, seq]``."""
        result = result if result is not None else ApplyResult()
        if not isinstance(event, Event) or not isinstance(event.seq, int) or event.seq < 1:
            result.reject(RejectReason.MALFORMED)
            return result
        return self.apply_run(EventRun(event.origin, event.seq - 1, event.seq, (event,)), result)

    def apply_run(
        self,
        run: EventRun,
        result: ApplyResult | None = None,
        *,
        sender_watermark: int | None = None,
    ) -> ApplyResult:
        """Apply one run from a peer. ``sender_watermark`` is how far the sender vouched
        for its log of the run's origin (EventBatch.watermarks: its watermark, or its
        own cursor while it reconciles), needed only to decide whether a run is
        conclusive for our reconciliation."""
        res = result if result is not None else ApplyResult()
        if _run_is_malformed(run):
            res.reject(RejectReason.MALFORMED, max(1, len(getattr(run, "events", ()) or ())))
            return res
        if run.origin == self.node_id and not self.restoring:
            own = self._own.watermark
            above = sum(1 for e in run.events if e.seq > own)
            res.duplicates += len(run.events) - above
            if above:
                res.reject(RejectReason.OWN_ORIGIN, above)
            return res
        st = self._origins.get(run.origin)
        wm = st.watermark if st is not None else 0
        resyncing = (
            st is not None and st.resync_from is not None and run.after_seq <= st.resync_from
        )
        if run.through_seq <= wm and not resyncing:
            res.duplicates += len(run.events)
            return res
        new = [e for e in run.events if e.seq > wm]
        bad = [(e, check_event(e, self.limits)) for e in new]
        failures = [(e, reason) for e, reason in bad if reason is not None]
        if failures:
            for _, reason in failures:
                assert reason is not None
                res.reject(reason)
            return res
        res.duplicates += len(run.events) - len(new)
        if st is None:
            st = self._state(run.origin)
        if run.after_seq > wm:
            self._buffer(st, run, new, res)
            return res
        if resyncing:
            reconcile(st, run, res, sender_watermark, self.limits, self._apply_forget)
        skips = skips_below_floor(st, run, len(new))
        for event in new:
            self._apply_one(st, event, res)
        if run.through_seq > st.watermark:
            st.watermark = run.through_seq
        if skips:
            start_resync(st, res)
        self._drain(st, res)
        if st.resync_from is not None and st.resync_from >= st.watermark:
            st.resync_from = None
        self._vv = None
        res.effects.append(self._marks(st))
        return res

    def _buffer(self, st: OriginState, run: EventRun, new: list[Event], res: ApplyResult) -> None:
        after, through = run.after_seq, run.through_seq
        if any(b.after_seq <= after and b.through_seq >= through for b in st.buffer):
            res.duplicates += len(new)
            return
        fresh = [e for e in new if not st.buffered_covers(e.seq)]
        kept, dropped = st.buffer_insert(run, self.max_buffered)
        res.overflow_dropped += dropped
        if kept:
            res.buffered += len(fresh)
            res.fresh.extend(fresh)

    def _drain(self, st: OriginState, res: ApplyResult) -> None:
        while True:
            run = st.buffer_pop_ready()
            if run is None:
                return
            above = [e for e in run.events if e.seq > st.watermark]
            skips = skips_below_floor(st, run, len(above))
            for event in above:
                self._apply_one(st, event, res, fresh=False)
            st.watermark = run.through_seq
            if skips:
                start_resync(st, res)

    def _apply_one(
        self, st: OriginState, event: Event, res: ApplyResult, *, fresh: bool = True
    ) -> None:
        memory_id = event.memory_id
        foreign = st is not self._own or self.restoring
        if st is not self._own and self.erasures.covers(memory_id):
            res.reject(RejectReason.ERASED)  # valid, but erased by order: skipped
            return
        if event.kind is EventKind.FORGET:
            old = st.live.pop(memory_id, None)
            if old is not None:
                st.release(old.seq)
            previous = st.tombstones.get(memory_id)
            if previous is not None:
                st.release(previous.seq)
            st.tombstones[memory_id] = event
            st.retain(event)
            if foreign:
                res.effects.append(DeleteReplica(memory_id, event))
            res.applied += 1
        elif memory_id in st.tombstones:
            res.ignored_forgotten += 1
        else:
            old = st.live.get(memory_id)
            if old is not None:
                st.release(old.seq)
            st.live[memory_id] = event
            st.retain(event)
            if foreign:
                res.effects.append(UpsertReplica(event))
            res.applied += 1
        if fresh:
            res.fresh.append(event)

    def _apply_forget(self, st: OriginState, event: Event, res: ApplyResult) -> None:
        self._apply_one(st, event, res, fresh=False)

    # GC floors and tombstones ------------------------------------------------------------
    def learn_floor(self, origin: str, floor: int, res: ApplyResult) -> None:
        """A peer's log may lack tombstones of ``origin`` up to ``floor`` (it collected
        them, or applied runs that skipped them). Call before applying that peer's runs:
        a run that then jumps our watermark over a gap below the floor starts a
        reconciliation (:func:`federation.tombstones.skips_below_floor`)."""
        if (origin == self.node_id and not self.restoring) or floor <= 0:
            return
        st = self._state(origin)
        if raise_floor(st, floor):
            res.effects.append(self._marks(st))

    def collect_tombstones(self, stable: Mapping[str, int]) -> list[Effect]:
        """Drop the tombstones every live member has (seq <= stable[origin])."""
        effects: list[Effect] = []
        for origin, st in self._origins.items():
            if not st.tombstones:
                continue
            gone = collect(st, stable.get(origin, 0))
            if gone:
                effects.extend(DropTombstone(m, origin, seq) for m, seq in gone)
                effects.append(self._marks(st))
        return effects

    def erase(self, orders: Sequence[ErasureOrder], record: bytes) -> list[Effect]:
        """Enforce ``orders`` from now on and erase what they cover (never our own
        memories); ``record`` (the signed orders, opaque) is for the node to keep."""
        effects: list[Effect] = []
        for order in self.erasures.add(orders):
            st = self._origins.get(order.origin)
            if st is not None and st is not self._own:
                effects += purge(st, order)
        return [*effects, KeepErasures(record)]

    # restart -----------------------------------------------------------------------
    def restore(self, restart: RestartState) -> None:
        """Rebuild from durable state (trusted: it is our own disk). Call before use."""
        self.erasures.add(restart.erasures)
        for mark in restart.marks:
            st = self._state(mark.origin)
            st.watermark = max(st.watermark, mark.watermark)
            st.gc_floor = max(st.gc_floor, mark.gc_floor)
            st.resync_from = (mark.resync_from if mark.origin != self.node_id
                              or self.restoring else None)
        ordered = sorted(restart.events, key=lambda e: (e.origin, e.seq))
        for event in ordered:
            st = self._state(event.origin)
            memory_id = event.memory_id
            if event.kind is EventKind.FORGET:
                old = st.live.pop(memory_id, None)
                if old is not None:
                    st.release(old.seq)
                st.tombstones[memory_id] = event
            elif memory_id in st.tombstones:
                continue
            else:
                old = st.live.get(memory_id)
                if old is not None:
                    st.release(old.seq)
                st.live[memory_id] = event
            st.retain(event)
            st.watermark = max(st.watermark, event.seq)
        self._vv = None


def fingerprint(state: ReplicaState) -> tuple[VersionVector, frozenset[tuple[str, int]]]:
    """Version vector and live (memory id, seq) pairs: equal on converged replicas."""
    return state.version_vector(), frozenset((e.memory_id, e.seq) for e in state.live_entries())
