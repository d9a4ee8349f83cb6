"""Forget removes a memory from every node's queries; `memnode compact` removes it from
the files too (Chroma's own deletes are soft)."""

from __future__ import annotations

import secrets
import subprocess
from pathlib import Path

import numpy as np

from memnode import NotFound

from helpers import NodeProcess, converged_vectors, memnode_cmd, start_mesh, wait_for


def _files_containing(root: Path, needle: bytes) -> list[Path]:
    return [p for p in root.rglob("*") if p.is_file() and needle in p.read_bytes()]


def test_forgotten_vector_leaves_every_nodes_queries(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    procs += start_mesh(tmp_path, 3)
    clients = [p.client() for p in procs]
    canary = f"canary {secrets.token_hex(8)} lighthouse keeper"
    mid = clients[0].remember(canary)
    clients[1].remember("an unrelated note about gardening")
    wait_for(lambda: [c.status().memories["replicated"] for c in clients] == [1, 1, 2]
             and converged_vectors(clients), "the canary to replicate")
    assert all(c.recall(canary, k=1, scope="mesh")[0].id == mid for c in clients)
    clients[0].forget(mid)
    wait_for(lambda: [c.status().memories["replicated"] for c in clients] == [1, 0, 1],
             "the forget to converge")
    for c in clients:
        assert all(h.id != mid for h in c.recall(canary, k=5, scope="mesh"))
        try:
            c.get(mid)
            raise AssertionError("forgotten memory still readable")
        except NotFound:
            pass


def test_compact_removes_forgotten_text_and_vector_from_the_files(tmp_path: Path) -> None:
    from memnode.embedders import HashEmbedder

    data = tmp_path / "node"
    node = NodeProcess(data).start()
    canary = f"canary-{secrets.token_hex(8)}"
    vector = HashEmbedder().embed([canary])[0].astype("<f4").tobytes()
    with node.client() as c:
        keep = c.remember("a memory that stays")
        mid = c.remember(f"{canary} in a memory that goes", privacy="private")
        c.forget(mid)
    assert node.terminate() == 0
    # While running, compaction is refused: the data directory is locked.
    running = NodeProcess(data).start()
    busy = subprocess.run(memnode_cmd("compact", "--data-dir", str(data)),
                          capture_output=True, text=True, timeout=60)
    assert busy.returncode != 0 and "in use" in busy.stderr
    assert running.terminate() == 0
    result = subprocess.run(memnode_cmd("compact", "--data-dir", str(data)),
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert not _files_containing(data, canary.encode())
    assert not _files_containing(data, vector)
    after = NodeProcess(data).start()
    try:
        with after.client() as c:
            assert c.get(keep).text == "a memory that stays"
            assert c.status().memories["local"] == 1
            hits = c.recall("a memory", k=5)
            assert [h.id for h in hits] == [keep]
    finally:
        assert after.terminate() == 0
    assert np.frombuffer(vector, "<f4").shape == (384,)


def _wrapped_key(data: Path, memory_id: str) -> bytes:
    import sqlite3

    conn = sqlite3.connect(data / "log.db")
    try:
        row = conn.execute("SELECT wrapped FROM data_keys WHERE memory_id = ?",
                           (memory_id,)).fetchone()
    finally:
        conn.close()
    assert row is not None, f"{memory_id} has no data key"
    return bytes(row[0])


def test_forget_shreds_text_and_metadata_before_compact(node_factory) -> None:  # type: ignore[no-untyped-def]
    """Right after a forget, with the sealed record still in Chroma's files, neither the
    text, nor a clear metadata value, nor the memory's wrapped data key is in any file."""
    handle = node_factory()
    c, data = handle.client, handle.data_dir
    text, meta = f"canary-{secrets.token_hex(8)}", f"meta-{secrets.token_hex(8)}"
    public = f"pub-{secrets.token_hex(8)}"
    private = c.remember(f"{text} in a private memory", {"owner": meta, "n": 7},
                         privacy="private")
    shared = c.remember("a public memory", {"owner": public}, privacy="public")
    keep = c.remember("a memory that stays", {"owner": "kept"})
    wait_for(lambda: handle.node.store.existing_local([private, shared, keep])
             == {private, shared, keep}, "the memories in Chroma")
    assert not _files_containing(data, text.encode()), "text must be ciphertext at rest"
    assert not _files_containing(data, meta.encode()), "metadata must be ciphertext at rest"
    assert not _files_containing(data, public.encode()), "its event is sealed in the log"
    keys = [_wrapped_key(data, m) for m in (private, shared)]
    assert all(_files_containing(data, k) for k in keys)
    handle.node.indexer.pause()  # Chroma keeps every byte of the forgotten records
    c.forget(private)
    c.forget(shared)
    assert handle.node.store.existing_local([private, shared]) == {private, shared}
    for needle in (text.encode(), meta.encode(), public.encode(), *keys):
        assert not _files_containing(data, needle), needle
    assert handle.node.store.get_local(private) is None, "its ciphertext no longer opens"
    # everything else still works: get, where (numbers too), update, list, recall
    assert [h.id for h in c.recall("a memory", where={"owner": "kept"})] == [keep]
    assert c.recall("private memory", where={"n": 7}) == []
    assert c.update(keep, {"owner": "changed", "n": 7.0}).metadata == {"owner": "changed",
                                                                        "n": 7.0}
    handle.node.indexer.resume()
    wait_for(lambda: not handle.node.store.existing_local([private, shared]), "the deletes")
    assert [h.id for h in c.recall("a memory", where={"n": 7})] == [keep]
    assert c.get(keep).text == "a memory that stays"
    assert [m.id for m in c.list()] == [keep]
