"""Erasure by subject: ``forget --where`` and ``export --where`` on real node processes."""

from __future__ import annotations

import json
import urllib.request
from pathlib import Path

import pytest

from memnode import Client, InvalidArgument, NewMemory, NotFound

from helpers import NodeHandle, NodeProcess, mesh_args, run_cli, wait_for


def _held(client: Client, memory_id: str) -> bool:
    try:
        client.get(memory_id)
    except NotFound:
        return False
    return True


def _tail(proc: NodeProcess) -> float:
    url = f"http://127.0.0.1:{proc.ready['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        text = r.read().decode()
    return next(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith('memnode_index_tail{collection="local"}'))


def test_forget_where_erases_exactly_the_subject_here_and_on_peers(
        tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    # a long index window: what is written after a backup stays in the index tail
    origin = NodeProcess(tmp_path / "origin", mesh_args(
        "--index-batch-window-seconds", "60", "--index-batch-max", "5000",
        "--metrics-listen", "127.0.0.1:0")).start()
    peer = NodeProcess(tmp_path / "peer", mesh_args("--peer", origin.gossip)).start()
    procs += [origin, peer]
    o, p = origin.client(), peer.client()
    indexed = o.remember_batch(
        [NewMemory(f"alice fact {i}", {"subject": "alice"}) for i in range(5)]
        + [NewMemory(f"bob fact {i}", {"subject": "bob", "n": i}) for i in range(5)]
        + [NewMemory("alice, privately", {"subject": "alice"}, privacy="private"),
           NewMemory("alice in public", {"subject": "alice"}, privacy="public")])
    assert sum(1 for _ in o.list()) == 12
    o.backup(tmp_path / "backup")  # a backup moves the tail into Chroma first
    assert _tail(origin) == 0
    in_tail = o.remember_batch(
        [NewMemory(f"alice later {i}", {"subject": "alice"}) for i in range(3)]
        + [NewMemory("alice, for a minute", {"subject": "alice"}, privacy="ephemeral",
                     ttl_seconds=600),
           NewMemory("bob later", {"subject": "bob"}),
           NewMemory("Alice is not alice", {"subject": "Alice"})])
    assert _tail(origin) == 5  # the persisted ones are not in Chroma yet
    alice = indexed[:5] + indexed[10:12] + in_tail[:4]
    rest = indexed[5:10] + in_tail[4:]
    replicated_alice = indexed[:5] + [indexed[11]] + in_tail[:3]
    wait_for(lambda: p.status().memories["replicated"] == 16,
             "the peer to hold the 16 replicated memories (not the private or ephemeral)")

    # an empty filter is refused, by the CLI and by the node; so is an id with a filter
    r = run_cli("forget", addr=origin.addr)
    assert r.returncode == 2 and "--where" in r.stderr
    with pytest.raises(InvalidArgument, match="empty filter"):
        o.forget()
    r = run_cli("forget", indexed[5], "--where", "subject=bob", addr=origin.addr)
    assert r.returncode == 2

    r = run_cli("forget", "--where", "subject=alice", addr=origin.addr)
    assert r.returncode == 0, r.stderr
    assert f"forgot {len(alice)} memories matching subject=alice" in r.stderr
    assert not any(_held(o, m) for m in alice)
    assert all(_held(o, m) for m in rest)
    assert o.recall("alice fact", k=50, where={"subject": "alice"}) == []
    wait_for(lambda: not any(_held(p, m) for m in replicated_alice),
             "the forgets to reach the peer's replicas")
    assert all(_held(p, m) for m in rest)
    assert p.status().memories["replicated"] == 16 - len(replicated_alice)
    assert o.forget(where={"subject": "alice"}) == 0  # nothing left: no event, no error
    assert o.status().version_vector[origin.ready["node_id"]] == 16 + len(replicated_alice)

    # exported by subject: exactly bob's (tail included), with their text
    out = tmp_path / "bob.jsonl"
    r = run_cli("export", "--where", "subject=bob", "--out", str(out), addr=origin.addr)
    assert r.returncode == 0 and "exported 6 memories" in r.stderr, r.stderr
    exported = [json.loads(line) for line in out.read_text().splitlines()]
    assert sorted(e["id"] for e in exported) == sorted(indexed[5:10] + [in_tail[4]])
    assert all(e["text"] and e["metadata"]["subject"] == "bob" for e in exported)
    both = run_cli("export", "--where", "subject=bob", "--where", "n=1", addr=origin.addr)
    assert [json.loads(line)["id"] for line in both.stdout.splitlines()] == [indexed[6]]
    assert run_cli("export", "--where", "subject=alice", addr=origin.addr).stdout == ""

    # the audit trail says a subject was erased and how many, never the value
    def erased() -> list[dict[str, object]]:
        done = run_cli("audit", "--data-dir", str(origin.data_dir), "--json")
        entries = [json.loads(line) for line in done.stdout.splitlines()]
        return [e for e in entries if e["method"] == "Forget" and e.get("where_keys")]

    by_subject = wait_for(lambda: len(erased()) == 2 and erased(), "the trail's two entries")
    assert [(e["where_keys"], e.get("count"), e["code"]) for e in by_subject] == [
        (["subject"], len(alice), "OK"), (["subject"], 0, "OK")]
    assert "alice" not in json.dumps(by_subject)


def test_forget_where_is_one_durable_batch(node: NodeHandle) -> None:
    node.client.remember_batch([NewMemory(f"carol {i}", {"who": "carol", "i": i})
                                for i in range(40)] + [NewMemory("dave", {"who": "dave"})])
    groups, before = node.node._commits.groups, node.node.log.watermark(node.node.node_id)
    assert node.client.forget(where={"who": "carol"}) == 40
    assert node.node._commits.groups == groups + 1  # one write of the commit queue
    assert node.node.log.watermark(node.node.node_id) == before + 40  # 40 FORGET events
    assert [m.id for m in node.client.list()] == [
        m.id for m in node.client.list(where={"who": "dave"})]
