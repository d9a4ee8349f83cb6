"""Full nodes that find each other by zeroconf only: ``memnode serve`` on three hosts
in network namespaces on one bridge (../../shared/NETLAB.md), no ``--peer``, each
announcing and browsing on its own address. The test process reaches each node's API
through the bridge's ``.254`` address.

Checks: a memory written on each node reaches the other two (equal version vectors,
two replicas each), every node lists at least one peer it found itself by zeroconf
(and no other way); a fourth host started later finds the mesh the same way and
catches up on the three memories."""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from memnode import Client

from disclab import make_lab
from helpers import converged_vectors, wait_for
from netlab import Host, Netlab, read_until

pytestmark = pytest.mark.slow

GOSSIP_PORT = 7422


@pytest.fixture
def lab() -> Iterator[Netlab]:
    yield from make_lab(4)


def _serve(lab: Netlab, host: Host, data_dir: Path, log: Path) -> dict[str, Any]:
    """``memnode serve`` on ``host``, discovering by zeroconf on its address; its ready
    line."""
    cmd = [sys.executable, "-m", "memnode.cli.main", "--log-level", "WARNING", "serve",
           "--data-dir", str(data_dir), "--listen", f"{host.ip}:0",
           "--embedder", "test-hash", "--insecure", "--preset", "local",
           "--client-auth", "none", "--allow-unauthenticated",  # the test reaches it on the bridge
           "--gossip-listen", f"{host.ip}:{GOSSIP_PORT}",
           "--discover", f"zeroconf:{host.ip}"]
    with log.open("wb") as err:
        proc = lab.spawn(cmd, host.netns, stderr=err)
    line = read_until(proc, "\n", 60)
    if not line.endswith("\n"):
        proc.poll()
        raise AssertionError(f"memnode serve on host {host.index} not ready (exit "
                             f"{proc.returncode}): {line!r}\n{log.read_text()[-3000:]}")
    ready = json.loads(line.splitlines()[0])
    assert ready["listen"].startswith(f"{host.ip}:"), ready
    assert ready["gossip"] == f"{host.ip}:{GOSSIP_PORT}", ready
    return ready


def _replicated(clients: list[Client], n: int) -> bool:
    return all(c.status().memories["replicated"] == n for c in clients)


def _found_by_zeroconf(client: Client) -> bool:
    """At least one peer found by zeroconf, and none found any other way (an empty
    ``found_by`` is a peer learnt from gossip)."""
    ways = [p["found_by"] for p in client.status().peers]
    return "zeroconf" in ways and all(w in ("zeroconf", "") for w in ways)


def test_nodes_find_each_other_by_zeroconf_replicate_and_a_late_one_catches_up(
        lab: Netlab, tmp_path: Path) -> None:
    t0 = time.monotonic()
    h = lab.hosts
    ready = [_serve(lab, h[i], tmp_path / f"node{i + 1}", tmp_path / f"node{i + 1}.log")
             for i in range(3)]
    clients = [Client(r["listen"], timeout=30) for r in ready]
    try:
        for i, c in enumerate(clients):
            c.remember(f"memory written on node {i + 1}")
        wait_for(lambda: _replicated(clients, 2) and converged_vectors(clients),
                 "each node to hold the other two memories, vectors equal", 45, 0.2)
        vector = clients[0].status().version_vector
        assert set(vector) == {r["node_id"] for r in ready}, vector
        for i, c in enumerate(clients):
            wait_for(lambda c=c: _found_by_zeroconf(c),
                     f"node {i + 1} to list a peer found by zeroconf", 15, 0.2)
            assert ready[i]["node_id"] not in {p["node_id"] for p in c.status().peers}

        late = _serve(lab, h[3], tmp_path / "node4", tmp_path / "node4.log")
        clients.append(Client(late["listen"], timeout=30))
        wait_for(lambda: _replicated(clients[3:], 3) and converged_vectors(clients),
                 "node 4 to catch up on the three memories", 30, 0.2)
        wait_for(lambda: _found_by_zeroconf(clients[3]),
                 "node 4 to list a peer found by zeroconf", 15, 0.2)
        assert clients[3].status().memories["local"] == 0
        print(f"mesh of 3 converged and node 4 caught up in {time.monotonic() - t0:.1f}s")
    finally:
        for c in clients:
            c.close()
