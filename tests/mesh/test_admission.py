"""What the node acknowledges, the mesh carries: a write the peers would refuse is refused
at the door, and an unreplicable own event left by an older version stalls nothing."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from federation.config import FederationConfig
from memnode import NewMemory
from memnode.config import NodeConfig
from memnode.embedders import HashEmbedder
from memnode.node.ingest import RememberInput
from memnode.node.node import Node
from memnode.storage.eventlog import LOG_FILE

from helpers import NodeProcess, converged_vectors, mesh_args, run_cli, start_mesh, wait_for

LIMITS = FederationConfig()


def test_a_write_the_mesh_would_refuse_is_refused_and_replication_goes_on(
        tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    procs += start_mesh(tmp_path, 2)
    addr = procs[0].addr
    long_key = "k" * (LIMITS.max_metadata_key_bytes + 1)
    done = run_cli("remember", "x", "--meta", f"{long_key}=v", addr=addr)
    assert done.returncode == 2, done
    assert f"the limit is {LIMITS.max_metadata_key_bytes}" in done.stderr
    # 64 values of 1000 bytes each fit every per-value limit, but not one 64 KiB event
    big = [arg for i in range(LIMITS.max_metadata_entries)
           for arg in ("--meta", f"k{i}={'v' * 1000}")]
    done = run_cli("remember", "y", "--privacy", "public", *big, addr=addr)
    assert done.returncode == 2, done
    assert "the mesh would refuse" in done.stderr and "oversized" in done.stderr
    # the same metadata at level private never replicates: accepted
    done = run_cli("remember", "z", "--privacy", "private", *big, addr=addr)
    assert done.returncode == 0, done
    clients = [p.client() for p in procs]
    mid = clients[0].remember("after the refusals", {"topic": "ok"})
    wait_for(lambda: converged_vectors(clients) and clients[1].get(mid) is not None,
             "the next write to reach the peer")
    own = procs[0].ready["node_id"]
    assert clients[1].status().version_vector[own] == 1  # nothing refused took a seq


def _old_log_with_an_unreplicable_event(data_dir: Path) -> tuple[str, str]:
    """A log as an older version wrote it: a TEAM memory whose 200-byte key the mesh
    refuses, between two valid ones."""
    lax = FederationConfig(max_metadata_key_bytes=1024)
    node = Node(NodeConfig(data_dir=data_dir, embedder="test-hash", sync="normal"),
                embedder=HashEmbedder(), federation=lax)
    try:
        node.remember([RememberInput("first, fine")])
        bad = node.remember([RememberInput("second", metadata={"k" * 200: "v"})])[0].id
        node.remember([RememberInput("third, fine")])
    finally:
        node.close()
    with sqlite3.connect(data_dir / LOG_FILE) as db:  # older versions kept no such mark
        db.execute("DELETE FROM meta WHERE key = 'admission'")
    return node.node_id, bad


def test_an_old_unreplicable_own_event_is_dropped_once_and_peers_go_past_it(
        tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    own, bad = _old_log_with_an_unreplicable_event(tmp_path / "old")
    peer = NodeProcess(tmp_path / "peer", mesh_args()).start()
    procs.append(peer)
    old = NodeProcess(tmp_path / "old", mesh_args("--peer", peer.gossip)).start()
    procs.append(old)
    clients = [old.client(), peer.client()]
    clients[0].remember_batch([NewMemory(f"later {i}") for i in range(5)])
    wait_for(lambda: clients[1].status().version_vector.get(own) == 8,
             "the peer to pass the dropped seq and take the later writes")
    assert clients[1].status().memories["replicated"] == 7
    assert clients[0].get(bad).text == "second"  # still here, on its node only
    old.terminate()
    assert "could never replicate" in old.stderr()
