"""The audit trail on real nodes: who, when, what and why of each call, never a text,
query or metadata value; ``memnode audit --verify`` passes on an intact chain and names
the first broken line after an edit, a removal or a swap; retention drops old segments
by size and by age and the kept chain still verifies."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from memnode import Client, NewMemory, PermissionDenied, Unauthenticated
from memnode.storage.audit_format import ANCHOR_FILE, AUDIT_DIR, segment_paths, verify
from memnode.storage.tokenstore import TokenStore

from helpers import FakeClock, NodeHandle, NodeProcess, run_cli, wait_for

CANARIES = {"text": "canary-text-7f3a", "meta": "canary-meta-91bc",
            "query": "canary-query-55de", "where": "canary-where-c0de",
            "update": "canary-update-a1b2"}


def audit_json(data_dir: Path) -> list[dict[str, Any]]:
    done = run_cli("audit", "--data-dir", str(data_dir), "--json")
    assert done.returncode == 0, done.stderr
    assert "audit trail intact" in done.stderr
    return [json.loads(line) for line in done.stdout.splitlines()]


def calls(entries: list[dict[str, Any]], method: str) -> list[dict[str, Any]]:
    return [e for e in entries if e["method"] == method]


def test_entries_say_who_what_why_and_never_texts_or_values(
        tmp_path: Path, procs: list[NodeProcess], monkeypatch: pytest.MonkeyPatch) -> None:
    data = tmp_path / "node"
    store = TokenStore(data)
    writer, _ = store.issue(frozenset({"read", "write"}), 0, name="ci-agent")
    admin, admin_record = store.issue(frozenset({"admin"}), 0)
    node = NodeProcess(data, ["--client-auth", "token", "--sidecar", "off"]).start()
    procs.append(node)
    with Client(node.addr, token=writer, reason="ticket 4711: weekly cleanup") as c:
        mid = c.remember(CANARIES["text"], {"team": CANARIES["meta"]})
        hits = c.recall(CANARIES["query"], 5, where={"team": CANARIES["where"]})
        c.get(mid)
        c.update(mid, {"team": CANARIES["update"]})
        streamed = list(c.remember_batches(iter([[NewMemory(CANARIES["text"] + " 2")],
                                                [NewMemory("three"), NewMemory("four")]])))
        with pytest.raises(PermissionDenied):
            list(c.list(scope="mesh"))  # the export of everything needs admin
    with Client(node.addr, token=admin) as c:
        assert mid in [m.id for m in c.list(scope="mesh")]
        c.forget(mid)
        c.backup(tmp_path / "backup")
    with Client(node.addr) as c, pytest.raises(Unauthenticated):
        c.status()
    # the CLI: a global --reason, and MEMNODE_REASON for the Python client and the CLI
    done = run_cli("--reason", "on call: pager 12", "status", "--token", admin,
                   addr=node.addr)
    assert done.returncode == 0, done.stderr
    monkeypatch.setenv("MEMNODE_REASON", "from the environment")
    done = run_cli("status", "--token", admin, addr=node.addr)
    assert done.returncode == 0, done.stderr

    # read while the node runs (no lock needed): entries reach the file within 50 ms
    entries = wait_for(lambda: (e := audit_json(data)) and len(calls(e, "Status")) >= 3
                       and e, "the audit trail to hold every call")
    remember, = calls(entries, "Remember")
    assert remember["who"] == f"token:{store.records()[0].id}"
    assert remember["token_name"] == "ci-agent"
    assert remember["peer"].startswith("ipv4:127.0.0.1:")
    assert remember["reason"] == "ticket 4711: weekly cleanup"
    assert (remember["code"], remember["ids"], remember["count"]) == ("OK", [mid], 1)
    recall, = calls(entries, "Recall")
    assert recall["where_keys"] == ["team"] and recall["k"] == 5
    assert recall["count"] == len(hits)
    update, = calls(entries, "Update")
    assert update["ids"] == [mid] and update["keys"] == ["team"]
    refused_export, export = calls(entries, "List")
    assert refused_export["code"] == "PERMISSION_DENIED"
    assert refused_export["admin"] == export["admin"] == "export"
    assert export["who"] == f"token:{admin_record.id}" and "token_name" not in export
    assert mid in export["ids"] and export["count"] == 4 and "reason" not in export
    assert [e["ids"] for e in calls(entries, "RememberStream")] == streamed
    backup, = calls(entries, "Backup")
    assert backup["admin"] == "backup" and backup["code"] == "OK" and backup["bytes"] > 0
    forget, = calls(entries, "Forget")
    assert forget["ids"] == [mid] and forget["code"] == "OK"
    anonymous, cli_reason, env_reason = calls(entries, "Status")
    assert anonymous["code"] == "UNAUTHENTICATED"
    assert anonymous["who"] == anonymous["peer"]  # no token: the peer address names it
    assert cli_reason["reason"] == "on call: pager 12"
    assert env_reason["reason"] == "from the environment"
    assert [e["n"] for e in entries] == list(range(1, len(entries) + 1))
    assert entries[0]["method"] == "audit.start"

    raw = b"".join(p.read_bytes() for p in (data / AUDIT_DIR).iterdir())
    for canary in (*CANARIES.values(), writer, admin):
        assert canary.encode() not in raw, canary
    human = run_cli("audit", "--data-dir", str(data), "--since", "1h")
    assert human.returncode == 0 and "Forget  OK" in human.stdout, human.stderr


@pytest.fixture
def trail(node_factory: Callable[..., NodeHandle], tmp_path: Path) -> Path:
    """A stopped node's audit dir holding 12 entries (audit.start, 10 Remember, Status)."""
    handle = node_factory("trail")
    for i in range(10):
        handle.client.remember(f"memory {i}")
    handle.client.status()
    handle.stop()
    lines = (handle.data_dir / AUDIT_DIR / "000000000001.jsonl").read_text().splitlines()
    assert len(lines) == 12
    return handle.data_dir


def _lines(data_dir: Path) -> tuple[Path, list[str]]:
    path = data_dir / AUDIT_DIR / "000000000001.jsonl"
    return path, path.read_text().splitlines(keepends=True)


def _edit(lines: list[str]) -> list[str]:
    entry = json.loads(lines[4])
    entry["code"] = "NOT_FOUND"
    return [*lines[:4], json.dumps(entry, sort_keys=True, separators=(",", ":")) + "\n",
            *lines[5:]]


TAMPER: dict[str, tuple[Callable[[list[str]], list[str]], int, str]] = {
    "edited": (_edit, 5, "was edited"),
    "removed": (lambda lines: [*lines[:4], *lines[5:]], 5, "removed, inserted or reordered"),
    "swapped": (lambda lines: [*lines[:4], lines[5], lines[4], *lines[6:]], 5,
                "removed, inserted or reordered"),
}


def test_verify_passes_on_the_intact_trail(trail: Path) -> None:
    done = run_cli("audit", "--data-dir", str(trail), "--verify")
    assert done.returncode == 0, done.stderr
    assert "intact: 12 entries" in done.stderr and not done.stdout


@pytest.mark.parametrize("case", sorted(TAMPER))
def test_verify_names_the_first_broken_line(trail: Path, case: str) -> None:
    change, line, why = TAMPER[case]
    path, lines = _lines(trail)
    path.write_text("".join(change(lines)))
    done = run_cli("audit", "--data-dir", str(trail), "--verify")
    assert done.returncode == 1, done.stderr
    assert f"audit/000000000001.jsonl:{line}: " in done.stderr and why in done.stderr


def test_a_rehashed_edit_breaks_the_next_line(trail: Path) -> None:
    from memnode.storage.audit_format import seal

    path, lines = _lines(trail)
    entry = json.loads(lines[4])
    body = {k: v for k, v in entry.items() if k not in ("hash", "n", "prev")}
    forged = seal({**body, "code": "NOT_FOUND"}, entry["n"], entry["prev"])
    lines[4] = json.dumps(forged, sort_keys=True, separators=(",", ":")) + "\n"
    path.write_text("".join(lines))
    broken = verify(trail / AUDIT_DIR).broken
    assert broken is not None and broken.where.endswith(":6"), broken


def test_retention_by_size_drops_old_segments_and_the_chain_still_verifies(
        node_factory: Callable[..., NodeHandle]) -> None:
    handle = node_factory("small", audit_max_bytes=4096)  # segments of 1 KiB
    audit = handle.data_dir / AUDIT_DIR
    for _ in range(80):
        handle.client.status()
    wait_for(lambda: (audit / ANCHOR_FILE).exists(), "a retention cut")
    handle.client.status()
    handle.stop()
    segments = segment_paths(audit)
    assert segments[0].name != "000000000001.jsonl"
    assert sum(p.stat().st_size for p in segments) <= 4096 + 1024 + 512
    verdict = verify(audit)
    assert verdict.intact, verdict.broken
    assert verdict.anchor is not None and verdict.first_n > 1
    assert verdict.first_n + verdict.entries - 1 >= 82  # nothing kept was lost
    done = run_cli("audit", "--data-dir", str(handle.data_dir), "--verify")
    assert done.returncode == 0 and f"anchor at entry {verdict.first_n}" in done.stderr
    # removing the oldest kept segment by hand is caught, though the rest chains
    segments[0].unlink()
    assert not verify(audit).intact


def test_retention_by_age_drops_segments_older_than_max_days(
        node_factory: Callable[..., NodeHandle]) -> None:
    clock = FakeClock()
    handle = node_factory("aged", clock_ms=clock, audit_max_days=1)
    audit = handle.data_dir / AUDIT_DIR
    for i in range(3):  # a segment per two days: a segment rolls when a day old
        handle.client.status()
        wait_for(lambda i=i: verify(audit).first_n + verify(audit).entries >= i + 3,
                 "the call's entry in the file")
        clock.advance(2 * 86400)
    handle.client.status()
    wait_for(lambda: (audit / ANCHOR_FILE).exists(), "a retention cut by age")
    handle.stop()
    verdict = verify(audit)
    assert verdict.intact, verdict.broken
    assert verdict.anchor is not None
    first_ts = json.loads(segment_paths(audit)[0].read_text().splitlines()[0])["ts"]
    assert clock() - first_ts <= 4 * 86400 * 1000  # the oldest (6 days) is gone
    retention = [e for e in _entries(audit) if e["method"] == "audit.retention"]
    assert retention and retention[-1]["anchor"] == verdict.anchor["prev"]


def _entries(audit: Path) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    verify(audit, out.append)
    return out


def test_a_node_restarted_continues_the_chain(
        node_factory: Callable[..., NodeHandle]) -> None:
    first = node_factory("again")
    first.client.status()
    first.stop()
    with open(first.data_dir / AUDIT_DIR / "000000000001.jsonl", "ab") as f:
        f.write(b'{"cut by a cra')  # a crash in the middle of a line
    second = node_factory("again")
    second.client.status()
    second.stop()
    entries = _entries(second.data_dir / AUDIT_DIR)
    assert [e["method"] for e in entries] == ["audit.start", "Status"] * 2
    assert verify(second.data_dir / AUDIT_DIR).intact


def test_a_damaged_trail_never_stops_the_node_and_verify_shows_the_damage(
        node_factory: Callable[..., NodeHandle]) -> None:
    first = node_factory("damaged")
    first.client.status()
    first.stop()
    path = first.data_dir / AUDIT_DIR / "000000000001.jsonl"
    with path.open("ab") as f:
        f.write(b"not an entry\n")
    second = node_factory("damaged")
    second.client.status()
    second.stop()
    broken = verify(second.data_dir / AUDIT_DIR).broken
    assert broken is not None and broken.where.endswith(".jsonl:3"), broken
    assert "not JSON" in broken.reason
    assert len(path.read_text().splitlines()) == 5  # the node went on writing


def test_no_audit_writes_no_trail(node_factory: Callable[..., NodeHandle]) -> None:
    handle = node_factory("quiet", audit=False)
    handle.client.status()
    handle.stop()
    assert not (handle.data_dir / AUDIT_DIR).exists()
    done = run_cli("audit", "--data-dir", str(handle.data_dir))
    assert done.returncode == 2 and "has no audit trail" in done.stderr


def test_a_reason_is_kept_printable_and_bounded(node: NodeHandle) -> None:
    with Client(node.addr, reason="line one\nline two\x1b[31m " + "é" * 400) as c:
        c.status()
    raw = (node.data_dir / AUDIT_DIR).joinpath("000000000001.jsonl")
    entry = wait_for(lambda: [e for e in _entries(raw.parent) if e["method"] == "Status"],
                     "the Status entry")[0]
    assert entry["reason"].startswith("line oneline two[31m éé")
    assert len(entry["reason"]) == 256 and entry["reason"].isprintable()


def test_since_takes_durations_iso_times_and_epoch_ms() -> None:
    from memnode.cli.audit import parse_since
    from memnode.errors import UsageError

    now = 1_764_600_000_000
    assert parse_since("30m", now) == now - 1_800_000
    assert parse_since("7d", now) == now - 7 * 86_400_000
    assert parse_since("2026-12-01T13:00:00Z", now) == 1_796_130_000_000
    assert parse_since("2026-12-01T13:00:00", now) == 1_796_130_000_000  # UTC unless said
    assert parse_since("1796130000000", now) == 1_796_130_000_000
    with pytest.raises(UsageError):
        parse_since("yesterday", now)


def test_a_watch_of_the_mesh_is_an_export_in_the_trail() -> None:
    from memnode.api.audit import what
    from memnode.v1 import memnode_pb2 as pb

    mesh = what("Watch", pb.WatchRequest(scope=pb.MESH, from_version_vector={"a": 3}), None)
    assert mesh == {"scope": "mesh", "from_origins": 1, "admin": "export"}
    assert "admin" not in what("Watch", pb.WatchRequest(scope=pb.LOCAL), None)
