"""Anti-entropy (scuttlebutt style): digests, and exactly the deltas a peer lacks.

An exchange between A and B::

    A -> B   Digest(reply=False)    A's version vector, heartbeats, floors, resync cursors
    B -> A   EventBatch*            the runs A lacks (above A's watermarks)
    B -> A   Digest(reply=True)     B's vector
    A -> B   EventBatch*            the runs B lacks

When both are in sync that is two digests of O(origins) bytes, whatever the number
of memories. Runs are read from the :class:`~federation.eventsource.EventSource` per origin
in seq order and packed into batches bounded by ``max_batch_events`` and
``max_batch_bytes``; one digest is answered with at most ``max_events_per_exchange``
events (the rest at the next exchange).

Runs already sent to a peer, by an exchange or as rumors pushed or forwarded
(:meth:`AntiEntropy.sent`), are remembered for ``inflight_timeout_ticks``: a digest
from that peer that crossed them on the wire is answered from where they end, not
again from its watermark (the receiver buffers the later runs until the earlier
ones arrive). Each run keeps the tick it was sent at: the chain of runs a digest is
answered past starts at its watermark, has no gap, and stops at the first run older
than the timeout (maybe lost: sent again from there), so a steady stream of newer runs
never hides a lost one.

Exchanges start every ``anti_entropy_interval_ticks`` (first one at a random offset
so nodes do not synchronise), and at once when a peer joins or rejoins. A round goes to
a random live peer, except while one is streaming us a catch-up (its last batch, within
``inflight_timeout_ticks``, brought news and stopped short of what it vouches for, a
batch or exchange limit: there is more): then to that peer, which goes on from where its
runs ended, rather than to another that would send the same events. An answer that ran
to the sender's watermark is not a catch-up, however busy the mesh, and a batch we reject
brings no news: a peer sending bad runs is not pulled from.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterable, Mapping

from federation.config import FederationConfig
from federation.errors import SourceError
from federation.eventsource import EventSource
from federation.messages import Digest, EventBatch, EventRun
from federation.sizes import BATCH_OVERHEAD, RUN_OVERHEAD, run_size

#: Runs remembered per peer and origin; past it the oldest is forgotten (then not
#: skipped: sent again, never lost).
MAX_RUNS_KEPT = 256


class AntiEntropy:
    def __init__(self, config: FederationConfig, rng: random.Random, source: EventSource) -> None:
        self._config = config
        self._source = source
        self._next_round = rng.randint(1, config.anti_entropy_interval_ticks)
        # peer -> origin -> (after_seq, through_seq, tick) of the runs sent to it
        self._sent: dict[str, dict[str, deque[tuple[int, int, int]]]] = {}
        self._pulling: tuple[str, int] | None = None  # (peer streaming us, its last batch)
        self.source_errors = 0

    # schedule ----------------------------------------------------------------------
    def round_due(self, now: int) -> bool:
        return now >= self._next_round

    def round_started(self, now: int) -> None:
        self._next_round = now + self._config.anti_entropy_interval_ticks

    def streamed(self, peer: str, behind: bool, now: int) -> None:
        """An anti-entropy batch from ``peer`` was applied; ``behind``: it brought news
        and stopped short of what it vouches for (the rest comes at our next exchange)."""
        if behind:
            self._pulling = (peer, now)
        elif self._pulling is not None and self._pulling[0] == peer:
            self._pulling = None

    def pulling(self, now: int, live: list[str]) -> list[str]:
        """The peer this round should go to, as a list: the live one streaming us a
        catch-up, if its last batch is fresh; else none (a random peer, then)."""
        if self._pulling is None:
            return []
        peer, tick = self._pulling
        if now - tick >= self._config.inflight_timeout_ticks or peer not in live:
            self._pulling = None
            return []
        return [peer]

    def forget_peer(self, peer: str) -> None:
        """Drop in-flight state of a peer (reaped, or restarted and lost its inbox)."""
        self._sent.pop(peer, None)
        if self._pulling is not None and self._pulling[0] == peer:
            self._pulling = None

    def sent(self, peer: str, runs: Iterable[EventRun], now: int) -> None:
        """``runs`` were sent to ``peer``: a digest that crosses them on the wire is not
        answered with them again while they are fresh."""
        sent = self._sent.setdefault(peer, {})
        for run in runs:
            kept = sent.get(run.origin)
            if kept is None:
                kept = sent[run.origin] = deque(maxlen=MAX_RUNS_KEPT)
            kept.append((run.after_seq, run.through_seq, now))

    def _past_sent(self, peer: str, origin: str, theirs: int, now: int) -> int:
        """``theirs`` (the peer's watermark) moved past the fresh runs sent to ``peer``
        that continue it with no gap (those it covers are forgotten)."""
        start = theirs
        kept = self._sent.get(peer, {}).get(origin)
        if not kept:
            return start
        while kept and kept[0][1] <= theirs:
            kept.popleft()
        for after, through, tick in kept:
            if after > start or now - tick >= self._config.inflight_timeout_ticks:
                break  # a gap, or a push that may be lost: send from here
            start = max(start, through)
        return start

    # deltas ------------------------------------------------------------------------
    def _start(
        self, peer: str, origin: str, ours: int, vouched: int, digest: Digest, now: int
    ) -> int | None:
        """Where to start sending ``origin`` to ``peer``, or None for nothing."""
        theirs = digest.version_vector.get(origin, 0)
        cursor = digest.resync.get(origin)
        if cursor is not None and cursor < theirs and vouched >= digest.gc_floors.get(origin, 0):
            # a reconciliation request we can answer conclusively: our log from there
            return cursor if cursor < ours else None
        if ours <= theirs:
            return None
        start = self._past_sent(peer, origin, theirs, now)
        return start if start < ours else None

    def batches_for(
        self,
        sender: str,
        peer: str,
        digest: Digest,
        ours: Mapping[str, int],
        floors: Mapping[str, int],
        now: int,
        resyncing: Mapping[str, int] | None = None,
    ) -> list[EventBatch]:
        """The batches that carry what ``peer`` (whose digest this is) lacks.
        ``resyncing``: our own reconciliation cursors (we vouch only up to them)."""
        c = self._config
        cursors = resyncing or {}
        wants: list[tuple[str, int]] = []
        for origin, wm in ours.items():
            start = self._start(peer, origin, wm, cursors.get(origin, wm), digest, now)
            if start is not None:
                wants.append((origin, start))
        if not wants:
            return []
        # What the batches vouch for is the source's log, which may lag our own state
        # (effects not yet persisted), and only up to our cursor for an origin we are
        # reconciling ourselves. One source call per exchange that sends something.
        served = self._source.version_vector()
        batches: list[EventBatch] = []
        runs: list[EventRun] = []
        count, size, total = 0, BATCH_OVERHEAD, 0

        def flush() -> None:
            nonlocal runs, count, size
            if runs:
                origins = {r.origin for r in runs}
                batches.append(
                    EventBatch(
                        sender,
                        tuple(runs),
                        0,
                        {o: min(cursors.get(o, ours[o]), served.get(o, 0)) for o in origins},
                        {o: floors[o] for o in origins if floors.get(o)},
                    )
                )
            runs, count, size = [], 0, BATCH_OVERHEAD

        for origin, start in wants:
            position = start
            wm = ours[origin]
            while position < wm and total < c.max_events_per_exchange:
                room = min(c.max_batch_events - count, c.max_events_per_exchange - total)
                if room <= 0 or size + RUN_OVERHEAD >= c.max_batch_bytes:
                    flush()
                    continue
                try:
                    run = self._source.run_after(
                        origin, position, room, c.max_batch_bytes - size - RUN_OVERHEAD
                    )
                except SourceError:
                    self.source_errors += 1
                    break
                if run.through_seq <= position:
                    break
                rs = run_size(run) + 4
                if runs and size + rs > c.max_batch_bytes:
                    flush()
                    continue
                runs.append(run)
                count += len(run.events)
                size += rs
                total += len(run.events)
                position = run.through_seq
                if origin not in digest.resync:
                    self.sent(peer, (run,), now)
        flush()
        return batches
