"""The node's event log on its own (a real SQLite file): local commits, the core's
effects, what is a no-op, bounded runs, dropping unreplicable own events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from federation.effects import DeleteReplica, OriginMarks, UpsertReplica
from federation.validate import RejectReason
from memnode.errors import DataDirError
from memnode.node.domain import LocalRecord, Privacy
from memnode.storage.eventlog import EventLog

from fedkit import Origin, node_id


@pytest.fixture
def log(tmp_path: Path) -> EventLog:
    opened = EventLog.open(tmp_path, synchronous="NORMAL")
    yield opened  # type: ignore[misc]
    opened.close()


def _record(memory_id: str) -> LocalRecord:
    return LocalRecord(memory_id, "a text", np.ones(8, dtype=np.float32), {"k": "v"},
                       Privacy.TEAM, 1, 1)


def test_local_commits_journal_and_advance_the_watermark(log: EventLog) -> None:
    me = Origin(401)
    events = [me.put("a"), me.put("b")]
    jseq = log.commit_local(puts=[_record(e.memory_id) for e in events], events=events)
    assert log.watermark(me.node_id) == 2 and log.version_vector() == {me.node_id: 2}
    assert [e.op for e in log.pending_journal()] == ["put", "put"]
    log.journal_done(jseq)
    assert log.pending_journal() == []
    with pytest.raises(ValueError, match="does not follow"):
        log.commit_local(events=[Origin(401).put("again")])  # seq 1 again


def test_the_marks_of_own_events_are_a_noop_and_cost_nothing(log: EventLog) -> None:
    me = Origin(402)
    event = me.put("a")
    log.commit_local(puts=[_record(event.memory_id)], events=[event])
    assert log.is_noop([OriginMarks(me.node_id, 1, 0, None)])
    assert not log.is_noop([OriginMarks(me.node_id, 2, 0, None)])  # ahead of the log
    assert not log.is_noop([OriginMarks(me.node_id, 1, 1, None)])  # a new GC floor
    assert not log.is_noop([OriginMarks(node_id(403), 1, 0, None)])  # unknown origin
    assert not log.is_noop([UpsertReplica(Origin(403).put("x"))])


def test_replica_effects_compact_and_forget(log: EventLog) -> None:
    peer = Origin(404)
    put, update, forget = peer.put("m"), peer.update("m", {"k": 2}), peer.forget("m")
    log.persist_effects([UpsertReplica(put), UpsertReplica(update),
                         OriginMarks(peer.node_id, 2, 0, None)])
    assert log.latest_event(put.memory_id) == update  # the newest event supersedes
    assert log.count_events(origin=peer.node_id) == 1
    log.persist_effects([DeleteReplica(put.memory_id, forget),
                         OriginMarks(peer.node_id, 3, 0, None)])
    assert log.latest_event(put.memory_id) == forget  # the tombstone is kept
    assert log.watermark(peer.node_id) == 3


def test_runs_are_bounded_and_vouch_for_compacted_seqs(log: EventLog) -> None:
    peer = Origin(405)
    events = [peer.put(f"m{i}") for i in range(5)] + [peer.update("m0")]
    log.persist_effects([UpsertReplica(e) for e in events]
                        + [OriginMarks(peer.node_id, 6, 0, None)])
    run = log.run_after(peer.node_id, 0, 100, 1 << 20)
    assert [e.seq for e in run.events] == [2, 3, 4, 5, 6] and run.through_seq == 6
    short = log.run_after(peer.node_id, 0, 2, 1 << 20)
    assert [e.seq for e in short.events] == [2, 3] and short.through_seq == 3
    one = log.run_after(peer.node_id, 0, 100, 1)  # at least one event, even if too big
    assert [e.seq for e in one.events] == [2] and one.through_seq == 2
    assert log.run_after(peer.node_id, 6, 100, 1 << 20).events == ()


def test_dropping_own_events_keeps_the_watermark(log: EventLog) -> None:
    me = Origin(406)
    events = [me.put("a"), me.put("b"), me.put("c")]
    log.commit_local(puts=[_record(e.memory_id) for e in events], events=events)
    dropped = log.drop_own_events(
        me.node_id, lambda e: RejectReason.OVERSIZED if e.seq == 2 else None)
    assert [(e.seq, r) for e, r in dropped] == [(2, RejectReason.OVERSIZED)]
    run = log.run_after(me.node_id, 0, 100, 1 << 20)
    assert [e.seq for e in run.events] == [1, 3] and run.through_seq == 3


def test_a_corrupt_log_is_refused_not_reset(tmp_path: Path) -> None:
    (tmp_path / "log.db").write_bytes(b"not a database at all" * 100)
    with pytest.raises(DataDirError, match="refusing to start"):
        EventLog.open(tmp_path)
    assert (tmp_path / "log.db").read_bytes().startswith(b"not a database")
