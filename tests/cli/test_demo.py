"""`make run`'s demo runs end to end (with the test embedder, so it needs no model load)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path

from helpers import NodeProcess


def test_demo_mesh_converges_recalls_across_nodes_and_stops(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "memnode.cli.demo", "--data-dir", str(tmp_path),
           "--embedder", "test-hash", "--exit-after-demo"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count(" remembered ") == 5
    assert "converged: every node holds all 5 memories" in first.stdout
    assert "(text stays on its origin node)" in first.stdout  # a hit from another node
    assert first.stdout.count("peers [") == 3 and first.stdout.count(":alive") == 6
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and " remembered " not in again.stdout
    counts = re.findall(r"node\d: (\d+) own, (\d+) replicas", first.stdout)
    assert len(counts) == 3 and all(int(a) + int(b) == 5 for a, b in counts), counts


def test_the_running_demo_stops_at_ctrl_c(tmp_path: Path) -> None:
    """Regression: the demo (3 nodes in one process, many threads) sat in Event.wait while
    SIGINT reached another thread, so Ctrl-C never stopped it (memnode.api.signals)."""
    proc = subprocess.Popen([sys.executable, "-m", "memnode.cli.demo", "--data-dir",
                             str(tmp_path), "--embedder", "test-hash"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            start_new_session=True)
    try:
        assert proc.stdout is not None
        lines: list[str] = []
        for line in proc.stdout:  # bounded: the demo prints a few dozen lines, then waits
            lines.append(line)
            if "Ctrl-C stops the mesh" in line:
                break
        assert any("Ctrl-C stops the mesh" in x for x in lines), "".join(lines)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err[-2000:]
        assert "stopping..." in out
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(10)


def test_a_demo_dir_kept_in_clear_is_moved_aside_and_the_demo_starts_afresh(
        tmp_path: Path) -> None:
    """A .memnode-demo/ from before encryption at rest: nodes refuse a store in clear,
    so the demo moves it aside (never deletes it) instead of failing."""
    demo = tmp_path / "demo"
    old = NodeProcess(demo / "node1", extra=["--no-encrypt-at-rest"]).start()
    with old.client() as c:
        c.remember("a note of an older demo")
    assert old.terminate() == 0
    cmd = [sys.executable, "-m", "memnode.cli.demo", "--data-dir", str(demo),
           "--embedder", "test-hash", "--exit-after-demo"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "starting afresh" in done.stdout and done.stdout.count(" remembered ") == 5
    aside = [p for p in tmp_path.iterdir() if p.name.startswith("demo.before-encryption-")]
    assert len(aside) == 1 and (aside[0] / "node1" / "log.db").exists()
