"""Signals stop a node however they arrive. Regression: a second signal landing while
the main thread was leaving ``Event.wait`` made the handler's ``Event.set`` wait on the
event's own lock forever, and the process ignored every later signal (the demo could
not be stopped). The handler now only writes to a self-pipe (memnode.api.signals)."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest

from helpers import NodeProcess, mesh_args

ROUNDS = 4


@pytest.mark.parametrize(("second", "sidecar"), [(signal.SIGTERM, False), (signal.SIGINT, True)])
def test_signals_in_quick_succession_stop_the_node(tmp_path: Path, procs: list,  # type: ignore[type-arg]
                                                   second: signal.Signals, sidecar: bool) -> None:
    """With the embedded sidecar the process has dozens of threads: a signal seldom
    reaches the main one."""
    for i in range(ROUNDS):
        node = NodeProcess(tmp_path / "data",
                           mesh_args() if sidecar else ["--sidecar", "off"]).start()
        procs.append(node)
        assert node.proc is not None
        for _ in range(3):
            node.proc.send_signal(signal.SIGTERM)
            node.proc.send_signal(second)
        assert node.proc.wait(60) == 0, f"round {i}: {node.stderr()[-2000:]}"
