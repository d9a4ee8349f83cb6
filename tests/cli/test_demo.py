"""`make run`'s demo runs end to end (with the test embedder, so it needs no model load)."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from pathlib import Path


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
