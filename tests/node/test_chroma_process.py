"""Chroma in a child process of the node's own (memnode.storage.chroma_calls): the same
store, its writes off the node's interpreter, a child that dies started again, and no
child outliving its node."""

from __future__ import annotations

import fcntl
import os
import signal
import threading
from pathlib import Path

import numpy as np
import pytest

from memnode.errors import DataDirError
from memnode.node.domain import Privacy, ReplicaRecord
from memnode.storage.chroma import ChromaError, ChromaStore
from memnode.storage.chroma_calls import OWNER_LOCK, ChromaProcess

from helpers import NodeProcess, child_pids, wait_for


def _replicas(n: int, start: int = 0) -> list[ReplicaRecord]:
    rng = np.random.default_rng(start)
    return [ReplicaRecord(f"peer/{i}", "peer", rng.standard_normal(8).astype(np.float32),
                          {"topic": f"t{i % 3}"}, Privacy.TEAM, 1, 1)
            for i in range(start, start + n)]


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0]
    except OSError:
        return True
    return state == "Z"


@pytest.fixture
def store(tmp_path: Path):  # type: ignore[no-untyped-def]
    s = ChromaStore(tmp_path, 8, process=True)
    yield s
    s.close()


def _calls(store: ChromaStore) -> ChromaProcess:
    db = store._db
    assert isinstance(db, ChromaProcess)
    return db


def test_the_store_works_the_same_through_its_child(store: ChromaStore) -> None:
    db = _calls(store)
    assert db.pid != os.getpid() and db.pid in child_pids(os.getpid())
    store.upsert_replicas(_replicas(50))
    assert store.count_replicas() == 50
    got = store.get_replica("peer/7")
    assert got is not None and got.metadata == {"topic": "t1"} and got.origin == "peer"
    hits = store.query(got.embedding, 3, include_replicas=True)
    assert hits[0].id == "peer/7"
    store.delete_replicas(["peer/7"])
    assert store.get_replica("peer/7") is None and store.count_replicas() == 49


def test_a_failed_call_is_an_error_and_the_child_goes_on(store: ChromaStore) -> None:
    store.upsert_replicas(_replicas(2))  # the first write fixes the dimension: 8
    with pytest.raises(ChromaError, match="(?i)dimension"):
        store.upsert_replicas([ReplicaRecord("peer/y", "peer", np.ones(5, np.float32), {},
                                             Privacy.TEAM, 1, 1)])
    with pytest.raises(ChromaError, match="no Chroma call"):
        _calls(store).call("replicas", "reset")
    assert store.count_replicas() == 2 and _calls(store).restarts == 0


def test_counts_come_from_the_last_write_not_from_the_child(store: ChromaStore) -> None:
    """A Status counts without calling Chroma: a child busy with a batch (here: stopped)
    does not hold it up. Each write takes the count again."""
    store.upsert_replicas(_replicas(7))
    child = _calls(store).pid
    os.kill(child, signal.SIGSTOP)
    try:
        counted: list[int] = []
        thread = threading.Thread(target=lambda: counted.append(store.count_replicas()))
        thread.start()
        thread.join(10)
        assert counted == [7], "the count waited for the child"
    finally:
        os.kill(child, signal.SIGCONT)
    store.delete_replicas(["peer/0"])
    assert store.count_replicas() == 6


def test_a_child_that_dies_is_started_again_with_its_data(store: ChromaStore) -> None:
    store.upsert_replicas(_replicas(20))
    db = _calls(store)
    first = db.pid
    os.kill(first, signal.SIGKILL)
    wait_for(lambda: _gone(first), "the child to die")
    assert len(store.existing_replicas([r.id for r in _replicas(20)])) == 20
    assert db.restarts == 1 and db.pid != first
    store.upsert_replicas(_replicas(5, start=20))
    assert store.count_replicas() == 25


def test_one_child_at_a_time_owns_a_directory(tmp_path: Path) -> None:
    store = ChromaStore(tmp_path, 8, process=True)
    lock = (tmp_path / "chroma" / OWNER_LOCK).open("a")
    try:
        with pytest.raises(BlockingIOError):
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        pid = _calls(store).pid
        store.close()
        assert _gone(pid)
        fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)  # free once the child is gone
    finally:
        lock.close()


def test_a_damaged_store_is_a_data_dir_error(tmp_path: Path) -> None:
    (tmp_path / "chroma").mkdir()
    (tmp_path / "chroma" / "chroma.sqlite3").write_bytes(b"this is not a database" * 100)
    with pytest.raises(DataDirError, match="Chroma"):
        ChromaStore(tmp_path, 8, process=True)


def test_the_child_ends_with_a_node_killed_by_sigkill(tmp_path: Path) -> None:
    proc = NodeProcess(tmp_path / "node").start()
    assert proc.proc is not None
    with proc.client() as c:
        c.remember("the child indexes this one")
    children = child_pids(proc.proc.pid)
    assert len(children) == 1, children
    child = children[0]
    assert "chroma_calls" in Path(f"/proc/{child}/cmdline").read_text()
    os.kill(proc.proc.pid, signal.SIGKILL)  # the node only, not its process group
    proc.proc.wait(10)
    wait_for(lambda: _gone(child), "the Chroma process to end with its node", timeout=60)
    restarted = NodeProcess(tmp_path / "node").start()
    with restarted.client() as c:
        assert c.status().memories["local"] == 1
    assert restarted.terminate() == 0


def test_a_hung_child_is_killed_and_the_call_made_in_a_new_one(tmp_path: Path) -> None:
    db = ChromaProcess(tmp_path / "chroma", call_seconds=1.0)
    try:
        db.call("replicas", "upsert", ids=["peer/1"], embeddings=[[1.0, 0.0]])
        hung = db.pid
        os.kill(hung, signal.SIGSTOP)  # answers nothing from now on
        assert db.call("replicas", "count") == 1
        assert db.restarts == 1 and db.pid != hung and _gone(hung)
    finally:
        db.close()


def test_ctrl_c_to_the_process_group_stops_the_node_first(tmp_path: Path) -> None:
    """SIGINT reaches the node and its child alike; the child waits for the node to
    close it, so the node's shutdown (which indexes the tail) still has its Chroma."""
    proc = NodeProcess(tmp_path / "node", ["--index-batch-window-seconds", "600"]).start()
    assert proc.proc is not None
    with proc.client() as c:
        mid = c.remember("indexed during shutdown")
    (child,) = child_pids(proc.proc.pid)
    os.killpg(proc.proc.pid, signal.SIGINT)
    assert proc.proc.wait(60) == 0
    wait_for(lambda: _gone(child), "the Chroma process to end after its node")
    assert "Traceback" not in proc.stderr()
    store = ChromaStore(tmp_path / "node", 384)
    try:
        assert store.count_local() == 1 and store.existing_local([mid]) == {mid}
    finally:
        store.close()
