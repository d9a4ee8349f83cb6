"""What crosses the wire between real hosts: three nodes in three network namespaces on a
bridge, in --insecure mode so the traffic can be read, a tcpdump capture of the bridge
while 200+ memories are written, then a search of the captured bytes.

No text and no TEAM metadata value may cross; (positive controls) every PUBLIC
metadata value, every TEAM value's keyed hash and every replicated embedding must be
seen, which also proves the capture is complete and readable (plaintext, uncompressed).

The capture holds everything on the bridge except the client API port: the test
process talks to each node's API through an address on the bridge, and that traffic
carries text by design (a client sends its own node the text). Gossip and anything
else between the hosts is captured. The bytes are searched three ways: the raw pcap
file, each TCP direction reassembled in sequence order, and each HTTP/2 stream's DATA
frames joined (so a value split over packets or frames is whole again).
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import sqlite3
import subprocess
import sys
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from federation.events import EventKind
from memnode import Client
from memnode.storage.atrest import open_atrest
from memnode.storage.records import event_of

from helpers import converged_vectors, wait_for
from netlab import Netlab, NetlabUnavailable, http2_frames, read_pcap, read_until, tcp_flows

pytestmark = pytest.mark.slow

API_PORT = 7420
GOSSIP_PORT = 7422
PER_NODE = 70  # shared memories written on each node (a third PUBLIC)
PRIVATE_PER_NODE = 3  # never replicated: not even their embedding may cross


@pytest.fixture
def lab() -> Iterator[Netlab]:
    lab = Netlab(3)
    try:
        Netlab.check_tools("tcpdump")
        lab.create()
    except NetlabUnavailable as exc:
        pytest.skip(f"multi-host test needs network namespaces and tcpdump: {exc}")
    try:
        yield lab
    finally:
        lab.teardown()
    wait_for(lambda: not lab.leftovers(), "the lab's interfaces and namespaces to go", 10)


@dataclass(frozen=True)
class Written:
    node: int
    id: str
    privacy: str
    text: str  # "canary-text-<hex>" in the text
    team: str  # "canary-team-<hex>" as a TEAM metadata value ("" for PUBLIC)
    public: str  # "canary-public-<hex>" as a PUBLIC metadata value ("" for TEAM)


def _canary(kind: str) -> str:
    return f"canary-{kind}-{secrets.token_hex(8)}"


def _write(client: Client, node: int) -> list[Written]:
    out = []
    for i in range(PER_NODE + PRIVATE_PER_NODE):
        privacy = ("private" if i >= PER_NODE else "public" if i % 3 == 0 else "team")
        text = _canary("text")
        team = "" if privacy == "public" else _canary("team")
        public = _canary("public") if privacy == "public" else ""
        metadata = {"label": public} if public else {"secret": team}
        mid = client.remember(f"note {i} from host {node}: the code word is {text} ok",
                              metadata, privacy=privacy)
        out.append(Written(node, mid, privacy, text, team, public))
    return out


def _start_node(lab: Netlab, index: int, data_dir: Path, log: Path) -> subprocess.Popen[bytes]:
    host = lab.hosts[index]
    peer = ["--peer", f"{lab.hosts[0].ip}:{GOSSIP_PORT}"] if index else []
    cmd = [sys.executable, "-m", "memnode.cli.main", "--log-level", "WARNING", "serve",
           "--data-dir", str(data_dir), "--listen", f"{host.ip}:{API_PORT}",
           "--embedder", "test-hash", "--insecure", "--client-auth", "none",
           "--allow-unauthenticated", "--gossip-listen",
           f"{host.ip}:{GOSSIP_PORT}", "--preset", "local", *peer]
    with log.open("wb") as err:
        return lab.spawn(cmd, host.netns, stderr=err)


def _own_embeddings(data_dir: Path, node_id: str) -> dict[str, bytes]:
    """memory id -> embedding bytes of the node's own PUT events (its signed log; PUBLIC
    ones are sealed at rest, opened with the node's master key)."""
    sealer = open_atrest(data_dir, None, {})
    conn = sqlite3.connect(data_dir / "log.db")
    try:
        rows = conn.execute("SELECT memory_id, body FROM events WHERE origin = ? AND kind = ?",
                            (node_id, int(EventKind.PUT))).fetchall()
        return {mid: bytes(event_of(conn, body, sealer).embedding) for mid, body in rows}
    finally:
        conn.close()


def test_no_text_or_team_metadata_on_the_wire(lab: Netlab, tmp_path: Path) -> None:
    t0 = time.monotonic()
    pcap = tmp_path / "cap.pcap"
    tcpdump = lab.start_capture(pcap, f"not (tcp port {API_PORT})")
    assert pcap.stat().st_size >= 24, "tcpdump is listening but wrote no pcap header"

    # one node per host, all started at once (the peers' address is known in advance)
    nodes = [_start_node(lab, i, tmp_path / f"node{i}", tmp_path / f"node{i}.log")
             for i in range(3)]
    ready = []
    for i, proc in enumerate(nodes):
        line = read_until(proc, "\n", 60)
        assert line.strip(), (f"node {i} did not start: "
                              f"{(tmp_path / f'node{i}.log').read_text()[-2000:]}")
        ready.append(json.loads(line.splitlines()[0]))
        assert ready[i]["listen"] == f"{lab.hosts[i].ip}:{API_PORT}"
    node_ids = [r["node_id"] for r in ready]
    clients = [Client(f"{h.ip}:{API_PORT}", timeout=30) for h in lab.hosts]
    wait_for(lambda: all(c.status() for c in clients), "the nodes' APIs across the bridge", 30)
    t_ready = time.monotonic()

    try:
        with ThreadPoolExecutor(3) as pool:
            written = [w for ws in pool.map(_write, clients, range(3)) for w in ws]
        shared = [w for w in written if w.privacy != "private"]
        assert len(shared) == 3 * PER_NODE >= 200
        # the canaries were stored as written (not redacted away) on their origin
        for n, client in enumerate(clients):
            own = {m.id: m for m in client.list(scope="local")}
            for w in (w for w in written if w.node == n):
                assert w.text in own[w.id].text
                assert own[w.id].metadata == ({"label": w.public} if w.public
                                              else {"secret": w.team})
        wait_for(lambda: [c.status().memories["replicated"] for c in clients]
                 == [2 * PER_NODE] * 3 and converged_vectors(clients),
                 "every node to hold the other nodes' memories as replicas", 60, 0.1)
        t_converged = time.monotonic()
        # the keyed hash each TEAM value travels as, as seen on a replica
        team_hashes = {}
        for client in clients:
            for m in client.list(scope="mesh"):
                if not m.local and "secret" in m.metadata:
                    team_hashes[m.id] = m.metadata["secret"]
        assert len(team_hashes) == sum(w.privacy == "team" for w in shared)
    finally:
        for client in clients:
            client.close()
        tcpdump.send_signal(signal.SIGINT)
        tcpdump.wait(15)
        assert tcpdump.stderr is not None
        tcpdump_report = lab.capture_banner + tcpdump.stderr.read().decode(errors="replace")
        for proc in nodes:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGTERM)
        for proc in nodes:
            proc.wait(30)

    # -- the capture, read back three ways ------------------------------------------
    raw = pcap.read_bytes()
    dropped = re.search(r"(\d+) packets? dropped by kernel", tcpdump_report)
    assert dropped and dropped.group(1) == "0", f"tcpdump lost packets: {tcpdump_report}"
    frames = read_pcap(pcap)
    flows = tcp_flows(frames)
    assert flows, "nothing captured"
    assert all(f.gaps == 0 for f in flows.values()), "holes in a captured TCP stream"
    gossip = {k: f for k, f in flows.items() if GOSSIP_PORT in (k[1], k[3])}
    pairs = {frozenset((k[0], k[2])) for k in gossip}
    ips = [h.ip for h in lab.hosts]
    assert {frozenset((ips[0], ips[1])), frozenset((ips[0], ips[2]))} <= pairs
    h2 = [http2_frames(f.data) for f in gossip.values()]
    messages = [m for d in h2 for m in d.grpc_messages()]
    assert messages and all(flag == 0 for flag, _ in messages), "compressed gRPC messages"
    tcp_blob = b"\0|\0".join(f.data for f in flows.values())
    data_blob = b"\0|\0".join(bytes(s) for d in h2 for s in d.data.values())
    haystacks = {"raw pcap": raw, "TCP streams": tcp_blob, "HTTP/2 DATA": data_blob}

    # -- nothing private crossed --------------------------------------------------------
    for name, hay in haystacks.items():
        for prefix in (b"canary-text-", b"canary-team-"):
            assert prefix not in hay, f"{prefix!r} found in the {name}"
    secrets_ = [w.text for w in written] + [w.team for w in written if w.team]
    assert len(secrets_) == 2 * len(written) - sum(w.privacy == "public" for w in written)
    for value in secrets_:  # the bare random part too, whatever form it took
        bare = value.rsplit("-", 1)[1].encode()
        for name, hay in haystacks.items():
            assert bare not in hay, f"{value} (or its random part) found in the {name}"

    # -- positive controls: what must cross did cross, readably --------------------------
    publics = [w.public for w in shared if w.public]
    missing = [p for p in publics if p.encode() not in data_blob]
    assert not missing, f"{len(missing)}/{len(publics)} PUBLIC canaries not captured"
    missing_hashes = [h for h in team_hashes.values() if h.encode() not in data_blob]
    assert not missing_hashes, f"{len(missing_hashes)} TEAM hashes not captured"
    embeddings: dict[str, bytes] = {}
    for i, node_id in enumerate(node_ids):
        embeddings |= _own_embeddings(tmp_path / f"node{i}", node_id)
    assert set(embeddings) == {w.id for w in shared}  # private ones are never events
    assert all(len(e) == 384 * 4 for e in embeddings.values())
    absent = [mid for mid, e in embeddings.items() if e not in data_blob]
    assert not absent, f"{len(absent)}/{len(embeddings)} replicated embeddings not captured"

    in_raw = sum(p.encode() in raw for p in publics)
    emb_in_raw = sum(e in raw for e in embeddings.values())
    print(f"\ncapture: {len(raw)} bytes pcap, {len(frames)} frames, "
          f"{sum(len(f.data) for f in gossip.values())} gossip payload bytes in "
          f"{len(gossip)} TCP directions ({len(pairs)} host pairs), "
          f"{len(messages)} gRPC messages, {len(data_blob)} DATA bytes; other flows: "
          f"{sorted(set(flows) - set(gossip))}\n"
          f"memories: {len(shared)} shared ({len(publics)} PUBLIC, {len(team_hashes)} TEAM) "
          f"+ {len(written) - len(shared)} PRIVATE; absent: {len(secrets_)} text/TEAM "
          f"canaries; present: {len(publics)} PUBLIC canaries ({in_raw} contiguous in the "
          f"raw pcap), {len(team_hashes)} TEAM hashes, {len(embeddings)} embeddings "
          f"({emb_in_raw} contiguous in the raw pcap)\n"
          f"times: nodes ready {t_ready - t0:.1f}s, converged {t_converged - t0:.1f}s, "
          f"total {time.monotonic() - t0:.1f}s\ntcpdump: {tcpdump_report.strip()}")
