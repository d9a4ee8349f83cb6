"""`make run`'s demo runs end to end (with the test embedder, so it needs no model load)."""

from __future__ import annotations

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
