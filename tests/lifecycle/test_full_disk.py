"""A real node on a 16 MiB tmpfs: full disk -> writes refused with RESOURCE_EXHAUSTED,
reads served, readiness NOT_SERVING; space back -> it recovers by itself; nothing that
was acknowledged is lost. Needs root (mount); skipped otherwise."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from test_health import NOT_SERVING, SERVING, health_of

from memnode import NewMemory
from memnode.errors import MemnodeError, ResourceExhausted

from helpers import NodeProcess, tmpfs, wait_for


@pytest.fixture
def small_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "disk", "16m") as mount:
        yield mount


def _free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def test_full_disk_refuses_writes_serves_reads_and_recovers(
        small_disk: Path, procs: list) -> None:  # type: ignore[type-arg]
    node = NodeProcess(small_disk / "data", ["--health-probe-seconds", "0.2",
                                             "--sidecar", "off"]).start()
    procs.append(node)
    client = node.client()
    first = client.remember("written while there is room")
    ballast = small_disk / "ballast"
    with ballast.open("wb") as f:  # leave about 1.5 MiB
        f.write(b"\0" * max(0, _free(small_disk) - 1_500_000))
    acked: list[str] = [first]
    refusal: MemnodeError | None = None
    for i in range(2000):
        batch = [NewMemory(f"filling the disk {i}-{j} " + "x" * 900) for j in range(20)]
        try:
            acked += client.remember_batch(batch)
        except MemnodeError as exc:
            refusal = exc
            break
    assert isinstance(refusal, ResourceExhausted), refusal
    assert "disk full" in str(refusal)
    wait_for(lambda: health_of(node.addr) == NOT_SERVING, "readiness NOT_SERVING on a full disk")
    assert health_of(node.addr, "liveness") == SERVING
    assert client.get(first).text == "written while there is room"  # reads work
    assert client.recall("written while there is room", k=1)
    assert any("disk full" in p for p in client.status().problems)

    ballast.unlink()
    wait_for(lambda: health_of(node.addr) == SERVING, "the node to recover once space returns")
    acked.append(client.remember("after the disk had room again"))
    missing = [m for m in acked if not _has(client, m)]
    assert not missing, f"{len(missing)} acknowledged memories lost"
    client.close()
    assert node.terminate() == 0


def _has(client, memory_id: str) -> bool:  # type: ignore[no-untyped-def]
    try:
        return bool(client.get(memory_id).id)
    except MemnodeError:
        return False


def test_a_nearly_full_disk_never_wedges_the_node(small_disk: Path, procs: list) -> None:  # type: ignore[type-arg]
    """Regression (found by the chaos drill): with a few hundred KB left, a Chroma upsert
    that runs out of space midway hung the whole process (chromadb 1.5 waits on its own
    SQLite lock holding the GIL). The indexer now starts no batch without room, so the
    node keeps answering, refuses writes as a full disk, and catches up afterwards."""
    node = NodeProcess(small_disk / "data", ["--health-probe-seconds", "0.2",
                                             "--sidecar", "off"]).start()
    procs.append(node)
    client = node.client()
    acked = [client.remember("written while there is room")]
    with (small_disk / "ballast").open("wb") as f:  # leave about 300 KB
        f.write(b"\0" * max(0, _free(small_disk) - 300_000))
    refusal: MemnodeError | None = None
    for i in range(500):
        try:
            acked.append(client.remember(f"near the edge {i} " + "y" * 500))
        except MemnodeError as exc:
            refusal = exc
            break
        assert client.status().node_id  # answers between writes: not wedged
    assert isinstance(refusal, ResourceExhausted), refusal
    wait_for(lambda: health_of(node.addr) == NOT_SERVING, "readiness NOT_SERVING")
    assert client.status().node_id
    (small_disk / "ballast").unlink()
    wait_for(lambda: health_of(node.addr) == SERVING, "the node to recover once space returns")
    missing = [m for m in acked if not _has(client, m)]
    assert not missing, f"{len(missing)} acknowledged memories lost"
    assert client.recall("near the edge 0", k=1)
    client.close()
    assert node.terminate() == 0
