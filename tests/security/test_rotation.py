"""Rotation without downtime, on a live mesh of node processes over mutual TLS: the
metadata key (add, use, re-publish, retire) while writing, and a node certificate
renewed in place (and a broken one refused)."""

from __future__ import annotations

import os
import re
import socket
import ssl
import threading
import urllib.request
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec

from federation.io.keyring import MetadataKeys
from federation.io.pki import (
    CA_CERT,
    METADATA_KEY,
    NODE_CERT,
    NODE_KEY,
    init_federation,
    issue_node,
)
from memnode import Client

from helpers import NodeProcess, run_cli, wait_for


def _node(tmp: Path, name: str, creds: Path, *extra: str) -> NodeProcess:
    return NodeProcess(tmp / name, ["--federation", str(creds), "--gossip-listen",
                                    "127.0.0.1:0", "--preset", "local",
                                    "--metrics-listen", "127.0.0.1:0", *extra])


def _metric(proc: NodeProcess, name: str, labels: str = "") -> float | None:
    url = f"http://127.0.0.1:{proc.ready['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    pattern = rf"^{re.escape(name)}(\{{[^}}]*{re.escape(labels)}[^}}]*\}})? (\S+)$"
    found = re.search(pattern, text, re.M)
    return float(found.group(2)) if found else None


def _distribute(fed: Path, creds: list[Path]) -> None:
    """What an admin does: copy the federation's key file to every member (atomically,
    0600)."""
    data = (fed / METADATA_KEY).read_bytes()
    for directory in creds:
        tmp = directory / ".metadata.key.new"
        tmp.write_bytes(data)
        tmp.chmod(0o600)
        os.replace(tmp, directory / METADATA_KEY)


def _key(fed: Path, *args: str) -> None:
    result = run_cli("federation", "key", *args[:1], str(fed), *args[1:])
    assert result.returncode == 0, result.stderr


def _team_hits(client: Client, k: int = 1000) -> set[str]:
    return {h.id for h in client.recall("fact", k=k, scope="mesh", where={"team": "blue"})}


def _team_listed(client: Client) -> set[str]:
    """The exact answer (List matches metadata without a vector search)."""
    return {m.id for m in client.list(scope="mesh", where={"team": "blue"})}


def test_the_metadata_key_rotates_on_a_live_mesh_while_writing(tmp_path: Path) -> None:
    fed = tmp_path / "federation"
    init_federation(fed)
    creds = [issue_node(fed, f"n{i}", tmp_path / f"creds{i}") for i in range(3)]
    first = _node(tmp_path, "node0", creds[0]).start()
    procs = [first] + [_node(tmp_path, f"node{i}", creds[i], "--peer", first.gossip).start()
                       for i in (1, 2)]
    clients = [p.client() for p in procs]
    written: list[tuple[int, str]] = []  # (writer node, id)
    stop = threading.Event()
    writers = [0, 1, 2]  # the nodes written to (node 0 is not while it is down)
    turn = threading.Lock()

    def write() -> None:
        n = 0
        while not stop.is_set():
            with turn:
                for i in writers:  # distinct words: the test-hash embedder ignores their order
                    mid = clients[i].remember(f"fact number{n} by node{i}", {"team": "blue"})
                    written.append((i, mid))
                    n += 1
            stop.wait(0.2)

    writer = threading.Thread(target=write, daemon=True)
    writer.start()
    try:
        wait_for(lambda: len(written) >= 15, "writes before the rotation")
        before = {mid for i, mid in written if i == 0}
        _key(fed, "add")  # key 1, held beside key 0
        _distribute(fed, creds)
        wait_for(lambda: all(_metric(p, "memnode_metadata_keys_held") == 2 for p in procs),
                 "every node to hold both keys")
        # node 0 is down while key 1 becomes current: its replicas stay hashed under key 0
        with turn:
            writers.remove(0)
        procs[0].terminate()
        clients[0].close()
        _key(fed, "use", "1")
        _distribute(fed, creds)
        wait_for(lambda: all(_metric(p, "memnode_metadata_key_current") == 1 for p in procs[1:]),
                 "nodes 1 and 2 to hash new writes under key 1")
        with turn:  # what is written from here on was signed after the switch
            mark = len(written)
        wait_for(lambda: len(written) >= mark + 10, "writes after the switch")
        after = {mid for i, mid in written[mark:] if i == 1}
        keys = MetadataKeys.load(fed / METADATA_KEY, {})
        blue = keys.hashes("blue")
        c2 = clients[2]
        wait_for(lambda: all(c2.get(m) for m in before | after), "node 2 to hold them all")
        # the overlap: replicas under key 0 (node 0, down) and key 1 (node 1) both match
        assert {c2.get(m).metadata["team"] for m in before} == {blue[0]}
        assert {c2.get(m).metadata["team"] for m in after} == {blue[1]}
        assert before | after <= _team_hits(c2)
        # node 0 comes back with the new key file: it re-publishes under key 1 at start
        procs[0] = _node(tmp_path, "node0", creds[0], "--peer", procs[1].gossip).start()
        with turn:
            clients[0] = procs[0].client()
            writers.insert(0, 0)
        wait_for(lambda: all(_metric(p, "memnode_metadata_republish_pending") == 0
                             for p in procs), "every node to re-publish under key 1")
        assert (_metric(procs[0], "memnode_metadata_republished_total") or 0) >= len(before)
        wait_for(lambda: {c2.get(m).metadata["team"] for m in before} == {blue[1]},
                 "node 2's replicas of node 0 to be re-hashed under key 1")
    finally:
        stop.set()
        writer.join(30)
    _key(fed, "retire", "0")
    _distribute(fed, creds)
    wait_for(lambda: all(_metric(p, "memnode_metadata_keys_held") == 1 for p in procs),
             "every node to drop key 0")
    ids = {mid for _, mid in written}
    wait_for(lambda: all(all(c.get(m) for m in ids) for c in clients),
             "every write to reach every node")
    # only key 1 is held now: every replica is (once node 0's re-publication has reached
    # every node: anti-entropy may bring the last of it) hashed under it
    missing: dict[int, dict[str, object]] = {}

    def all_match() -> bool:
        missing.clear()
        for n, c in enumerate(clients):
            gone = ids - _team_listed(c)
            if gone:
                missing[n] = {m: (c.get(m).metadata, c.get(m).local) for m in sorted(gone)}
        return not missing

    try:
        wait_for(all_match, "every replica on every node to match the filter under key 1")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; node -> memory -> (metadata, own): {missing}; key 1 "
                             f"hashes blue as {blue[1]!r}, key 0 as {blue[0]!r}") from None
    for client in clients:
        client.close()


def _served_serial(port: int, client_creds: Path | None, ca: Path) -> int:
    """The serial of the certificate a new TLS connection to ``port`` is served."""
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.load_verify_locations(ca)
    if client_creds is not None:
        ctx.load_cert_chain(client_creds / NODE_CERT, client_creds / NODE_KEY)
    ctx.set_alpn_protocols(["h2"])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as raw, \
            ctx.wrap_socket(raw) as tls:
        der = tls.getpeercert(binary_form=True)
    assert der is not None
    return x509.load_der_x509_certificate(der).serial_number


def _serial(creds: Path) -> int:
    return x509.load_pem_x509_certificate((creds / NODE_CERT).read_bytes()).serial_number


def test_a_node_certificate_is_renewed_while_running(tmp_path: Path) -> None:
    fed = tmp_path / "federation"
    init_federation(fed)
    creds = [issue_node(fed, f"n{i}", tmp_path / f"creds{i}") for i in range(2)]
    tls = ["--tls-cert", str(creds[0] / NODE_CERT), "--tls-key", str(creds[0] / NODE_KEY)]
    a = _node(tmp_path, "a", creds[0], *tls).start()
    b = _node(tmp_path, "b", creds[1], "--peer", a.gossip).start()
    gossip_port = int(a.gossip.rpartition(":")[2])
    api_port = int(a.addr.rpartition(":")[2])
    ca = creds[0] / CA_CERT
    ca_, cb = Client(a.addr, tls_ca=ca, timeout=30), b.client()
    first = ca_.remember("before the renewal")
    wait_for(lambda: cb.get(first), "b to replicate a's first write")
    old = _serial(creds[0])
    assert _served_serial(gossip_port, creds[1], ca) == old

    result = run_cli("federation", "issue", str(fed), "--name", "n0", "--out", str(creds[0]),
                     "--renew", "--days", "30")
    assert result.returncode == 0, result.stderr
    new = _serial(creds[0])
    assert new != old
    wait_for(lambda: _served_serial(gossip_port, creds[1], ca) == new,
             "new gossip connections to be served the renewed certificate")
    wait_for(lambda: _served_serial(api_port, None, ca) == new,
             "new client API connections to be served the renewed certificate")
    expiry = x509.load_pem_x509_certificate((creds[0] / NODE_CERT).read_bytes()
                                            ).not_valid_after_utc.timestamp()
    assert _metric(a, "memnode_federation_tls_certificate_expiry_timestamp_seconds") == expiry
    assert _metric(a, "memnode_federation_tls_certificate_reloads_total", 'result="ok"') == 1
    both = [ca_.remember("after the renewal, from a"), cb.remember("after the renewal, from b")]
    wait_for(lambda: cb.get(both[0]) and ca_.get(both[1]), "replication to go on")

    # a broken certificate, then a key that is not the certificate's: refused, counted
    good_cert = (creds[0] / NODE_CERT).read_bytes()
    (creds[0] / NODE_CERT).write_bytes(b"-----BEGIN CERTIFICATE-----\nbroken\n")
    wait_for(lambda: _metric(a, "memnode_federation_tls_certificate_reloads_total",
                             'result="rejected"') == 1, "the broken certificate to be refused")
    wait_for(lambda: _metric(a, "memnode_client_tls_certificate_reloads_total",
                             'result="rejected"') == 1, "the client API to refuse it too")
    assert _served_serial(gossip_port, creds[1], ca) == new
    (creds[0] / NODE_CERT).write_bytes(good_cert)
    other = ec.generate_private_key(ec.SECP256R1())
    (creds[0] / NODE_KEY).write_bytes(other.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    wait_for(lambda: _metric(a, "memnode_federation_tls_certificate_reloads_total",
                             'result="rejected"') == 2, "the mismatched key to be refused")
    assert _served_serial(gossip_port, creds[1], ca) == new
    assert _served_serial(api_port, None, ca) == new
    last = [ca_.remember("with the broken files in place, from a"),
            cb.remember("with the broken files in place, from b")]
    wait_for(lambda: cb.get(last[0]) and ca_.get(last[1]), "replication to go on still")
    assert "certificate or key refused" in a.stderr()
    ca_.close()
    cb.close()
