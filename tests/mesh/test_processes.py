"""Real node processes with their sidecars on loopback: convergence, forget, joins, crashes."""

from __future__ import annotations

import subprocess
from pathlib import Path

from memnode import Client, NewMemory, NotFound

from helpers import NodeProcess, converged_vectors, memnode_cmd, mesh_args, start_mesh, wait_for


def test_three_nodes_converge_and_forget_propagates(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    procs += start_mesh(tmp_path, 3)
    clients = [p.client() for p in procs]
    ids = [c.remember(f"fact {i} from node {n}", {"n": n}, privacy="team")
           for n, c in enumerate(clients) for i in range(5)]
    clients[0].remember("a private note", privacy="private")
    wait_for(lambda: [c.status().memories["replicated"] for c in clients] == [10, 10, 10]
             and converged_vectors(clients), "every node to hold the 10 memories of the others")
    # a mesh recall on node 2 finds node 0's memory with no text, and filters by hash
    hits = clients[2].recall("fact 3 from node 0", scope="mesh", where={"n": 0})
    assert hits and all(h.origin == procs[0].ready["node_id"] for h in hits)
    assert all(h.text == "" and not h.local for h in hits)
    forgotten = ids[0]
    clients[0].forget(forgotten)
    wait_for(lambda: all(_missing(c, forgotten) for c in clients[1:]),
             "the forget to reach every replica")
    assert [c.status().memories["replicated"] for c in clients] == [10, 9, 9]
    for c in clients:
        c.close()


def _missing(client: Client, memory_id: str) -> bool:
    try:
        client.get(memory_id)
    except NotFound:
        return True
    return False


def test_late_joiner_catches_up(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    procs += start_mesh(tmp_path, 2)
    first = procs[0].client()
    first.remember_batch([NewMemory(f"early memory {i}") for i in range(300)])
    procs[1].client().remember("second node's memory")
    late = NodeProcess(tmp_path / "late", mesh_args("--peer", procs[1].gossip)).start()
    procs.append(late)
    client = late.client()
    wait_for(lambda: client.status().memories["replicated"] == 301,
             "the late joiner to receive all 301 memories", 60)
    assert converged_vectors([first, procs[1].client(), client])


def test_killed_node_restarts_and_mesh_converges_without_loss(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    procs += start_mesh(tmp_path, 3)
    clients = [p.client() for p in procs]
    clients[0].remember_batch([NewMemory(f"before {i}") for i in range(200)])
    # kill node 1 while node 0's batch streams to it, write more on both survivors
    procs[1].kill()
    clients[0].remember_batch([NewMemory(f"during {i}") for i in range(100)])
    clients[2].remember_batch([NewMemory(f"also during {i}") for i in range(50)])
    restarted = NodeProcess(procs[1].data_dir, mesh_args("--peer", procs[0].gossip)).start()
    procs.append(restarted)
    assert restarted.ready["node_id"] == procs[1].ready["node_id"]
    clients[1] = restarted.client()
    wait_for(lambda: [c.status().memories["replicated"] for c in clients] == [50, 350, 300]
             and converged_vectors(clients), "the restarted node to catch up", 60)
    ids = [m.id for m in clients[1].list(scope="mesh")]
    assert len(ids) == len(set(ids)) == 350


def test_external_sidecar_shape(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    """A node with its sidecar in another process (the Kubernetes shape) joins a mesh of
    embedded nodes; killing and restarting only the sidecar loses nothing."""
    procs += start_mesh(tmp_path, 1)
    node = NodeProcess(tmp_path / "ext", ["--insecure", "--sidecar", "external", "--replica-listen",
                                     "127.0.0.1:0"]).start()
    procs.append(node)
    assert node.ready["gossip"] == "" and node.ready["replica_listen"]

    def sidecar() -> subprocess.Popen[str]:
        return subprocess.Popen(
            memnode_cmd("--log-level", "WARNING", "sidecar", "--node",
                        node.ready["replica_listen"], *mesh_args("--peer", procs[0].gossip)),
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)

    side = sidecar()
    try:
        assert side.stdout is not None
        wait_for(side.stdout.readline, "the sidecar's ready line", 60)
        a, b = procs[0].client(), node.client()
        a.remember("written on the embedded node")
        b.remember("written behind the external sidecar")
        wait_for(lambda: [a.status().memories["replicated"], b.status().memories["replicated"]]
                 == [1, 1], "both to replicate")
        side.kill()
        side.wait(10)
        a.remember_batch([NewMemory(f"while the sidecar was down {i}") for i in range(20)])
        side = sidecar()
        wait_for(side.stdout.readline, "the restarted sidecar's ready line", 60)
        wait_for(lambda: b.status().memories["replicated"] == 21, "catch-up after restart", 60)
        # the node shows its sidecar's peer view as of the sidecar's last tick: poll
        wait_for(lambda: [p["state"] for p in b.status().peers] == ["alive"],
                 "the node behind the restarted sidecar to list its peer alive")
    finally:
        side.kill()
        side.wait(10)


def test_wiped_node_rejoins_as_a_new_node_and_gets_everything(tmp_path: Path,
                                                              procs: list) -> None:  # type: ignore[type-arg]
    import shutil

    procs += start_mesh(tmp_path, 2)
    a, b = procs[0].client(), procs[1].client()
    a.remember_batch([NewMemory(f"kept by a {i}") for i in range(40)])
    b.remember_batch([NewMemory(f"kept by b {i}") for i in range(10)])
    wait_for(lambda: [a.status().memories["replicated"], b.status().memories["replicated"]]
             == [10, 40], "a and b to replicate each other")
    old_id = procs[1].ready["node_id"]
    procs[1].kill()
    shutil.rmtree(procs[1].data_dir)
    reborn = NodeProcess(procs[1].data_dir, mesh_args("--peer", procs[0].gossip)).start()
    procs.append(reborn)
    assert reborn.ready["node_id"] != old_id
    c = reborn.client()
    # b's memories died with its disk, but a holds replicas of them: the mesh keeps them
    wait_for(lambda: c.status().memories["replicated"] == 50,
             "the wiped node to receive the whole mesh state", 60)
    assert old_id in c.status().version_vector


def test_metrics_endpoint_exports_node_and_federation_metrics(tmp_path: Path,
                                                              procs: list) -> None:  # type: ignore[type-arg]
    import urllib.request

    procs += start_mesh(tmp_path, 2, "--metrics-listen", "127.0.0.1:0")
    a, b = procs[0].client(), procs[1].client()
    a.remember("measured")
    wait_for(lambda: b.status().memories["replicated"] == 1, "replication")

    def scrape() -> str:
        url = f"http://127.0.0.1:{procs[1].ready['metrics_port']}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return str(response.read().decode())

    def exchanged() -> str | None:
        text = scrape()
        done = ("exchange_duration_seconds_count" in text
                and "exchange_duration_seconds_count 0.0" not in text
                and 'memnode_federation_peers{state="alive"} 1.0' in text)
        return text if done else None

    text = wait_for(exchanged, "a completed exchange in the metrics")
    for name in ("memnode_federation_events_applied_total 1.0",
                 'memnode_memories{collection="replicas"} 1.0',
                 "memnode_federation_bytes_received_total",
                 "memnode_federation_peer_lag_events{peer="):
        assert name in text, name
    # where the receiver's CPU went, by stage (federation.io.cpu)
    from prometheus_client.parser import text_string_to_metric_families

    stages = {(s.name, s.labels["stage"]): s.value
              for f in text_string_to_metric_families(text) for s in f.samples
              if "stage" in s.labels}
    for stage in ("decode", "core", "encode"):
        assert stages.get(("memnode_federation_stage_cpu_seconds_total", stage), 0) > 0, stage
    assert stages.get(("memnode_stage_cpu_seconds_total", "persist"), 0) > 0, stages


def test_an_external_sidecar_node_without_the_metadata_key_refuses_to_start(
        tmp_path: Path) -> None:
    """Else it would hash TEAM metadata with the public development key, unnoticed."""
    env_free = {k: v for k, v in __import__("os").environ.items()
                if k != "MEMNODE_METADATA_KEY"}
    done = subprocess.run(memnode_cmd("serve", "--data-dir", str(tmp_path / "d"),
                                      "--embedder", "test-hash", "--sidecar", "external"),
                          capture_output=True, text=True, timeout=60, env=env_free)
    assert done.returncode == 2, done
    assert "metadata key" in done.stderr and "--federation" in done.stderr
