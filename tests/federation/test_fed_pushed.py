"""A digest that crosses a push on the wire is answered from where the push ends, while
the push is fresh; a push that may be lost is sent again, even under a steady stream of
newer ones (federation.antientropy: AntiEntropy.pushed)."""

from __future__ import annotations

from federation.config import FederationConfig
from federation.engine import FederationCore
from federation.messages import Digest, EventBatch, EventRun, Message

from fedkit import Origin, core, pump

CONFIG = FederationConfig.local(anti_entropy_interval_ticks=10_000, suspect_after_ticks=20_000,
                                dead_after_ticks=30_000, inflight_timeout_ticks=20)


def _pair() -> tuple[FederationCore, FederationCore, Origin]:
    a, b = core(141, CONFIG), core(142, CONFIG)
    a.peer_discovered(b.node_id, "addr-b")
    b.peer_discovered(a.node_id, "addr-a")
    pump([a, b])
    return a, b, Origin(141)


def _out(c: FederationCore) -> list[Message]:
    rd = c.ready()
    c.advance()
    return [o.message for o in rd.messages]


def _events_in(messages: list[Message]) -> list[int]:
    return [e.seq for m in messages if isinstance(m, EventBatch) and not m.rumor_hops
            for r in m.runs for e in r.events]


def _b_digest(a: FederationCore, b: FederationCore) -> list[int]:
    """b's digest reaches a; the seqs a answers with (anti-entropy, not rumors), which
    are then delivered to b."""
    b.exchange_with(a.node_id)
    digest = next(m for m in _out(b) if isinstance(m, Digest))
    a.on_message(b.node_id, digest)
    answer = _out(a)
    for m in answer:
        b.on_message(a.node_id, m)
    return _events_in(answer)


def _ticks(cores: list[FederationCore], n: int) -> None:
    for _ in range(n):
        for c in cores:
            c.tick()
            c.ready()
            c.advance()


def test_a_digest_that_crossed_a_push_gets_nothing_twice() -> None:
    a, b, origin = _pair()
    a.local_events([origin.put(f"m{i}") for i in range(100)])  # one RememberBatch
    pushes = _out(a)
    assert sum(isinstance(m, EventBatch) and m.rumor_hops > 0 for m in pushes) == 1
    assert _b_digest(a, b) == []  # before the push reached b: not sent again
    for m in pushes:
        b.on_message(a.node_id, m)
    pump([a, b])
    assert b.replica.version_vector()[a.node_id] == 100
    assert b.metrics.events_duplicate == 0


def test_a_push_not_confirmed_in_time_is_sent_again() -> None:
    a, b, origin = _pair()
    a.local_events([origin.put("lost")])
    _out(a)  # the push is lost on the wire
    assert _b_digest(a, b) == []  # still in flight as far as a knows
    _ticks([a, b], CONFIG.inflight_timeout_ticks)
    assert _b_digest(a, b) == [1]


def test_a_steady_stream_of_pushes_never_hides_a_lost_one() -> None:
    a, b, origin = _pair()
    a.local_events([origin.put("first")])
    _out(a)  # lost
    for i in range(2 * CONFIG.inflight_timeout_ticks):  # newer pushes keep coming, delivered
        _ticks([a, b], 1)
        a.local_events([origin.put(f"later{i}")])
        for m in _out(a):
            b.on_message(a.node_id, m)
        b.ready()
        b.advance()
    assert b.replica.version_vector().get(a.node_id, 0) == 0  # waiting for seq 1
    sent = _b_digest(a, b)
    assert sent[:1] == [1], sent  # sent again: the oldest push is stale
    pump([a, b])
    assert b.replica.version_vector()[a.node_id] == 1 + 2 * CONFIG.inflight_timeout_ticks


def test_pushes_after_a_stale_one_do_not_move_the_start() -> None:
    """b lacks seq 1 (its push is stale) and was just pushed 2..3: the chain starts at
    b's watermark and stops at the stale push, so a digest gets everything from 1."""
    a, b, origin = _pair()
    first = origin.put("before")
    a.local_events([first])
    _out(a)  # lost
    _ticks([a, b], CONFIG.inflight_timeout_ticks)  # that push is stale by now
    a.local_events([origin.put("x"), origin.put("y")])
    pushes = _out(a)
    assert _b_digest(a, b) == [1, 2, 3]  # from b's watermark: the chain starts stale
    for m in pushes:
        b.on_message(a.node_id, m)
    pump([a, b])
    assert b.replica.version_vector()[a.node_id] == 3


def _round_targets(c: FederationCore, rounds: int) -> list[str]:
    """Whom ``c``'s next anti-entropy rounds send their digests to."""
    targets = []
    for _ in range(rounds * CONFIG.anti_entropy_interval_ticks):
        c.tick()
        rd = c.ready()
        c.advance()
        targets += [o.to for o in rd.messages if isinstance(o.message, Digest)
                    and not o.message.reply]
        if len(targets) >= rounds:
            return targets
    return targets


def test_a_catch_up_is_pulled_from_the_peer_that_streams_it() -> None:
    config = FederationConfig.local(anti_entropy_interval_ticks=2, suspect_after_ticks=20_000,
                                    dead_after_ticks=30_000, inflight_timeout_ticks=20)
    b = core(152, config)
    a, c = Origin(151), Origin(153)
    for peer in (a, c):
        b.peer_discovered(peer.node_id, f"addr-{peer.n}")
    b.ready()
    b.advance()
    events = [a.put(f"m{i}") for i in range(300)]
    part = EventBatch(a.node_id, (EventRun(a.node_id, 0, 100, tuple(events[:100])),), 0,
                      {a.node_id: 300})
    b.on_message(a.node_id, part)  # a's first batch of a catch-up: 200 more to come
    assert set(_round_targets(b, 5)) == {a.node_id}  # not c, who would send them again
    rest = EventBatch(a.node_id, (EventRun(a.node_id, 100, 300, tuple(events[100:])),), 0,
                      {a.node_id: 300})
    b.on_message(a.node_id, rest)
    assert b.replica.version_vector()[a.node_id] == 300
    assert set(_round_targets(b, 40)) == {a.node_id, c.node_id}  # random again
    again = EventBatch(c.node_id, (EventRun(a.node_id, 0, 100, tuple(events[:100])),), 0,
                       {a.node_id: 400})
    b.on_message(c.node_id, again)  # nothing new: not a reason to pull from c
    assert set(_round_targets(b, 40)) == {a.node_id, c.node_id}
    newer = [a.put(f"n{i}") for i in range(3)]
    behind = EventBatch(c.node_id, (EventRun(a.node_id, 300, 303, tuple(newer)),), 0,
                        {a.node_id: 303})
    b.on_message(c.node_id, behind)  # news, but all c has: not a catch-up
    assert set(_round_targets(b, 40)) == {a.node_id, c.node_id}
