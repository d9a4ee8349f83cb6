"""The disaster-recovery drill with real processes: back a node up, write more, lose
it, restore the backup into its data dir, restart it. It takes back its later events
from its peer, learns its own seq, never reuses one, and reports the lost texts."""

from __future__ import annotations

import re
import urllib.request
from pathlib import Path

from memnode import NewMemory

from helpers import NodeProcess, converged_vectors, mesh_args, run_cli, wait_for


def _metric(proc: NodeProcess, name: str, labels: str = "") -> float:
    url = f"http://127.0.0.1:{proc.ready['metrics_port']}/metrics"
    with urllib.request.urlopen(url, timeout=10) as response:
        text = response.read().decode()
    pattern = re.escape(name) + (re.escape("{" + labels + "}") if labels else "") + r" (\S+)"
    found = re.search(r"^" + pattern + "$", text, re.M)
    return float(found.group(1)) if found else 0.0


def test_restored_node_learns_its_seq_and_loses_only_later_texts(
        tmp_path: Path, procs: list) -> None:  # type: ignore[type-arg]
    metrics = ("--metrics-listen", "127.0.0.1:0")
    a = NodeProcess(tmp_path / "a", mesh_args(*metrics)).start()
    b = NodeProcess(tmp_path / "b", mesh_args("--peer", a.gossip, *metrics)).start()
    procs += [a, b]
    ca, cb = a.client(), b.client()
    ca.remember_batch([NewMemory(f"before the backup {i}") for i in range(20)])
    wait_for(lambda: cb.status().memories["replicated"] == 20, "B to hold A's first 20")

    done = run_cli("backup", str(tmp_path / "bk"), "--addr", a.addr, "--quiet")
    assert done.returncode == 0, done.stderr
    later = ca.remember_batch([NewMemory(f"after the backup {i}") for i in range(10)])
    wait_for(lambda: cb.status().memories["replicated"] == 30 and converged_vectors([ca, cb]),
             "B to hold all 30 of A's memories")
    head = ca.status().version_vector[a.ready["node_id"]]
    ca.close()
    a.kill()

    done = run_cli("restore", str(tmp_path / "bk"), "--data-dir", str(a.data_dir), "--force",
                   "--quiet")
    assert done.returncode == 0, done.stderr
    a2 = NodeProcess(a.data_dir, mesh_args("--peer", b.gossip, *metrics)).start()
    procs.append(a2)
    ca = a2.client()
    wait_for(lambda: ca.status().problems == [] and converged_vectors([ca, cb]),
             "the restored node to learn its own seq from B")
    status = ca.status()
    assert status.version_vector[a2.ready["node_id"]] == head
    assert status.lost_texts == 10
    assert status.memories["local"] == 30
    lost = ca.get(later[0])
    assert lost.text == "" and lost.local

    newer = ca.remember_batch([NewMemory(f"after the restore {i}") for i in range(5)])
    wait_for(lambda: cb.status().memories["replicated"] == 35 and converged_vectors([ca, cb]),
             "B to accept the restored node's new writes (no seq reused)")
    assert ca.status().version_vector[a2.ready["node_id"]] == head + 5
    assert cb.get(newer[-1]).origin == a2.ready["node_id"]
    own_origin = 'reason="own_origin"'
    assert _metric(b, "memnode_federation_events_rejected_total", own_origin) == 0
    assert _metric(a2, "memnode_federation_events_rejected_total", own_origin) == 0
    assert _metric(a2, "memnode_restore_lost_texts_total") == 10
    ca.close()
    cb.close()
