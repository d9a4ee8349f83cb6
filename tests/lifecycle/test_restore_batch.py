"""A restored node taking back its own events: a PUT and the FORGET of the same memory
can come back in one batch (one run of the origin's log). The memory must end up
forgotten and not reported as a lost text, with no error on the way."""

from __future__ import annotations

from pathlib import Path

from federation.effects import DeleteReplica, UpsertReplica
from memnode.node.metrics import NodeMetrics
from memnode.node.restore import LEARNING, META, RestoreState
from memnode.storage.chroma import ChromaStore
from memnode.storage.durable import Durable
from memnode.storage.eventlog import EventLog
from memnode.storage.tail import IndexTail

from fedkit import Origin


def test_a_put_and_its_forget_taken_back_in_one_batch(tmp_path: Path) -> None:
    log = EventLog.open(tmp_path, synchronous="NORMAL")
    log.set_meta(META, LEARNING)
    me = Origin(410)
    put, kept = me.put("gone"), me.put("kept")
    forget = me.forget("gone")
    effects = [UpsertReplica(put), UpsertReplica(kept),
               DeleteReplica(put.memory_id, forget)]
    restore = RestoreState(log, NodeMetrics(), without_peers=False)
    own, lost = restore.own_records(effects, me.node_id, lambda _id: None)
    assert set(own) == {kept.memory_id}
    assert lost == [(kept.memory_id, kept.seq)]

    store = ChromaStore(tmp_path, len(put.embedding) // 4)
    tail = IndexTail(store.dim, max_items=100, max_bytes=1 << 20)
    Durable(log, store, tail).persist(effects, me.node_id, own, lost)
    assert tail.get("local", put.memory_id) == (True, None)  # forgotten at once
    decided, record = tail.get("local", kept.memory_id)
    assert decided and record is not None and record.text == ""
    assert log.latest_event(put.memory_id) == forget
    assert log.count_lost_texts() == 1
    assert [(e.op, e.memory_id) for e in log.pending_journal()] == [
        ("put", kept.memory_id), ("forget", put.memory_id)]
    log.close()
