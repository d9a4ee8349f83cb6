"""The audit trail on a full disk: a 16 KiB tmpfs mounted on the node's ``audit/``.
Calls are still served, the failure is counted and shown in status and readiness, the
entries wait in memory and reach the file once there is room; past the buffer they are
counted as dropped and an ``audit.gap`` entry says how many. Needs root (mount)."""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from memnode.storage.audit_format import AUDIT_DIR, verify
from memnode.storage.audit_writer import AuditHooks, AuditPolicy, AuditWriter

from helpers import FakeClock, NodeHandle, tmpfs, wait_for


@pytest.fixture
def tiny_audit_disk(tmp_path: Path) -> Iterator[Path]:
    with tmpfs(tmp_path / "node" / AUDIT_DIR, "16k") as mount:
        yield mount


def _grow(mount: Path) -> None:
    subprocess.run(["mount", "-o", "remount,size=1m", str(mount)], check=True)


def test_calls_are_served_while_the_trail_cannot_be_written_and_it_catches_up(
        tiny_audit_disk: Path, node_factory: Callable[..., NodeHandle]) -> None:
    handle = node_factory("node", health_probe_seconds=0.1)
    registry = handle.node.metrics.registry

    def failures() -> float:
        return registry.get_sample_value("memnode_audit_write_failures_total",
                                         {"kind": "disk_full"}) or 0.0

    made = 0
    while not failures() and made < 500:
        handle.client.status()  # each answered: the audit never refuses a call
        made += 1
    assert failures(), "the 16 KiB trail never filled"
    problems = wait_for(lambda: handle.client.status().problems, "the problem in status")
    assert any("audit trail" in p for p in problems), problems
    made += 1
    health = health_pb2_grpc.HealthStub(handle.client._channel)
    wait_for(lambda: health.Check(health_pb2.HealthCheckRequest(service="readiness")).status
             == health_pb2.HealthCheckResponse.NOT_SERVING, "readiness NOT_SERVING")
    live = health.Check(health_pb2.HealthCheckRequest(service="liveness")).status
    assert live == health_pb2.HealthCheckResponse.SERVING

    _grow(tiny_audit_disk)
    wait_for(lambda: not handle.client.status().problems, "the trail written again")
    made += 1
    assert registry.get_sample_value("memnode_audit_dropped_total") == 0
    handle.stop()
    entries: list[dict[str, Any]] = []
    assert verify(tiny_audit_disk, entries.append).intact
    statuses = [e for e in entries if e["method"] == "Status"]
    assert len(statuses) >= made  # every call is in the trail: none was lost


def test_past_its_buffer_entries_are_counted_and_a_gap_entry_says_so(
        tiny_audit_disk: Path) -> None:
    dropped: list[int] = []
    writer = AuditWriter(tiny_audit_disk, FakeClock(), AuditPolicy(max_pending=20),
                         AuditHooks(dropped=dropped.append))
    writer.start()
    try:
        for i in range(200):
            writer.record({"ts": i, "method": "Status", "peer": "x" * 2000})
        wait_for(lambda: writer.problem, "the disk to fill")
        wait_for(lambda: sum(dropped) > 0, "entries dropped past the buffer")
        _grow(tiny_audit_disk)
        wait_for(lambda: writer.problem is None, "the trail written again")
    finally:
        writer.close()
    entries: list[dict[str, Any]] = []
    assert verify(tiny_audit_disk, entries.append).intact
    gaps = [e for e in entries if e["method"] == "audit.gap"]
    assert sum(g["count"] for g in gaps) == sum(dropped)
    assert len(entries) - len(gaps) + sum(dropped) == 200
