"""Mutual TLS between sidecars: members converge; outsiders and denied members get nothing
and inject nothing."""

from __future__ import annotations

import json
import shutil
import subprocess
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from federation.io.denylist import add_to_deny_list
from federation.io.denysign import deny_in_federation, sign
from federation.io.pki import _load_ca, init_federation, issue_node
from federation.io.sidecar_metrics import SidecarCollector
from federation.messages import SignedDenyList

from helpers import NodeHandle, converged_vectors, memnode_cmd, wait_for


@pytest.fixture
def federation(tmp_path: Path) -> Path:
    fed = tmp_path / "federation"
    init_federation(fed)
    return fed


def _member(federation: Path, tmp_path: Path, name: str) -> Path:
    return issue_node(federation, name, tmp_path / f"creds-{name}")


def _stalled(outsider: NodeHandle) -> bool:
    """The outsider has tried, and failed, to reach its peer at least twice."""
    assert outsider.sidecar is not None
    stats = outsider.sidecar.transport.stats
    return stats.stream_errors + stats.identify_failures >= 2


def test_members_converge_and_share_the_metadata_key(node_factory, federation: Path,  # type: ignore[no-untyped-def]
                                                     tmp_path: Path) -> None:
    a: NodeHandle = node_factory("a", peers=[], federation=_member(federation, tmp_path, "a"))
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address],
                                 federation=_member(federation, tmp_path, "b"))
    c: NodeHandle = node_factory("c", peers=[a.sidecar.address],
                                 federation=_member(federation, tmp_path, "c"))
    clients = [a.client, b.client, c.client]
    for n, client in enumerate(clients):
        client.remember(f"secure fact from {n}", {"team": "blue"})
    wait_for(lambda: [x.status().memories["replicated"] for x in clients] == [2, 2, 2]
             and converged_vectors(clients), "the TLS mesh to converge")
    assert not a.node.metakey.is_development
    assert a.node.metakey.fingerprint() == c.node.metakey.fingerprint()
    hits = c.client.recall("secure fact from 0", scope="mesh", where={"team": "blue"})
    assert {h.origin for h in hits} == {a.node.node_id, b.node.node_id, c.node.node_id}


def _assert_isolated(member: NodeHandle, outsider: NodeHandle) -> None:
    member.client.remember("members only")
    outsider.client.remember("an outsider's injection")
    wait_for(lambda: _stalled(outsider), "the outsider's connection attempts to fail")
    # a member write after the attempts: still nothing crosses, either way
    member.client.remember("members only, again")
    assert member.client.status().memories["replicated"] == 0
    assert outsider.client.status().memories["replicated"] == 0
    assert outsider.node.node_id not in member.client.status().version_vector


def test_a_certificate_from_another_ca_is_refused(node_factory, federation: Path,  # type: ignore[no-untyped-def]
                                                  tmp_path: Path) -> None:
    a: NodeHandle = node_factory("a", peers=[], federation=_member(federation, tmp_path, "a"))
    other = tmp_path / "other-federation"
    init_federation(other)
    assert a.sidecar is not None
    intruder: NodeHandle = node_factory(
        "x", peers=[a.sidecar.address], federation=issue_node(other, "x", tmp_path / "cx"))
    _assert_isolated(a, intruder)


def test_a_plaintext_peer_is_refused(node_factory, federation: Path, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    a: NodeHandle = node_factory("a", peers=[], federation=_member(federation, tmp_path, "a"))
    assert a.sidecar is not None
    plain: NodeHandle = node_factory("p", peers=[a.sidecar.address])  # --insecure
    _assert_isolated(a, plain)


def test_a_denied_member_gets_nothing_and_injects_nothing(node_factory, federation: Path,  # type: ignore[no-untyped-def]
                                                          tmp_path: Path) -> None:
    creds_a = _member(federation, tmp_path, "a")
    add_to_deny_list(creds_a, "mallory")
    a: NodeHandle = node_factory("a", peers=[], federation=creds_a)
    assert a.sidecar is not None
    mallory: NodeHandle = node_factory("m", peers=[a.sidecar.address],
                                       federation=_member(federation, tmp_path, "mallory"))
    mallory.client.remember("an injection attempt")
    a.client.remember("members only")
    wait_for(lambda: a.sidecar.transport.stats.malformed >= 1,  # type: ignore[union-attr]
             "the denied member to be refused")
    assert a.client.status().memories["replicated"] == 0
    assert mallory.client.status().memories["replicated"] == 0


def test_expired_credentials_refuse_to_start(federation: Path, tmp_path: Path) -> None:
    past = datetime.now(UTC) - timedelta(days=10)
    creds = issue_node(federation, "old", tmp_path / "old", not_before=past - timedelta(days=30),
                       not_after=past)
    result = subprocess.run(
        memnode_cmd("serve", "--data-dir", str(tmp_path / "d"), "--listen", "127.0.0.1:0",
                    "--embedder", "test-hash", "--gossip-listen", "127.0.0.1:0",
                    "--federation", str(creds)),
        capture_output=True, text=True, timeout=60)
    assert result.returncode == 2 and "expired" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_member_denied_while_in_the_mesh_receives_nothing_more(  # type: ignore[no-untyped-def]
        node_factory, federation: Path, tmp_path: Path) -> None:
    creds = {n: _member(federation, tmp_path, n) for n in ("a", "b", "c")}
    a: NodeHandle = node_factory("a", peers=[], federation=creds["a"])
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address], federation=creds["b"])
    c: NodeHandle = node_factory("c", peers=[a.sidecar.address], federation=creds["c"])
    first = a.client.remember("before the denial")
    wait_for(lambda: c.client.get(first) is not None, "c to be a member")
    denied = c.node.node_id
    for member in ("a", "b"):  # the admin's copy of the list reaches a and b
        add_to_deny_list(creds[member], denied)
    wait_for(lambda: all(denied in n.sidecar._deny for n in (a, b)),  # type: ignore[union-attr, operator]
             "a and b to load the new deny list")
    held = c.client.status().memories["replicated"]
    after = [a.client.remember("after the denial, from a"),
             b.client.remember("after the denial, from b")]
    wait_for(lambda: b.client.get(after[0]) is not None and a.client.get(after[1]) is not None,
             "the members to exchange the new writes")
    sent = a.sidecar.messages_denied  # type: ignore[union-attr]
    wait_for(lambda: a.sidecar.messages_denied >= sent + 3,  # type: ignore[union-attr]
             "a to withhold several more messages (digests, pushes) from c")
    assert c.client.status().memories["replicated"] == held
    vv = c.client.status().version_vector
    assert vv.get(a.node.node_id, 0) == 1 and vv.get(b.node.node_id, 0) == 0


def _forged_lists(federation: Path, tmp_path: Path, victim: str) -> list[bytes]:
    """Lists denying ``victim`` that our CA did not sign: another CA's, a genuine one
    with an entry added, and one with no signature."""
    other = tmp_path / "other-federation"
    init_federation(other)
    foreign = deny_in_federation(other, victim)
    key, _ = _load_ca(federation)
    doc = json.loads(sign(1, frozenset({"nobody"}), key))
    tampered = {**doc, "entries": ["nobody", victim], "version": 1 << 60}
    unsigned = {**tampered, "signature": ""}
    assert foreign is not None
    return [foreign.payload, json.dumps(tampered).encode(), json.dumps(unsigned).encode()]


def _rejected_total(node: NodeHandle) -> float:
    families = {f.name: f for f in SidecarCollector(node.sidecar).collect()}  # type: ignore[arg-type]
    return float(families["memnode_federation_deny_lists_rejected"].samples[0].value)


def test_a_denial_on_one_member_reaches_the_mesh_by_gossip(  # type: ignore[no-untyped-def]
        node_factory, federation: Path, tmp_path: Path) -> None:
    creds = {n: _member(federation, tmp_path, n) for n in ("a", "b", "c")}
    a: NodeHandle = node_factory("a", peers=[], federation=creds["a"])
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address], federation=creds["b"])
    c: NodeHandle = node_factory("c", peers=[b.sidecar.address], federation=creds["c"])  # type: ignore[union-attr]
    assert b.sidecar is not None and c.sidecar is not None
    first = a.client.remember("before the denial")
    wait_for(lambda: c.client.get(first) is not None and len(c.sidecar.peers()) == 2,  # type: ignore[union-attr]
             "c to be a member that knows a and b")
    # c, still a member, tries to spread lists denying a: each is rejected and counted
    for payload in _forged_lists(federation, tmp_path, a.node.node_id):
        c.sidecar.transport.send(b.node.node_id, b.sidecar.address,
                                 SignedDenyList(c.node.node_id, 1 << 60, payload))
    wait_for(lambda: _rejected_total(b) == 3, "b to reject c's three forged lists")
    assert b.sidecar.deny_version == 0 and a.node.node_id not in b.sidecar._deny  # type: ignore[operator]

    # the admin denies c in the federation directory and copies the list to a only
    denied = c.node.node_id
    signed = deny_in_federation(federation, denied)
    assert signed is not None
    shutil.copy(federation / "denied.signed", creds["a"] / "denied.signed")
    wait_for(lambda: all(n.sidecar.deny_version == signed.version  # type: ignore[union-attr]
                         for n in (a, b)), "the signed list to reach b by gossip from a")
    assert denied in b.sidecar._deny  # type: ignore[operator]
    assert not (creds["b"] / "denied.signed").exists()  # held in memory only
    held = c.client.status().memories["replicated"]
    after = [a.client.remember("after the denial, from a"),
             b.client.remember("after the denial, from b")]
    wait_for(lambda: b.client.get(after[0]) is not None and a.client.get(after[1]) is not None,
             "the members to exchange the new writes")
    sent = [n.sidecar.messages_denied for n in (a, b)]  # type: ignore[union-attr]
    wait_for(lambda: all(n.sidecar.messages_denied >= s + 3  # type: ignore[union-attr]
                         for n, s in zip((a, b), sent, strict=True)),
             "a and b each to withhold several more messages from c")
    assert c.client.status().memories["replicated"] == held
    vv = c.client.status().version_vector
    assert vv.get(a.node.node_id, 0) == 1 and vv.get(b.node.node_id, 0) == 0
    assert c.sidecar.deny_version == 0  # nobody sent c the list either
    # a denied member's forged list is now refused at the door, before any verification
    refused = a.sidecar.transport.stats.malformed
    c.sidecar.transport.send(a.node.node_id, a.sidecar.address,
                             SignedDenyList(denied, 1 << 61, b"{}"))
    wait_for(lambda: a.sidecar.transport.stats.malformed > refused,  # type: ignore[union-attr]
             "a to refuse c's stream")
    assert _rejected_total(a) == 0
