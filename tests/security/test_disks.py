"""What a peer keeps on its disk: after a 3-node mesh converges, no text of a remote
memory and no TEAM metadata value of one exists anywhere in a peer's data directory
(every file, raw bytes: the event log and its WAL, Chroma's SQLite and index files).

Positive controls (so the scan reads what a store writes): each peer does hold the
PUBLIC values and the TEAM values' keyed hashes of the memories it replicated. The
origin's own directory holds its texts and TEAM values only encrypted (at rest).

Two nodes are stopped with SIGTERM (a clean shutdown) and one with SIGKILL (the disk
exactly as a running node leaves it: WAL files, unapplied journal).
"""

from __future__ import annotations

import secrets
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from memnode import Client

from helpers import NodeProcess, converged_vectors, start_mesh, wait_for

pytestmark = pytest.mark.slow

PER_NODE = 70  # shared memories per node, a third of them PUBLIC
PRIVATE_PER_NODE = 3


@pytest.fixture
def procs() -> Iterator[list[NodeProcess]]:
    started: list[NodeProcess] = []
    yield started
    for proc in started:
        proc.kill()


@dataclass(frozen=True)
class Written:
    node: int
    id: str
    privacy: str
    text: str
    team: str
    public: str


def _canary(kind: str) -> str:
    return f"canary-{kind}-{secrets.token_hex(8)}"


def _write(client: Client, node: int) -> list[Written]:
    out = []
    for i in range(PER_NODE + PRIVATE_PER_NODE):
        privacy = "private" if i >= PER_NODE else "public" if i % 3 == 0 else "team"
        text, team = _canary("text"), "" if privacy == "public" else _canary("team")
        public = _canary("public") if privacy == "public" else ""
        metadata = {"label": public} if public else {"secret": team}
        mid = client.remember(f"note {i} from node {node}: the code word is {text} ok",
                              metadata, privacy=privacy)
        out.append(Written(node, mid, privacy, text, team, public))
    return out


def _dir_bytes(data_dir: Path) -> tuple[bytes, list[str]]:
    """Every file under ``data_dir``, raw, joined; and their relative names."""
    files = sorted(p for p in data_dir.rglob("*") if p.is_file())
    blob = b"\0|\0".join(p.read_bytes() for p in files)
    return blob, [str(p.relative_to(data_dir)) for p in files]


def _holding(data_dir: Path, values: list[str]) -> list[str]:
    """The files under ``data_dir`` holding any of ``values`` (for a failure's message)."""
    return [str(p.relative_to(data_dir)) for p in sorted(data_dir.rglob("*"))
            if p.is_file() and any(v.encode() in p.read_bytes() for v in values)]


def test_no_remote_text_or_team_value_on_a_peers_disk(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    t0 = time.monotonic()
    procs += start_mesh(tmp_path, 3)
    clients = [p.client() for p in procs]
    written = [w for n, c in enumerate(clients) for w in _write(c, n)]
    shared = [w for w in written if w.privacy != "private"]
    wait_for(lambda: [c.status().memories["replicated"] for c in clients]
             == [2 * PER_NODE] * 3 and converged_vectors(clients),
             "every node to hold the other nodes' memories as replicas", 60, 0.1)
    team_hashes: dict[int, list[str]] = {n: [] for n in range(3)}  # held by node n
    for n, client in enumerate(clients):
        for m in client.list(scope="mesh"):
            if not m.local and "secret" in m.metadata:
                team_hashes[n].append(m.metadata["secret"])
    for client in clients:
        client.close()
    assert procs[0].terminate() == 0 and procs[1].terminate() == 0
    procs[2].kill()

    files_seen, absent_checked = 0, 0
    for n, proc in enumerate(procs):
        blob, names = _dir_bytes(proc.data_dir)
        files_seen += len(names)
        own = [w for w in written if w.node == n]
        remote = [w for w in written if w.node != n]
        # encrypted at rest: not even the origin's files hold its own texts or TEAM values
        clear = [w.text for w in own if w.text.encode() in blob]
        assert not clear, (f"node {n}: {len(clear)} texts in clear, in "
                           f"{_holding(proc.data_dir, clear[:1])}")
        assert not any(w.team.encode() in blob for w in own if w.team)
        # nothing of a remote memory's text or TEAM value, not even its random part
        for w in remote:
            for value in (w.text, w.team):
                if value:
                    absent_checked += 1
                    bare = value.rsplit("-", 1)[1].encode()
                    assert bare not in blob, (f"{value} of {w.id} ({w.privacy}) found in "
                                              f"node {n}'s data dir ({names})")
        # what a replica must hold: PUBLIC values in clear, TEAM values as keyed hashes
        publics = [w.public for w in remote if w.privacy == "public"]
        assert publics and all(p.encode() in blob for p in publics)
        assert len(team_hashes[n]) == sum(w.privacy == "team" for w in remote)
        assert all(h.encode() in blob for h in team_hashes[n])
        if n == 2:
            assert any(name.endswith("-wal") for name in names), names
    print(f"\nscanned {files_seen} files in 3 data dirs; {len(written)} memories "
          f"({len(shared)} shared); {absent_checked} (peer, remote text or TEAM value) "
          f"pairs absent; {time.monotonic() - t0:.1f}s")
