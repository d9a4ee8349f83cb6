"""Visible on arrival, indexed in bulk: the index tail, the indexer, backpressure, and
group commit of concurrent writers."""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest

from memnode import NotFound, ResourceExhausted
from memnode.node.domain import Privacy, ReplicaRecord
from memnode.storage.chroma import ChromaStore
from memnode.storage.tail import IndexTail
from memnode.storage.visible import VisibleStore

from helpers import NodeHandle, NodeProcess, wait_for


def _ids(handle: NodeHandle, mesh: bool = False) -> list[str]:
    return [m.id for m in handle.client.list(scope="mesh" if mesh else "local")]


def test_a_write_is_visible_to_recall_get_and_list_before_the_indexer_runs(
        node: NodeHandle) -> None:
    node.node.indexer.pause()
    mid = node.client.remember("the deploy key rotates on fridays", {"team": "ops"})
    other = node.client.remember("lunch is at noon", {"team": "food"})
    assert node.node.store.count_local() == 0, "nothing may be indexed yet"
    assert node.node.tail.count("local") == 2
    hits = node.client.recall("the deploy key rotates on fridays", k=5)
    assert hits[0].id == mid and hits[0].text == "the deploy key rotates on fridays"
    assert [h.id for h in node.client.recall("lunch", where={"team": "food"})] == [other]
    assert node.client.get(mid).metadata == {"team": "ops"}
    assert sorted(_ids(node)) == sorted([mid, other])
    assert node.client.status().memories["local"] == 2
    # an update replaces the tail entry at once, filters see the new metadata only
    node.client.update(mid, {"team": "sec"})
    assert node.client.get(mid).metadata == {"team": "sec"}
    assert node.client.recall("deploy key", where={"team": "ops"}) == []
    assert node.client.recall("deploy key", where={"team": "sec"})[0].id == mid
    assert node.node.tail.count("local") == 2
    # a forget hides it at once, from everything
    node.client.forget(other)
    assert other not in [h.id for h in node.client.recall("lunch is at noon", k=10)]
    with pytest.raises(NotFound):
        node.client.get(other)
    assert _ids(node) == [mid]
    assert node.client.status().memories["local"] == 1

    node.node.indexer.resume()
    wait_for(lambda: node.node.tail.count() == 0, "the indexer to drain the tail")
    assert node.node.store.count_local() == 1
    assert node.client.get(mid).metadata == {"team": "sec"}
    assert node.node.store.get_local(other) is None
    assert node.node.log.pending_journal() == [], "journal rows drop once indexed"
    metrics = node.node.metrics.registry
    assert metrics.get_sample_value("memnode_index_tail", {"collection": "local"}) == 0
    assert metrics.get_sample_value("memnode_index_lag_seconds") == 0


def test_forget_of_an_indexed_memory_hides_it_before_chroma_deletes_it(
        node: NodeHandle) -> None:
    mid = node.client.remember("an indexed memory about tides")
    wait_for(lambda: node.node.store.get_local(mid) is not None, "the memory in Chroma")
    node.node.indexer.pause()
    node.client.forget(mid)
    assert node.node.store.existing_local([mid]) == {mid}, "Chroma still holds it"
    assert node.node.store.get_local(mid) is None, "its data key is gone: it cannot be opened"
    assert mid not in [h.id for h in node.client.recall("an indexed memory about tides")]
    with pytest.raises(NotFound):
        node.client.get(mid)
    assert _ids(node) == []
    assert node.client.status().memories["local"] == 0
    lag = node.node.metrics.registry.get_sample_value("memnode_index_lag_seconds")
    assert lag is not None and lag >= 0
    node.node.indexer.resume()
    wait_for(lambda: not node.node.store.existing_local([mid]), "Chroma to delete it")


def test_replicas_in_the_tail_match_clear_or_hashed_filters(tmp_path: Path) -> None:
    store = ChromaStore(tmp_path, 4)
    tail = IndexTail(4, max_items=100, max_bytes=1 << 20)
    visible = VisibleStore(store, tail)

    def replica(mid: str, vec: list[float], meta: dict[str, str | int | float | bool]
                ) -> ReplicaRecord:
        return ReplicaRecord(mid, "peer", np.array(vec, np.float32), meta, Privacy.TEAM, 1, 1)

    indexed = replica("peer/a", [1, 0, 0, 0], {"team": "h:ops"})
    store.upsert_replicas([indexed])
    tail.add_replicas(1, [replica("peer/b", [0.9, 0.1, 0, 0], {"team": "ops"}),
                          replica("peer/c", [0.8, 0.2, 0, 0], {"team": "h:food"})], ())
    q = np.array([1, 0, 0, 0], np.float32)
    hits = visible.query(q, 10, include_replicas=True, where_replica={"team": ["ops", "h:ops"]})
    assert [h.id for h in hits] == ["peer/a", "peer/b"]
    assert all(not h.local and h.origin == "peer" for h in hits)
    # an update in the tail shadows Chroma's older copy; a delete hides it
    tail.add_replicas(2, [replica("peer/a", [0, 0, 0, 1], {"team": "h:food"})], (), {"peer/a"})
    hits = visible.query(q, 10, include_replicas=True, where_replica={"team": ["h:food"]})
    assert [h.id for h in hits] == ["peer/c", "peer/a"]
    tail.add_replicas(3, (), ["peer/c"])
    assert [h.id for h in visible.query(q, 10, include_replicas=True)] == ["peer/b", "peer/a"]
    assert visible.get_replica("peer/c") is None
    assert visible.count_replicas() == 2  # a (held), b (new); c never reached Chroma


def test_a_full_tail_refuses_writes_after_its_deadline_instead_of_growing(
        node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(index_tail_max_items=3, index_backpressure_seconds=0.2)
    node.node.indexer.pause()
    for i in range(3):
        node.client.remember(f"memory {i}")
    with pytest.raises(ResourceExhausted, match="index tail is full"):
        node.client.remember("one too many")
    assert node.node.tail.count() == 3
    assert node.node.log.watermark(node.node.node_id) == 3, "nothing committed, no seq used"
    node.node.indexer.resume()
    mid = node.client.remember("room again")
    assert node.client.get(mid).text == "room again"
    assert node.node.log.watermark(node.node.node_id) == 4


def test_concurrent_writers_share_one_commit_and_keep_seq_order(node: NodeHandle) -> None:
    n = node.node
    base = node.client.remember("an existing memory", {"v": 0})
    errors: list[BaseException] = []
    results: dict[str, object] = {}

    def run(name: str, fn) -> threading.Thread:  # type: ignore[no-untyped-def]
        def target() -> None:
            try:
                results[name] = fn()
            except BaseException as exc:  # noqa: BLE001
                errors.append(exc)
                results[name] = exc
        thread = threading.Thread(target=target)
        thread.start()
        return thread

    groups_before = n._commits.groups
    threads = []
    with n._write_lock:  # a leader's commit "runs": the writers behind it queue up
        threads.append(run("w0", lambda: node.client.remember("writer 0")))
        wait_for(lambda: n._commits._leading and n._commits.queued() == 0, "w0 leading")
        for i in range(1, 8):
            threads.append(run(f"w{i}", lambda i=i: node.client.remember(f"writer {i}")))
            wait_for(lambda i=i: n._commits.queued() == i, f"writer {i} queued")
        threads.append(run("update", lambda: node.client.update(base, {"v": 1})))
        wait_for(lambda: n._commits.queued() == 8, "the update queued")
        threads.append(run("forget", lambda: node.client.forget(base)))
        wait_for(lambda: n._commits.queued() == 9, "the forget queued")
        threads.append(run("late", lambda: node.client.update(base, {"v": 2})))
        wait_for(lambda: n._commits.queued() == 10, "the late update queued")
    for thread in threads:
        thread.join(30)
    assert n._commits.groups == groups_before + 2, "w0's group, then one for the other 10"
    assert isinstance(results["late"], NotFound), "the group saw the forget before it"
    assert [e for e in errors if not isinstance(e, NotFound)] == []
    assert n.log.watermark(n.node_id) == 11  # 1 + 8 puts + update + forget, no gap
    seqs = [e.seq for e in n.log.run_after(n.node_id, 1, 100, 1 << 30).events]
    assert seqs == list(range(2, 10)) + [11]  # the forget superseded the update
    ids = [results[f"w{i}"] for i in range(8)]
    assert len(set(ids)) == 8 and sorted(_ids(node)) == sorted(ids)  # type: ignore[type-var]


def test_many_concurrent_writers_lose_nothing(node: NodeHandle) -> None:
    ids: list[str] = []
    lock = threading.Lock()

    def writer(w: int) -> None:
        for i in range(20):
            mid = node.client.remember(f"writer {w} item {i}")
            with lock:
                ids.append(mid)

    threads = [threading.Thread(target=writer, args=(w,)) for w in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert len(set(ids)) == 120
    assert node.node.log.watermark(node.node.node_id) == 120
    assert sorted(_ids(node)) == sorted(ids)
    assert node.node._commits.writes >= 120


def test_kill_9_with_a_full_tail_loses_nothing_and_rebuilds_it(tmp_path: Path) -> None:
    data = tmp_path / "node"
    hold = ["--index-batch-window-seconds", "3600", "--sidecar", "off"]
    proc = NodeProcess(data, hold).start()
    with proc.client() as c:
        ids = [c.remember(f"unindexed memory {i}", {"i": i}) for i in range(40)]
        c.forget(ids[0])
        c.update(ids[1], {"i": 100})
        assert c.get(ids[2]).text == "unindexed memory 2"
    proc.kill()
    store = ChromaStore(data, 384)
    assert store.count_local() == 0, "the tail was not indexed before the kill"
    del store

    again = NodeProcess(data, hold).start()  # the tail comes back from the journal
    with again.client() as c:
        assert c.get(ids[1]).metadata == {"i": 100}
        with pytest.raises(NotFound):
            c.get(ids[0])
        assert all(c.get(m).text.startswith("unindexed") for m in ids[1:])
        assert c.recall("unindexed memory 7", k=1)[0].id == ids[7]
        assert c.status().memories["local"] == 39
    again.kill()

    final = NodeProcess(data, ["--sidecar", "off"]).start()
    with final.client() as c:
        assert sorted(m.id for m in c.list()) == sorted(ids[1:])
    assert final.terminate() == 0
    assert ChromaStore(data, 384).count_local() == 39


def test_a_count_never_sees_a_batch_twice(node: NodeHandle) -> None:
    """Regression (the demo showed 3 own memories on a node holding 2): between a
    batch's Chroma write and its leaving the tail, a count took it from both. A count
    now waits for the batch (the tail's ``indexing`` lock)."""
    n = node.node
    n.indexer.pause()
    for i in range(3):
        node.client.remember(f"counted once {i}")
    seen: list[int] = []
    real = n.store.upsert_local

    def upsert_then_count(records):  # type: ignore[no-untyped-def]
        real(records)  # Chroma holds the batch; the tail still does too
        counter = threading.Thread(target=lambda: seen.append(n.visible.count_local()))
        counter.start()
        counter.join(1.0)  # with the lock it waits for the batch to leave the tail
        threads.append(counter)

    threads: list[threading.Thread] = []
    n.store.upsert_local = upsert_then_count  # type: ignore[method-assign]
    n.indexer.resume()
    wait_for(lambda: n.tail.count() == 0 and threads, "the indexer to drain the tail")
    for t in threads:
        t.join(10)
    assert seen and all(c == 3 for c in seen), seen


def test_tail_search_finds_the_few_matches_past_the_best_candidates() -> None:
    """Only the best few scores are sorted first; a filter that rejects all of them
    still finds its matches further down, and the shadow count follows every change."""
    tail = IndexTail(4, max_items=1000, max_bytes=1 << 24)
    rng = np.random.default_rng(3)
    records = []
    for i in range(300):
        vec = np.array([1.0, 0, 0, 0], np.float32) + rng.normal(0, 0.05, 4).astype(np.float32)
        team = "rare" if i >= 297 else "common"
        if team == "rare":
            vec = np.array([0, 0, 0, 1.0], np.float32)  # the worst scores of all
        records.append(ReplicaRecord(f"peer/{i}", "peer", vec, {"team": team},
                                     Privacy.TEAM, 1, 1))
    tail.add_replicas(1, records, (), {"peer/0", "peer/1"})
    q = np.array([1, 0, 0, 0], np.float32)
    best, shadowed, held = tail.search("replicas", q, 5, lambda r: True)
    assert len(best) == 5 and best[0][0] >= best[-1][0] and len(shadowed) == 300
    rare, _, _ = tail.search("replicas", q, 5,
                             lambda r: r.metadata.get("team") == "rare")
    assert sorted(r.id for _, r in rare) == ["peer/297", "peer/298", "peer/299"]
    assert held == 2 and tail.shadow("replicas")[1] == 2
    tail.add_replicas(2, (), ["peer/0"])  # forgotten: Chroma still holds it
    assert tail.search("replicas", q, 1, lambda r: True)[2] == 2
    moved = ReplicaRecord("peer/300", "peer", q, {"team": "common"}, Privacy.TEAM, 1, 1)
    tail.add_replicas(3, [moved], (), {"peer/300"})  # an update of an indexed one
    assert tail.search("replicas", q, 1, lambda r: True)[2] == 3
    assert tail.shadow("replicas")[1:] == (3, 297)  # 298 new, one forgotten from Chroma
