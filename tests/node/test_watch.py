"""The Watch stream end to end: a real server on port 0, real Chroma, real log."""

from __future__ import annotations

import threading
from collections.abc import Callable

import grpc
import pytest

from federation.effects import OriginMarks
from memnode import (
    Client,
    FailedPrecondition,
    InvalidArgument,
    NewMemory,
    ResourceExhausted,
)
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc
from watchkit import Collector

from helpers import NodeHandle, wait_for

OTHER = "a" * 20  # a well-formed node id of no node here


def gauge(node: NodeHandle, name: str) -> float:
    value = node.node.metrics.registry.get_sample_value(name)
    return -1.0 if value is None else value


def test_a_watcher_sees_remember_update_forget_in_order_with_text(node: NodeHandle) -> None:
    c = node.client
    w = Collector(c.watch())
    wait_for(lambda: gauge(node, "memnode_watchers") == 1, "the watcher to open")
    mid = c.remember("the backup window is at 2am", {"team": "ops"})
    first = w.wait(1, "the put")[0]
    assert (first.kind, first.memory.id, first.memory.text) == (
        "put", mid, "the backup window is at 2am")
    assert first.memory.metadata == {"team": "ops"} and first.memory.local
    assert (first.origin, first.seq) == (node.node.node_id, 1)
    c.update(mid, {"team": "sre"})
    update = w.wait(2, "the update")[1]
    assert (update.kind, update.seq, update.memory.metadata) == ("update", 2, {"team": "sre"})
    assert update.memory.text == "the backup window is at 2am"
    c.remember("a private note", privacy="private")  # not in the log: not streamed
    c.remember("an ephemeral note", privacy="ephemeral")
    c.forget(mid)
    forget = w.wait(3, "the forget")[2]
    assert (forget.kind, forget.memory.id, forget.seq, forget.memory.text) == (
        "forget", mid, 3, "")
    assert w.watch.version_vector == {node.node.node_id: 3}
    assert len(w.items) == 3
    assert node.node.metrics.registry.get_sample_value(
        "memnode_watch_changes_total", {"kind": "put"}) == 1
    w.watch.close()
    assert w.ended.wait(10) and w.error is None  # closing ends the iterator quietly
    wait_for(lambda: gauge(node, "memnode_watchers") == 0, "the watcher to be released")


def _writer(c: Client, stop: threading.Event, log: list[tuple[str, str]]) -> Callable[[], None]:
    """Writes on until ``stop``: batches of puts, some updates, some forgets."""

    def run() -> None:
        n = 0
        while not stop.is_set() or n < 60:
            ids = c.remember_batch([NewMemory(f"note {n + i}", {"n": n + i}) for i in range(3)])
            log.extend((m, "put") for m in ids)
            c.update(ids[0], {"n": -1})
            log.append((ids[0], "update"))
            if n % 2 == 0:
                c.forget(ids[1])
                log.append((ids[1], "forget"))
            n += 3

    return run


def test_a_resumed_watch_misses_nothing_and_sees_nothing_twice(node: NodeHandle) -> None:
    c = node.client
    c.remember_batch([NewMemory(f"before {i}") for i in range(5)])
    first = Collector(c.watch(), stop_after=12)
    stop = threading.Event()
    written: list[tuple[str, str]] = []
    writer = threading.Thread(target=_writer(c, stop, written))
    writer.start()
    assert first.ended.wait(15) and first.error is None and len(first.items) == 12
    resume_from = first.watch.version_vector
    second = Collector(c.watch(from_version_vector=resume_from))
    stop.set()
    writer.join(30)
    head = node.node.log.watermark(node.node.node_id)
    wait_for(lambda: second.watch.version_vector.get(node.node.node_id) == head,
             f"the resumed watch to reach seq {head}", timeout=15)
    seen = first.items + second.items
    seqs = [ch.seq for ch in seen]
    assert seqs == sorted(set(seqs)), "a position came twice or out of order"
    assert all(ch.seq > resume_from[node.node.node_id] for ch in second.items)
    last = {ch.memory.id: ch for ch in seen}  # the newest change seen of each memory
    final: dict[str, str] = {}
    for memory_id, kind in written:
        final[memory_id] = kind
    for memory_id, kind in final.items():
        assert memory_id in last, f"{memory_id} ({kind}) was never streamed"
        got = last[memory_id]
        assert (got.kind == "forget") == (kind == "forget"), (memory_id, kind, got.kind)
        if kind == "update":
            assert got.memory.metadata == {"n": -1}
    second.watch.close()


def test_bad_resume_vectors_and_limits_get_clear_statuses(node_factory) -> None:  # type: ignore[no-untyped-def]
    node = node_factory(max_watchers=1)
    c = node.client
    stub = pb_grpc.MemoryServiceStub(grpc.insecure_channel(node.addr))
    for vector, says in (({"not a node id": 1}, "not a node id"),
                         ({OTHER: (1 << 64) - 1}, "out of range")):
        call = stub.Watch(pb.WatchRequest(from_version_vector=vector))
        with pytest.raises(grpc.RpcError) as err:
            next(call)
        assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
        assert says in err.value.details()
    raw = grpc.insecure_channel(node.addr).unary_stream("/memnode.v1.MemoryService/Watch")
    with pytest.raises(grpc.RpcError) as err:
        next(raw(b"\x12\xff\xff"))  # not a WatchRequest at all
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert node.node.metrics.registry.get_sample_value(
        "memnode_errors_total", {"kind": "invalid_argument"}) == 3
    with pytest.raises(InvalidArgument):
        next(c.watch(from_version_vector={OTHER: -1}))  # refused before it is sent
    with pytest.raises(InvalidArgument, match="unknown scope"):
        c.watch(scope="everything")

    # a resume point below a collected tombstone could miss a forget: refused
    node.node.persist_replication([OriginMarks(OTHER, 9, 7, None)])
    with pytest.raises(FailedPrecondition, match="empty version vector"):
        next(c.watch(scope="mesh", from_version_vector={OTHER: 5}))

    # a stream that falls behind a collected tombstone ends the same way
    own = node.node.node_id
    behind = Collector(c.watch())
    c.remember_batch([NewMemory(f"early {i}") for i in range(3)])
    behind.wait(3, "the first three")
    node.node.persist_replication([OriginMarks(own, 3, 5, None)])
    c.remember("later")
    assert behind.ended.wait(10) and isinstance(behind.error, FailedPrecondition)
    assert f"cannot follow {own} after seq 3" in str(behind.error)

    held = Collector(c.watch())
    wait_for(lambda: gauge(node, "memnode_watchers") == 1, "the first watcher")
    with pytest.raises(ResourceExhausted, match="max-watchers 1"):
        next(c.watch())
    refused = node.node.metrics.registry.get_sample_value(
        "memnode_requests_total", {"method": "Watch", "code": "RESOURCE_EXHAUSTED"})
    assert refused == 1

    node.server.stop(grace=5.0)  # the stream ends cleanly, at once
    assert held.ended.wait(3), "the stream outlived the node"
    assert held.error is None
