"""Health tells the truth: NOT_SERVING while the log or the store cannot write or the
embedded sidecar is down; writes refused with a clear message; recovery by itself."""

from __future__ import annotations

import errno
import json
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from memnode.errors import ResourceExhausted, Unavailable

from helpers import NodeHandle, NodeProcess, memnode_cmd, mesh_args, wait_for

SERVING = health_pb2.HealthCheckResponse.SERVING
NOT_SERVING = health_pb2.HealthCheckResponse.NOT_SERVING


def health_of(addr: str, service: str = "") -> int:
    with grpc.insecure_channel(addr) as channel:
        reply = health_pb2_grpc.HealthStub(channel).Check(
            health_pb2.HealthCheckRequest(service=service), timeout=5)
    return int(reply.status)


def _failing(exc: Exception) -> Any:
    def fail(*args: Any, **kwargs: Any) -> None:
        raise exc
    return fail


def test_store_failure_after_the_commit_is_acknowledged_then_writes_wait(
        node_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    h: NodeHandle = node_factory(health_probe_seconds=0.05)
    store = h.node.store
    monkeypatch.setattr(store, "upsert_local",
                        _failing(OSError(errno.ENOSPC, "No space left on device")))
    mid = h.client.remember("durable in the log, not yet in chroma")
    wait_for(lambda: health_of(h.addr) == NOT_SERVING, "readiness to turn NOT_SERVING")
    assert health_of(h.addr, "liveness") == SERVING
    assert health_of(h.addr, "memnode.v1.MemoryService") == NOT_SERVING
    with pytest.raises(ResourceExhausted, match="disk full"):
        h.client.remember("refused while the store cannot write")
    assert any("disk full" in p for p in h.client.status().problems)
    assert h.client.recall("anything", k=1) is not None  # reads work
    monkeypatch.undo()  # space is back
    wait_for(lambda: health_of(h.addr) == SERVING, "the probe to find writes work again")
    assert h.client.get(mid).text.startswith("durable in the log")
    h.client.remember("accepted again")
    assert h.client.status().problems == []


def test_log_failure_refuses_the_write_and_stores_nothing(
        node_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    h: NodeHandle = node_factory(health_probe_seconds=0.05)
    before = h.node.version_vector()
    monkeypatch.setattr(h.node.log, "commit_local",
                        _failing(sqlite3.OperationalError("database or disk is full")))
    with pytest.raises(ResourceExhausted, match="nothing of this request was stored"):
        h.client.remember("not stored")
    monkeypatch.setattr(h.node.log, "set_meta",
                        _failing(sqlite3.OperationalError("disk I/O error")))
    wait_for(lambda: health_of(h.addr) == NOT_SERVING, "readiness to turn NOT_SERVING")
    assert h.node.version_vector() == before and h.node.store.count_local() == 0
    monkeypatch.undo()
    wait_for(lambda: health_of(h.addr) == SERVING, "the probe to find writes work again")
    h.client.remember("stored")
    assert h.node.version_vector() != before


def test_an_io_error_is_unavailable(node_factory, monkeypatch: pytest.MonkeyPatch) -> None:  # type: ignore[no-untyped-def]
    h: NodeHandle = node_factory()
    monkeypatch.setattr(h.node.log, "commit_local",
                        _failing(sqlite3.OperationalError("disk I/O error")))
    with pytest.raises(Unavailable, match="cannot write its log"):
        h.client.remember("not stored")


def test_embedded_sidecar_down_is_not_serving(node_factory) -> None:  # type: ignore[no-untyped-def]
    h: NodeHandle = node_factory(peers=[], health_probe_seconds=0.05)
    wait_for(lambda: health_of(h.addr) == SERVING, "readiness with a running sidecar")
    assert h.sidecar is not None
    h.sidecar.stop()
    wait_for(lambda: health_of(h.addr) == NOT_SERVING, "readiness to see the sidecar gone")
    assert "sidecar stopped" in h.client.status().problems
    h.sidecar = None


def test_external_sidecar_serves_its_own_health(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    node = NodeProcess(tmp_path / "ext", ["--insecure", "--sidecar", "external", "--replica-listen",
                                          "127.0.0.1:0"]).start()
    procs.append(node)
    side = subprocess.Popen(
        memnode_cmd("--log-level", "WARNING", "sidecar", "--node", node.ready["replica_listen"],
                    "--health-listen", "127.0.0.1:0", *mesh_args()),
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    try:
        assert side.stdout is not None
        ready = json.loads(wait_for(side.stdout.readline, "the sidecar's ready line"))
        addr = f"127.0.0.1:{ready['health_port']}"
        wait_for(lambda: health_of(addr) == SERVING, "the sidecar to report SERVING")
        node.kill()
        wait_for(lambda: health_of(addr) == NOT_SERVING, "the sidecar to see its node gone")
        assert health_of(addr, "liveness") == SERVING
    finally:
        side.kill()
        side.wait(10)
