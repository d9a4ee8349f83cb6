"""A damaged or foreign data directory is reported clearly at start, never reset."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from memnode.errors import DataDirError

from helpers import NodeHandle, NodeProcess, memnode_cmd


def test_identity_key_is_private(node: NodeHandle) -> None:
    mode = stat.S_IMODE(os.stat(node.data_dir / "identity.key").st_mode)
    assert mode == 0o600


def test_corrupt_log_is_refused_and_left_alone(node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("corrupt")
    handle.client.remember("keep me", privacy="private")
    handle.stop()
    log = tmp_path / "corrupt" / "log.db"
    for extra in ("-wal", "-shm"):
        Path(str(log) + extra).unlink(missing_ok=True)
    damaged = b"this is not a database" + os.urandom(4096)
    log.write_bytes(damaged)
    with pytest.raises(DataDirError, match="log"):
        node_factory("corrupt")
    assert log.read_bytes() == damaged  # nothing was reset


def test_truncated_log_is_refused(node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("trunc")
    for i in range(200):
        handle.client.remember(f"memory {i} " + "x" * 500, privacy="team")
    handle.stop()
    log = tmp_path / "trunc" / "log.db"
    size = log.stat().st_size
    with open(log, "r+b") as f:
        f.truncate(size // 2)
    with pytest.raises(DataDirError):
        node_factory("trunc")


def test_unreadable_identity_key(node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("key")
    handle.stop()
    (tmp_path / "key" / "identity.key").write_text("garbage")
    with pytest.raises(DataDirError, match="identity key"):
        node_factory("key")


def test_model_mismatch_is_refused(node_factory, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    from memnode.embedders import HashEmbedder

    handle: NodeHandle = node_factory("model")
    handle.stop()
    with pytest.raises(DataDirError, match="same --embedder"):
        node_factory("model", embedder=HashEmbedder(dim=64))


def test_serve_exits_nonzero_with_a_message_on_a_corrupt_dir(tmp_path: Path) -> None:
    import subprocess

    data = tmp_path / "bad"
    data.mkdir()
    (data / "log.db").write_bytes(b"garbage" * 100)
    result = subprocess.run(
        memnode_cmd("serve", "--data-dir", str(data), "--listen", "127.0.0.1:0",
                    "--embedder", "test-hash"),
        capture_output=True, text=True, timeout=60)
    assert result.returncode != 0
    assert "refusing to start" in result.stderr and "Traceback" not in result.stderr


def test_sigterm_stops_gracefully_with_exit_0(tmp_path: Path) -> None:
    proc = NodeProcess(tmp_path / "term").start()
    assert proc.terminate() == 0
