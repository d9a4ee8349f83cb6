"""Full nodes finding each other through a Discovery adapter (the real resolver), not
``--peer``: the handshake admits the peer, and status says how it was found."""

from __future__ import annotations

from pathlib import Path

from helpers import NodeProcess, converged_vectors, mesh_args, run_cli, wait_for


def test_a_node_found_by_dns_joins_and_converges(tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    first = NodeProcess(tmp_path / "a", mesh_args()).start()
    procs.append(first)
    port = first.gossip.rpartition(":")[2]
    # localhost resolves through /etc/hosts: the system resolver, as in a pod
    second = NodeProcess(tmp_path / "b", mesh_args("--discover", f"dns:localhost:{port}")
                         ).start()
    procs.append(second)
    clients = [first.client(), second.client()]
    mid = clients[0].remember("found through DNS")
    wait_for(lambda: converged_vectors(clients) and clients[1].get(mid) is not None,
             "the node found by DNS to receive the first node's memory")
    # status shows the sidecar's view as of its last tick: poll for it, then check it

    def found_by() -> list[str]:
        return [p["found_by"] for p in clients[1].status().peers
                if p["node_id"] == first.ready["node_id"]]
    wait_for(lambda: found_by() != [], "the second node's status to list the first")
    assert found_by() == ["dns:localhost"]
    # the other side learnt of it by its Identify / gossip, not by discovery
    wait_for(lambda: clients[0].status().peers != [], "the first node's status to list the second")
    assert [p["found_by"] for p in clients[0].status().peers] == [""]


def test_a_bad_discover_value_is_a_usage_error(tmp_path: Path) -> None:
    done = run_cli("serve", "--data-dir", str(tmp_path / "x"), "--embedder", "test-hash",
                   "--insecure", "--discover", "mdns-please")
    assert done.returncode == 2, done
    assert "mdns-please" in done.stderr
