"""What to send: the EventSource port and its in-memory twin.

The core reads the runs it sends through :class:`EventSource`, so that the real
node can serve them from its SQLite log (``memnode.storage.eventlog``) while tests and the
simulator use :class:`MemoryEventSource`, a view over the core's own replica state.

Contract of ``run_after(origin, after_seq, max_events, max_bytes)``:

- returns the retained events of ``origin`` with seq > ``after_seq``, ascending, at
  most ``max_events`` of them and at most ``max_bytes`` (size model of
  :mod:`federation.sizes`) - but always at least one event when one remains, even if
  it alone is larger;
- ``through_seq`` is the source's watermark for the origin when every remaining
  event fit, else the seq of the last event returned: the source vouches that the
  seqs of ``(after_seq, through_seq]`` missing from the run were compacted away;
- when ``after_seq >= watermark`` the run is empty with ``through_seq == after_seq``;
- a storage failure raises :class:`~federation.errors.SourceError`; the core counts
  it and sends nothing for that origin this time.

The core itself only calls ``run_after`` (with ranges computed from its own version
vector, so a source that lags behind it - effects not yet persisted - simply returns
shorter runs); ``version_vector`` is for adapters and tests.

"Retained" means the compacted log: the newest event of every live memory and the
FORGET tombstones not yet collected.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Protocol

from federation.events import Event
from federation.messages import EventRun
from federation.replica import ReplicaState
from federation.sizes import event_size


class EventSource(Protocol):
    """Read side of a node's event log (the port the anti-entropy sender uses)."""

    def version_vector(self) -> Mapping[str, int]:
        """Per origin, the highest seq this source can serve runs up to."""
        ...

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int) -> EventRun:
        """See the module docstring for the exact contract."""
        ...


def bounded_run(origin: str, after_seq: int, watermark: int, retained: Iterable[Event],
                max_events: int, max_bytes: int) -> EventRun:
    """The contract above, in one place: ``retained`` are the source's events of
    ``origin`` above ``after_seq`` (up to ``watermark``) in seq order; every source
    builds its run with this."""
    if after_seq >= watermark or max_events <= 0:
        return EventRun(origin, after_seq, after_seq, ())
    events: list[Event] = []
    used = 0
    truncated = False
    for event in retained:
        size = event_size(event) + 4
        if len(events) >= max_events or (events and used + size > max_bytes):
            truncated = True
            break
        events.append(event)
        used += size
    through = events[-1].seq if truncated else watermark
    return EventRun(origin, after_seq, through, tuple(events))


class MemoryEventSource:
    """The in-memory twin: serves runs from a :class:`ReplicaState`'s retained log."""

    def __init__(self, replica: ReplicaState) -> None:
        self._replica = replica

    def version_vector(self) -> Mapping[str, int]:
        return self._replica.version_vector()

    def run_after(self, origin: str, after_seq: int, max_events: int, max_bytes: int) -> EventRun:
        st = self._replica.origin(origin)
        if st is None:
            return EventRun(origin, after_seq, after_seq, ())
        return bounded_run(origin, after_seq, st.watermark, st.retained_after(after_seq),
                           max_events, max_bytes)

