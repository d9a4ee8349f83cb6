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


def _next_round_target(c: FederationCore, config: FederationConfig) -> str:
    """Whom ``c``'s next anti-entropy round sends its digest to."""
    for _ in range(config.anti_entropy_interval_ticks):
        c.tick()
        rd = c.ready()
        c.advance()
        for o in rd.messages:
            if isinstance(o.message, Digest) and not o.message.reply:
                return o.to
    raise AssertionError("no round")


def _answer(b: FederationCore, origin: Origin, events: list, lo: int, hi: int,
            total: int, sender: str) -> None:
    """``sender``'s answer to b's digest: the runs (lo, hi] of ``origin``, vouched up to
    ``total``, then its reply digest."""
    b.on_message(sender, EventBatch(sender, (EventRun(origin.node_id, lo, hi,
                                                      tuple(events[lo:hi])),), 0,
                                    {origin.node_id: total}))
    b.on_message(sender, Digest(sender=sender, incarnation=1, heartbeat=1, address="x",
                                version_vector={origin.node_id: total}, reply=True))
    b.ready()
    b.advance()


def test_a_catch_up_is_pulled_from_the_peer_that_streams_it() -> None:
    config = FederationConfig.local(anti_entropy_interval_ticks=2, suspect_after_ticks=20_000,
                                    dead_after_ticks=30_000, inflight_timeout_ticks=20)
    b = core(152, config)
    a, c = Origin(151), Origin(153)
    for peer in (a, c):
        b.peer_discovered(peer.node_id, f"addr-{peer.n}")
    b.ready()
    b.advance()
    events = [a.put(f"m{i}") for i in range(900)]
    for part in range(8):  # a streams 100 at a time, 900 in all: b keeps asking a
        _answer(b, a, events, 100 * part, 100 * part + 100, 900, a.node_id)
        assert _next_round_target(b, config) == a.node_id, part  # not c (1/2 each)
    _answer(b, a, events, 800, 900, 900, a.node_id)
    assert b.replica.version_vector()[a.node_id] == 900
    targets = []  # caught up: rounds go to random peers again
    for _ in range(config.inflight_timeout_ticks):
        b.tick()
        rd = b.ready()
        b.advance()
        targets += [o.to for o in rd.messages if isinstance(o.message, Digest)]
    assert c.node_id in targets


def test_one_exchange_at_a_time_with_a_peer() -> None:
    """No second digest to a peer whose answer to the first has not arrived (a
    receiver still applying a large answer would get part of it twice)."""
    a, b, origin = _pair()
    b.exchange_with(a.node_id)
    assert [m for m in _out(b) if isinstance(m, Digest)]
    b.exchange_with(a.node_id)
    assert not [m for m in _out(b) if isinstance(m, Digest)]  # the answer is due
    _ticks([b], CONFIG.inflight_timeout_ticks)
    b.exchange_with(a.node_id)
    assert [m for m in _out(b) if isinstance(m, Digest)]  # it may be lost: ask again
    b.on_message(a.node_id, Digest(sender=a.node_id, incarnation=1, heartbeat=9,
                                   address="addr-a", version_vector={}, reply=True))
    b.ready()
    b.advance()
    b.exchange_with(a.node_id)
    assert [m for m in _out(b) if isinstance(m, Digest)]  # answered: a new one may start
