"""List pages by memory id over the log's listing: a change the indexer moves from the
tail into Chroma between two pages, or a forget, shifts nothing (the chaos drill's
30-minute run found an updated replica missing from a List)."""

from __future__ import annotations

import sqlite3
from collections.abc import Callable

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from federation.effects import UpsertReplica
from federation.events import (
    Event,
    EventKind,
    SharedPrivacy,
    node_id_from_public_key,
    public_key_bytes,
    sign,
)
from memnode import InvalidArgument
from memnode.storage.eventlog import LOG_FILE

from helpers import NodeHandle, wait_for


def _pages(handle: NodeHandle, *, mesh: bool = False, size: int = 10,
           between: Callable[[int], None] = lambda _: None) -> list[str]:
    """Every id listed, page by page, calling ``between(page number)`` after each."""
    ids: list[str] = []
    token, number = "", 0
    while True:
        got = handle.node.list(size, token, mesh=mesh)
        ids += [r.id for r in got.local] + [r.id for r in got.replicas]
        number += 1
        if not got.next_token:
            return ids
        between(number)
        token = got.next_token


def _indexed(handle: NodeHandle) -> None:
    handle.node.indexer.flush(30.0)
    wait_for(lambda: handle.node.tail.count() == 0, "the indexer to drain the tail")


def _replica_events(handle: NodeHandle, n: int) -> tuple[list[Event], Callable[..., Event]]:
    key = Ed25519PrivateKey.generate()
    origin = node_id_from_public_key(public_key_bytes(key))
    model = handle.node.model

    def event(seq: int, kind: EventKind, local_id: str) -> Event:
        return sign(Event(origin=origin, seq=seq, kind=kind, local_id=local_id,
                          timestamp_ms=seq, privacy=SharedPrivacy.TEAM, model=model,
                          embedding=bytes([seq % 251]) * 4 * model.dim), key)
    return [event(i + 1, EventKind.PUT, f"r{i:02d}") for i in range(n)], event


def test_an_update_indexed_between_two_pages_is_listed_once(node: NodeHandle) -> None:
    ids = [node.client.remember(f"memory number {i}") for i in range(30)]
    _indexed(node)
    node.node.indexer.pause()
    for mid in ids:  # every memory's new version waits in the tail, shadowing Chroma's
        node.client.update(mid, {"v": 2})

    def index_now(_: int) -> None:
        node.node.indexer.resume()
        _indexed(node)

    listed = _pages(node, between=index_now)
    assert sorted(listed) == sorted(ids), "each memory once, none missing"


def test_a_forget_indexed_between_two_pages_shifts_nothing(node: NodeHandle) -> None:
    ids = [node.client.remember(f"memory number {i}") for i in range(30)]
    _indexed(node)
    first = node.node.list(10, "").local

    def forget_a_listed_one(number: int) -> None:
        if number == 1:
            node.client.forget(first[0].id)
            _indexed(node)  # Chroma deletes the row

    listed = _pages(node, between=forget_a_listed_one)
    assert sorted(listed) == sorted(ids), "the forgotten one listed before its forget"
    assert sorted(_pages(node)) == sorted(set(ids) - {first[0].id})


def test_replicas_updated_and_indexed_between_pages_are_listed_once(
        node: NodeHandle) -> None:
    puts, event = _replica_events(node, 25)
    node.node.persist_replication([UpsertReplica(e) for e in puts])
    _indexed(node)
    node.node.indexer.pause()
    node.node.persist_replication([UpsertReplica(event(26 + i, EventKind.UPDATE, f"r{i:02d}"))
                                   for i in range(25)])

    def index_now(_: int) -> None:
        node.node.indexer.resume()
        _indexed(node)

    listed = _pages(node, mesh=True, between=index_now)
    assert sorted(listed) == sorted(e.memory_id for e in puts)


def test_a_log_from_before_the_listing_is_filled_at_start(node_factory) -> None:  # type: ignore[no-untyped-def]
    handle = node_factory("old")
    own = [handle.client.remember(f"kept {i}") for i in range(12)]
    handle.node.indexer.pause()
    pending = handle.client.remember("only in the journal")  # not yet in Chroma
    handle.client.forget(own[0])
    puts, _ = _replica_events(handle, 5)
    handle.node.persist_replication([UpsertReplica(e) for e in puts])
    data_dir = handle.node.data_dir
    handle.stop()
    with sqlite3.connect(data_dir / LOG_FILE) as conn:  # as a log from before it
        conn.execute("DROP TABLE listing")
        conn.execute("DELETE FROM meta WHERE key = 'listing'")
        conn.execute("UPDATE meta SET value = '1' WHERE key = 'schema'")
    again = node_factory("old")
    expected = sorted(own[1:] + [pending] + [e.memory_id for e in puts])
    assert sorted(_pages(again, mesh=True, size=4)) == expected
    with sqlite3.connect(data_dir / LOG_FILE) as conn:
        assert conn.execute("SELECT value FROM meta WHERE key = 'listing'").fetchone() == (
            "filled",)
        # migrated: code from before the listing, which would not keep it, refuses the log
        assert conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone() == (
            "2",)


def test_a_page_token_of_another_scope_or_from_offset_paging_is_refused(
        node: NodeHandle) -> None:
    for i in range(3):
        node.client.remember(f"memory number {i}")
    mesh_token = "r:"  # replicas: a local listing's scope does not reach them
    for bad in (mesh_token, "l:5000", "m:0", "l", "x:"):
        with pytest.raises(InvalidArgument, match="bad page token"):
            node.node.list(10, bad)
    assert len(node.node.list(10, mesh_token, mesh=True).replicas) == 0
