"""Test helpers: in-process nodes behind real servers, node processes, polling with a deadline."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import pytest

from federation.io.sidecar import Sidecar
from federation.io.sidecar_config import SidecarConfig
from memnode.api.server import NodeServer, build_security, with_federation_key
from memnode.client import Client
from memnode.config import NodeConfig
from memnode.node.node import Node

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")


class FakeClock:
    def __init__(self, start_ms: int = 1_700_000_000_000) -> None:
        self.now_ms = start_ms

    def __call__(self) -> int:
        return self.now_ms

    def advance(self, seconds: float) -> None:
        self.now_ms += int(seconds * 1000)


@dataclass
class NodeHandle:
    node: Node
    server: NodeServer
    client: Client
    data_dir: Path
    sidecar: Sidecar | None = None

    @property
    def addr(self) -> str:
        return self.server.address

    def stop(self) -> None:
        if self.sidecar is not None:
            self.sidecar.stop()
        self.client.close()
        self.server.stop(grace=1.0)


def start_node(data_dir: Path, embedder: Any, clock_ms: Callable[[], int] | None = None,
               peers: list[str] | None = None, federation: Path | None = None,
               **config: Any) -> NodeHandle:
    """An in-process node on port 0; with ``peers`` (possibly empty) it also runs an
    embedded sidecar on a free loopback port: mutual TLS with the credentials in
    ``federation``, else plaintext. Chroma runs in the test's process unless
    ``chroma="process"`` (a child per node made tests/node 2.7x slower; every
    ``memnode serve`` test runs one)."""
    config.setdefault("chroma", "inline")
    cfg = NodeConfig(data_dir=data_dir, listen="127.0.0.1:0", embedder="test-hash",
                     sync="normal", **config)
    if federation is not None:
        cfg = with_federation_key(cfg, SidecarConfig(federation=federation))
    kwargs: dict[str, Any] = {"embedder": embedder}
    if clock_ms is not None:
        kwargs["clock_ms"] = clock_ms
    node = Node(cfg, **kwargs)
    server = NodeServer(node)
    server.start()
    sidecar = None
    if peers is not None:
        sidecar_config = SidecarConfig(gossip_listen="127.0.0.1:0", peer=peers, preset="local",
                                       federation=federation, insecure=federation is None)
        security, deny = build_security(sidecar_config)
        assert security is not None
        sidecar = Sidecar(server.replication, sidecar_config, security, deny=deny)
        sidecar.start()
        server.attach_sidecar(sidecar)
    return NodeHandle(node, server, Client(server.address, timeout=10), data_dir, sidecar)


def wait_for(condition: Callable[[], T], what: str, timeout: float = 60.0,
             interval: float = 0.02) -> T:
    """Poll ``condition`` until it returns a truthy value; fail saying what was awaited."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            value = condition()
            if value:
                return value
        except Exception as exc:  # the condition may fail until the system is up
            last_error = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what} (last error: "
                         f"{last_error!r})")


def child_pids(pid: int) -> list[int]:
    """The child processes of ``pid`` (its Chroma process, for a node), from /proc."""
    kids: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            kids += [int(c) for c in (task / "children").read_text().split()]
        except OSError:  # a thread that ended meanwhile
            continue
    return kids


def memnode_cmd(*args: str) -> list[str]:
    return [sys.executable, "-m", "memnode.cli.main", *args]


def run_cli(*args: str, addr: str | None = None, input: str | None = None,
            timeout: float = 60) -> subprocess.CompletedProcess[str]:
    env = {**os.environ}
    if addr:
        env["MEMNODE_ADDR"] = addr
    return subprocess.run(memnode_cmd(*args), capture_output=True, text=True, env=env,
                          input=input, timeout=timeout)


STARTED: list[NodeProcess] = []
"""Every node process started; the test fixture kills what a test leaves running."""


@dataclass
class NodeProcess:
    """``memnode serve`` in its own process (its own process group)."""

    data_dir: Path
    extra: list[str] = field(default_factory=list)
    proc: subprocess.Popen[str] | None = None
    ready: dict[str, Any] = field(default_factory=dict)

    def start(self, timeout: float = 60) -> NodeProcess:
        cmd = memnode_cmd("--log-level", "WARNING", "serve", "--data-dir", str(self.data_dir),
                          "--listen", "127.0.0.1:0", "--embedder", "test-hash",
                          *self.extra)
        self.data_dir.parent.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("a") as log:  # a file, not a pipe: a chatty node never blocks
            self.proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log,
                                         text=True, start_new_session=True)
        STARTED.append(self)
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()  # blocks until the ready line or the exit
        if not line:
            self.proc.wait(timeout)
            raise AssertionError(f"memnode serve exited with {self.proc.returncode} before "
                                 f"it was ready:\n{self.stderr()[-3000:]}")
        self.ready = json.loads(line)
        return self

    @property
    def addr(self) -> str:
        return str(self.ready["listen"])

    @property
    def gossip(self) -> str:
        return str(self.ready["gossip"])

    def client(self) -> Client:
        return Client(self.addr, timeout=30)

    def kill(self) -> None:
        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def terminate(self, timeout: float = 30) -> int:
        assert self.proc is not None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.wait(timeout)

    @property
    def log_path(self) -> Path:
        """The node's stderr, every start appended (shown with a failed test's report)."""
        return self.data_dir.with_name(self.data_dir.name + ".log")

    def stderr(self) -> str:
        return self.log_path.read_text() if self.log_path.exists() else ""


def start_mesh(tmp: Path, n: int, *extra: str) -> list[NodeProcess]:
    """``n`` node processes with embedded sidecars on loopback, each pointed at the first."""
    procs: list[NodeProcess] = []
    for i in range(n):
        peers = ["--peer", procs[0].gossip] if procs else []
        procs.append(NodeProcess(tmp / f"node{i}", mesh_args(*peers, *extra)).start())
    return procs


def mesh_args(*extra: str) -> list[str]:
    return ["--insecure", "--gossip-listen", "127.0.0.1:0", "--preset", "local", *extra]


def converged_vectors(clients: list[Client]) -> bool:
    """All nodes report the same version vector."""
    vectors = [c.status().version_vector for c in clients]
    return all(v == vectors[0] for v in vectors)


@contextlib.contextmanager
def tmpfs(mount: Path, size: str) -> Iterator[Path]:
    """A tmpfs of ``size`` (mount's -o size=) on ``mount`` for the block; skips the test
    where mounting is not allowed."""
    mount.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(mount)],
                          capture_output=True, text=True)
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    try:
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], capture_output=True)
