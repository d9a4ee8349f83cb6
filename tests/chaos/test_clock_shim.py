"""The chaos drill's clock driver really moves a running node's wall clock (and only
the wall clock): a memory remembered after the step carries the shifted time."""

from __future__ import annotations

import os
import time
from pathlib import Path

from helpers import NodeProcess, wait_for

ROOT = Path(__file__).resolve().parents[2]
SHIM = ROOT / "bench" / "chaos" / "clock"


def test_a_step_of_the_clock_file_moves_a_running_nodes_wall_clock(
        tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    clock = tmp_path / "clock"
    clock.write_text("0\n")
    monkeypatch.setenv("CHAOS_CLOCK_FILE", str(clock))
    monkeypatch.setenv("PYTHONPATH", os.pathsep.join(
        [str(SHIM), *filter(None, [os.environ.get("PYTHONPATH")])]))
    node = NodeProcess(tmp_path / "node").start()
    with node.client() as c:
        before = c.get(c.remember("before the step")).created_at_ms
        assert abs(before - time.time() * 1000) < 60_000
        clock.write_text("7200\n")  # two hours ahead
        def shifted() -> bool:
            got = c.get(c.remember("after the step")).created_at_ms
            return got - time.time() * 1000 > 7_000_000
        wait_for(shifted, "the node's wall clock to step ahead")
        assert c.status().uptime_seconds < 600  # the monotonic clock did not move
    assert node.terminate() == 0


def test_sigusr2_dumps_every_threads_stack_to_the_log(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """What the drill reads of a process that prints no ready line in time."""
    import signal
    import subprocess
    import sys

    clock = tmp_path / "clock"
    clock.write_text("0\n")
    env = {**os.environ, "CHAOS_CLOCK_FILE": str(clock), "PYTHONPATH": os.pathsep.join(
        [str(SHIM), *filter(None, [os.environ.get("PYTHONPATH")])])}
    log = tmp_path / "stderr"
    code = ("import sys, threading\n"
            "def stuck_here(): threading.Event().wait()\n"
            "threading.Thread(target=stuck_here, daemon=True).start()\n"
            "print('up', flush=True); sys.stdin.read()\n")
    with log.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-c", code], env=env, stdin=subprocess.PIPE,
                                stdout=subprocess.PIPE, stderr=err, text=True)
    try:
        assert proc.stdout is not None and proc.stdout.readline() == "up\n"
        proc.send_signal(signal.SIGUSR2)
        wait_for(lambda: "stuck_here" in log.read_text(), "the stacks in the log")
        assert proc.poll() is None, "the dump does not stop the process"
    finally:
        proc.kill()
        proc.wait(10)


def test_grpc_keeps_the_real_clock_as_its_c_core_does(tmp_path: Path) -> None:
    """gRPC's Server.start polls its C core with deadline=time.time(): a shifted clock
    made a node restarted on a host stepped 5 min ahead hang there for 5 min."""
    import subprocess
    import sys

    clock = tmp_path / "clock"
    clock.write_text("7200\n")
    env = {**os.environ, "CHAOS_CLOCK_FILE": str(clock), "PYTHONPATH": os.pathsep.join(
        [str(SHIM), *filter(None, [os.environ.get("PYTHONPATH")])])}
    code = ("import time, grpc\n"
            "from concurrent import futures\n"
            "ours = time.time() - time.monotonic()\n"
            "theirs = {}\n"
            "exec('import time\\nt = time.time() - time.monotonic()', "
            "{'__name__': 'grpc._probe'}, theirs)\n"
            "server = grpc.server(futures.ThreadPoolExecutor(1))\n"
            "server.add_insecure_port('127.0.0.1:0')\n"
            "started = time.monotonic(); server.start()\n"
            "print(round(ours - theirs['t']), round(time.monotonic() - started, 1))\n"
            "server.stop(0)\n")
    done = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    shift, start_seconds = done.stdout.split()
    assert int(shift) == 7200  # our code sees the step, gRPC's does not
    assert float(start_seconds) < 10  # not the 2 h a shifted deadline would wait
