"""`make run`'s demo runs end to end (with the test embedder, so it needs no model load)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path


def test_demo_seeds_recalls_and_stops(tmp_path: Path) -> None:
    cmd = [sys.executable, "-m", "memnode.demo", "--data-dir", str(tmp_path), "--port", "0",
           "--embedder", "test-hash", "--exit-after-demo"]
    first = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert first.returncode == 0, first.stderr
    assert first.stdout.count("remembered ") == 4
    assert "recall 'when do database backups run?'" in first.stdout
    assert "status: 4 memories" in first.stdout
    again = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert again.returncode == 0 and "remembered " not in again.stdout
    assert "status: 4 memories" in again.stdout
