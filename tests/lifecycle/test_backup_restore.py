"""Backups of a running node, verified restores, and writes refused while restoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from memnode.errors import Unavailable
from memnode.node.node import Node
from memnode.storage import backup

from helpers import NodeHandle, run_cli, start_node


def _fill(handle: NodeHandle) -> dict[str, str]:
    c = handle.client
    ids = {
        "team": c.remember("the deploy key rotates on mondays", {"team": "infra"}),
        "public": c.remember("lunch is at noon", {"room": 4}, privacy="public"),
        "private": c.remember("my own note", privacy="private"),
    }
    c.forget(c.remember("soon forgotten"))
    return ids


def test_online_backup_restores_every_own_memory_and_refuses_writes(
        tmp_path: Path, node_factory, hash_embedder) -> None:  # type: ignore[no-untyped-def]
    source = node_factory("src")
    ids = _fill(source)
    manifest = source.client.backup(tmp_path / "bk")
    assert manifest["node_id"] == source.node.node_id
    assert manifest["counts"]["own_memories"] == 3
    assert manifest["version_vector"] == source.node.version_vector()
    assert set(manifest["files"]) == {"log.db", "identity.key", "atrest.json", "master.key"}
    source.client.remember("written after the backup")  # writes run again

    report = backup.restore(tmp_path / "bk", tmp_path / "restored")
    assert report.own_memories == 3
    handle = start_node(tmp_path / "restored", hash_embedder)
    try:
        node: Node = handle.node
        assert node.node_id == source.node.node_id
        assert node.version_vector() == manifest["version_vector"]
        assert node.store.count_local() == 3
        for kind, mid in ids.items():
            got = handle.client.get(mid)
            assert got.text and got.local, kind
        assert handle.client.get(ids["public"]).metadata == {"room": 4}
        status = handle.client.status()
        assert status.problems and status.problems[0].startswith("restoring:")
        with pytest.raises(Unavailable, match="restoring: learning own seq from peers"):
            handle.client.remember("too early")
        assert handle.client.recall("deploy key", k=1)[0].id == ids["team"]
    finally:
        handle.stop()


def test_restore_without_peers_writes_on_from_the_backup_head(
        tmp_path: Path, node_factory, hash_embedder) -> None:  # type: ignore[no-untyped-def]
    source = node_factory("src")
    _fill(source)
    head = source.node.version_vector()[source.node.node_id]
    source.client.backup(tmp_path / "bk")
    backup.restore(tmp_path / "bk", tmp_path / "restored")
    handle = start_node(tmp_path / "restored", hash_embedder, restore_without_peers=True)
    try:
        handle.client.remember("after")
        assert handle.node.version_vector()[handle.node.node_id] == head + 1
        assert handle.client.status().problems == []
    finally:
        handle.stop()


def test_a_tampered_backup_is_refused(tmp_path: Path, node_factory) -> None:  # type: ignore[no-untyped-def]
    source = node_factory("src")
    _fill(source)
    bk = tmp_path / "bk"
    source.client.backup(bk)
    log_db = bk / "log.db"
    data = bytearray(log_db.read_bytes())
    data[len(data) // 2] ^= 0xFF
    log_db.write_bytes(bytes(data))
    done = run_cli("restore", str(bk), "--data-dir", str(tmp_path / "r"), "--quiet")
    assert done.returncode == 2, done.stderr
    assert "log.db does not match its checksum" in done.stderr
    assert not (tmp_path / "r").exists()

    manifest = json.loads((bk / "manifest.json").read_text())
    manifest["files"]["log.db"]["sha256"] = backup.sha256_file(log_db)
    manifest["files"]["log.db"]["bytes"] = log_db.stat().st_size
    manifest["version_vector"] = {}
    (bk / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(backup.BackupError):
        backup.verify(bk)


def test_offline_backup_of_a_stopped_node_and_restore_over_a_used_dir(
        tmp_path: Path, hash_embedder) -> None:  # type: ignore[no-untyped-def]
    handle = start_node(tmp_path / "n", hash_embedder)
    _fill(handle)
    node_id = handle.node.node_id
    locked = run_cli("backup", str(tmp_path / "bk0"), "--data-dir", str(tmp_path / "n"),
                     "--quiet")
    assert locked.returncode == 2 and "in use by another process" in locked.stderr
    handle.stop()
    done = run_cli("backup", str(tmp_path / "bk"), "--data-dir", str(tmp_path / "n"), "--quiet")
    assert done.returncode == 0, done.stderr
    refused = run_cli("restore", str(tmp_path / "bk"), "--data-dir", str(tmp_path / "n"),
                      "--quiet")
    assert refused.returncode == 2 and "not empty" in refused.stderr
    done = run_cli("restore", str(tmp_path / "bk"), "--data-dir", str(tmp_path / "n"),
                   "--force", "--quiet")
    assert done.returncode == 0, done.stderr
    assert list(tmp_path.glob("n.before-restore-*"))
    again = start_node(tmp_path / "n", hash_embedder)
    try:
        assert again.node.node_id == node_id and again.node.store.count_local() == 3
    finally:
        again.stop()
