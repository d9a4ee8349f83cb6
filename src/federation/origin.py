"""Per-origin replica state: watermark, live entries, tombstones, the compacted log
index and the out-of-order buffer. Data only; the rules live in ``replica.py``.

The retained log of an origin is exactly its live entries (newest PUT/UPDATE per
memory) plus its tombstones (FORGET events not yet collected): compaction is not a
separate pass, applying an event releases the event it supersedes.
"""

from __future__ import annotations

import bisect
from collections.abc import Iterator

from federation.events import Event
from federation.messages import EventRun


def run_units(run: EventRun) -> int:
    """Buffer cost of a run: its events, and at least 1 for an event-less run."""
    return max(1, len(run.events))


class OriginState:
    __slots__ = (
        "origin",
        "watermark",
        "gc_floor",
        "resync_from",
        "live",
        "tombstones",
        "_log",
        "_seqs",
        "_stale",
        "buffer",
        "buffered_units",
    )

    def __init__(self, origin: str) -> None:
        self.origin = origin
        self.watermark = 0
        self.gc_floor = 0
        """Highest seq of a collected tombstone this log may lack (own GC or learned)."""
        self.resync_from: int | None = None
        """Reconciliation cursor: entries with seq <= it have been checked against a
        conclusive peer log; None when not reconciling."""
        self.live: dict[str, Event] = {}
        self.tombstones: dict[str, Event] = {}
        self._log: dict[int, Event] = {}
        self._seqs: list[int] = []  # ascending; may hold released seqs (lazy removal)
        self._stale = 0
        self.buffer: list[EventRun] = []  # validated runs above a gap, by after_seq
        self.buffered_units = 0

    # the compacted log -------------------------------------------------------------
    def retain(self, event: Event) -> None:
        seq = event.seq
        already = seq in self._log
        self._log[seq] = event
        if already:
            return
        seqs = self._seqs
        if not seqs or seq > seqs[-1]:
            seqs.append(seq)
            return
        i = bisect.bisect_left(seqs, seq)
        if i == len(seqs) or seqs[i] != seq:
            seqs.insert(i, seq)
        else:
            self._stale -= 1  # a released seq is live again

    def release(self, seq: int) -> None:
        if self._log.pop(seq, None) is None:
            return
        self._stale += 1
        if self._stale > 64 and self._stale > len(self._log):
            log = self._log
            self._seqs = [s for s in self._seqs if s in log]
            self._stale = 0

    def retained_after(self, after_seq: int, through_seq: int | None = None) -> Iterator[Event]:
        """Retained events with after_seq < seq (<= through_seq), ascending."""
        seqs, log = self._seqs, self._log
        i = bisect.bisect_right(seqs, after_seq)
        n = len(seqs)
        while i < n:
            seq = seqs[i]
            if through_seq is not None and seq > through_seq:
                return
            event = log.get(seq)
            if event is not None:
                yield event
            i += 1

    @property
    def retained_count(self) -> int:
        return len(self._log)

    # the out-of-order buffer ---------------------------------------------------------
    def buffered_covers(self, seq: int) -> bool:
        return any(r.after_seq < seq <= r.through_seq for r in self.buffer)

    def buffer_insert(self, run: EventRun, limit: int) -> tuple[bool, int]:
        """Insert ``run``; on overflow drop the furthest runs. Returns (kept, events
        dropped)."""
        bisect.insort(self.buffer, run, key=lambda r: r.after_seq)
        self.buffered_units += run_units(run)
        dropped = 0
        kept = True
        while self.buffered_units > limit and self.buffer:
            victim = self.buffer.pop()
            self.buffered_units -= run_units(victim)
            dropped += len(victim.events)
            if victim is run:
                kept = False
        return kept, dropped

    def buffer_pop_ready(self) -> EventRun | None:
        """The next buffered run whose gap is filled (after_seq <= watermark), or None.
        Runs that the watermark already passed are discarded on the way."""
        while self.buffer and self.buffer[0].after_seq <= self.watermark:
            run = self.buffer.pop(0)
            self.buffered_units -= run_units(run)
            if run.through_seq > self.watermark:
                return run
        return None

    @property
    def buffered_events(self) -> int:
        return sum(len(r.events) for r in self.buffer)
