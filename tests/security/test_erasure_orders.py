"""CA-signed erasure orders on real node processes with mutual TLS: one admin action
erases a lost origin's replicas on every member, and they never come back."""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from federation.erasure import ErasureOrder
from federation.io.erasesign import ErasureOrdersRejected, sign, verify
from federation.io.pki import _load_ca, init_federation, issue_node
from federation.io.signeddoc import load_ca_public_key
from memnode import Client, NewMemory

from helpers import NodeProcess, run_cli, wait_for


@pytest.fixture
def federation(tmp_path: Path) -> Path:
    init_federation(tmp_path / "fed")
    init_federation(tmp_path / "other")
    return tmp_path / "fed"


def _node(tmp: Path, fed: Path, name: str, *peers: NodeProcess,
          data: Path | None = None) -> NodeProcess:
    creds = tmp / f"creds-{name}"
    if not creds.exists():
        issue_node(fed, name, creds)
    args = ["--federation", str(creds), "--gossip-listen", "127.0.0.1:0", "--preset",
            "local", "--metrics-listen", "127.0.0.1:0"]
    for peer in peers:
        args += ["--peer", peer.gossip]
    return NodeProcess(data or tmp / name, args).start()


def _metric(proc: NodeProcess, name: str) -> float:
    """One sample of the node's /metrics, by name and labels (0 when absent)."""
    url = f"http://127.0.0.1:{proc.ready['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as r:
        lines = r.read().decode().splitlines()
    samples = dict(line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))
    return float(samples.get(name, 0))


ERASED = 'memnode_federation_events_rejected_total{reason="erased"}'
VERSION = "memnode_federation_erasure_orders_version"
REJECTED = "memnode_federation_erasure_orders_rejected_total"


def _replicas_of(client: Client, origin: str) -> int:
    return sum(1 for m in client.list(scope="mesh") if m.origin == origin)


def _mesh(tmp: Path, fed: Path) -> tuple[NodeProcess, NodeProcess, NodeProcess, list[str]]:
    a = _node(tmp, fed, "a")
    b = _node(tmp, fed, "b", a)
    c = _node(tmp, fed, "c", a)
    lost = c.client().remember_batch([NewMemory(f"c knew {i}") for i in range(4)])
    a.client().remember("a's own")
    origin = c.ready["node_id"]
    wait_for(lambda: all(_replicas_of(n.client(), origin) == 4 for n in (a, b)),
             "a and b to hold c's four memories")
    return a, b, c, lost


def test_an_order_erases_a_lost_origin_everywhere_and_its_events_are_refused(
        tmp_path: Path, federation: Path, procs: list) -> None:  # type: ignore[type-arg]
    a, b, c, lost = _mesh(tmp_path, federation)
    procs += [a, b, c]
    origin = c.ready["node_id"]
    c.kill()  # the origin is lost

    # an order signed by another CA, dropped into b's credentials: refused and counted
    other_key, _ = _load_ca(tmp_path / "other")
    (tmp_path / "creds-b" / "erasures.signed").write_bytes(
        sign(1 << 50, [ErasureOrder(1, origin)], other_key))
    wait_for(lambda: _metric(b, REJECTED) >= 1, "b to reject the forged order")
    assert _metric(b, VERSION) == 0 and _replicas_of(b.client(), origin) == 4

    r = run_cli("federation", "erase", "--origin", origin, "--ca-dir", str(federation))
    assert r.returncode == 0 and "erasure order 1: every memory of origin" in r.stderr, r.stderr
    signed = verify((federation / "erasures.signed").read_bytes(),
                    load_ca_public_key(federation))
    shutil.copy(federation / "erasures.signed", tmp_path / "creds-a")  # one member only
    wait_for(lambda: all(_replicas_of(n.client(), origin) == 0 for n in (a, b)),
             "the order to reach b by gossip and both to erase c's replicas")
    assert all(_metric(n, VERSION) == signed.version for n in (a, b))
    assert all(n.client().status().memories["replicated"] == (0 if n is a else 1)
               for n in (a, b))

    # the origin comes back from its disk and writes: every member refuses it
    c = _node(tmp_path, federation, "c", a, data=tmp_path / "c")
    procs.append(c)
    c.client().remember("c is back")
    # (a member that refused it vouches for its seq as compacted, so the other may
    # learn of it only as a gap: the refusal is counted where the event arrived)
    wait_for(lambda: all(n.client().status().version_vector[origin] == 5 for n in (a, b))
             and sum(_metric(n, ERASED) for n in (a, b)) >= 1,
             "a and b to refuse the returning origin's new event")
    assert all(_replicas_of(n.client(), origin) == 0 for n in (a, b))
    assert _replicas_of(c.client(), origin) == 5  # its own memories: not the order's
    # an order is kept in the node's log: a restarted node still enforces it
    a.terminate()
    (tmp_path / "creds-a" / "erasures.signed").unlink()
    a = _node(tmp_path, federation, "a", b, data=tmp_path / "a")
    procs.append(a)
    assert _metric(a, VERSION) == signed.version
    assert lost and _replicas_of(a.client(), origin) == 0


def test_a_member_restarted_from_an_old_data_dir_is_refused_and_erases_again(
        tmp_path: Path, federation: Path, procs: list) -> None:  # type: ignore[type-arg]
    a, b, c, _ = _mesh(tmp_path, federation)
    procs += [a, b, c]
    origin = c.ready["node_id"]
    c.kill()
    b.terminate()
    shutil.copytree(tmp_path / "b", tmp_path / "b-old")  # holds c's replicas, no order
    b = _node(tmp_path, federation, "b", a, data=tmp_path / "b")
    procs.append(b)
    run_cli("federation", "erase", "--origin", origin, "--ca-dir", str(federation))
    shutil.copy(federation / "erasures.signed", tmp_path / "creds-b")
    wait_for(lambda: all(_replicas_of(n.client(), origin) == 0 for n in (a, b)),
             "a and b to erase c's replicas")
    b.terminate()
    shutil.rmtree(tmp_path / "b")
    (tmp_path / "creds-b" / "erasures.signed").unlink()
    b = _node(tmp_path, federation, "b", data=tmp_path / "b-old")  # alone, with c's events
    procs.append(b)
    assert _replicas_of(b.client(), origin) == 4 and _metric(b, VERSION) == 0
    # a new member (its credentials, issued now, carry the order) meets only the old b,
    # which gossips c's events to it: refused and counted; b learns the order from it
    d = _node(tmp_path, federation, "d", b)
    procs.append(d)
    wait_for(lambda: _metric(d, ERASED) == 4 and _replicas_of(b.client(), origin) == 0,
             "d to refuse c's four events from the old b, and b to erase them again")
    assert _replicas_of(d.client(), origin) == 0 and _metric(b, VERSION) == _metric(d, VERSION)
    assert d.client().status().memories["replicated"] == 1  # a's memory, through b


def test_only_orders_signed_by_our_ca_verify(federation: Path, tmp_path: Path) -> None:
    key, _ = _load_ca(federation)
    other_key, _ = _load_ca(tmp_path / "other")
    ours = load_ca_public_key(federation)
    good = sign(3, [ErasureOrder(1, "node-x", frozenset({"node-x/m1"}), 5)], key)
    assert verify(good, ours).orders == (ErasureOrder(1, "node-x", frozenset({"node-x/m1"}),
                                                      5),)
    tampered = good.replace(b'"node-x/m1"', b'"node-x/m2"')
    for bad in (sign(3, [ErasureOrder(1, "node-x")], other_key), tampered, b"{}",
                good.replace(b'"version": 3', b'"version": 4')):
        with pytest.raises(ErasureOrdersRejected):
            verify(bad, ours)
    r = run_cli("federation", "erase", "--origin", "node-x", "--id", "other/m",
                "--ca-dir", str(federation))
    assert r.returncode == 2 and "not of origin node-x" in r.stderr
    r = run_cli("federation", "erase", "--origin", "node-x", "--id", "m1", "--id", "node-x/m2",
                "--ca-dir", str(federation))
    assert r.returncode == 0 and "erasure order 1: 2 memories of origin node-x" in r.stderr


def test_the_node_keeps_the_orders_across_its_replica_api(node_factory, federation: Path,  # type: ignore[no-untyped-def]
                                                         tmp_path: Path) -> None:
    """What a sidecar in its own process persists (erase, keep the orders) and gets back
    at restart, through the node-local Replica API."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from federation.effects import DeleteReplica, KeepErasures, UpsertReplica
    from federation.events import (
        Event,
        EventKind,
        SharedPrivacy,
        node_id_from_public_key,
        public_key_bytes,
    )
    from federation.events import sign as sign_event
    from federation.io.replica_client import GrpcReplicaPort

    handle = node_factory("x", sidecar="external", replica_listen="127.0.0.1:0",
                          metadata_key_file=federation / "metadata.key")
    port = GrpcReplicaPort(handle.server.replica_address)
    try:
        assert port.restart_state().erasure_record == b""
        key = Ed25519PrivateKey.generate()
        origin = node_id_from_public_key(public_key_bytes(key))
        model = handle.node.model
        event = sign_event(Event(origin=origin, seq=1, kind=EventKind.PUT, local_id="m",
                                 timestamp_ms=1, privacy=SharedPrivacy.TEAM, model=model,
                                 embedding=b"\0" * 4 * model.dim), key)
        port.persist([UpsertReplica(event)])
        assert handle.client.status().memories["replicated"] == 1
        record = sign(9, [ErasureOrder(1, origin)], _load_ca(federation)[0])
        port.persist([DeleteReplica(event.memory_id, None), KeepErasures(record)])
        assert handle.client.status().memories["replicated"] == 0
        restart = port.restart_state()
        assert restart.erasure_record == record and not restart.events
    finally:
        port.close()


def test_a_forged_order_from_a_member_is_refused_and_counted(  # type: ignore[no-untyped-def]
        node_factory, federation: Path, tmp_path: Path) -> None:
    from federation.messages import SignedErasures

    a = node_factory("a", peers=[], federation=issue_node(federation, "a", tmp_path / "ca"))
    b = node_factory("b", peers=[a.sidecar.address],
                     federation=issue_node(federation, "b", tmp_path / "cb"))
    wait_for(lambda: len(a.sidecar.peers()) == 1, "a and b to be peers")
    other_key, _ = _load_ca(tmp_path / "other")
    forged = sign(1 << 50, [ErasureOrder(1, a.node.node_id)], other_key)
    for payload in (forged, forged.replace(b'"serial": 1', b'"serial": 2'), b"not json"):
        a.sidecar.transport.send(b.node.node_id, b.sidecar.address,
                                 SignedErasures(a.node.node_id, 1 << 50, payload))
    wait_for(lambda: b.sidecar.erasures.rejected == 3, "b to refuse the three forged orders")
    assert b.sidecar.erasure_version == 0 and len(b.sidecar.core.replica.erasures) == 0
