"""The drill's hosts: network namespaces on a bridge (tests/netns/netlab.py), each one a
pod of two processes, ``memnode serve --sidecar external`` and ``memnode sidecar``,
sharing the namespace's loopback (the sidecar reaches the node's Replica API on
127.0.0.1) and speaking mutual TLS to the other pods with credentials from a fresh
federation (``memnode federation init`` / ``issue``, as :mod:`federation.io.pki`).

A pod keeps its data directory across restarts, so a killed process comes back with
its identity, log and store. Clients reach each node on its host address with no
token (``--client-auth none --allow-unauthenticated``: a private bridge address).
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import signal
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench._common import ROOT, child_env, memnode_cmd, tail
from bench._mesh import create_netlab

API_PORT, REPLICA_PORT, GOSSIP_PORT, METRICS_PORT = 7420, 7421, 7422, 7423
CLOCK_SHIM = Path(__file__).resolve().parent / "clock"  # sitecustomize: wall-clock jumps
START_TIMEOUT = 120.0  # a node imports chromadb: slow on a busy 2-core machine
PROCESSES = ("node", "sidecar")


class Proc:
    """One process of a pod in its own process group, its JSON ready line awaited."""

    def __init__(self, name: str, cmd: list[str], log: Path, clock: Path) -> None:
        self.name, self.cmd, self.log = name, cmd, log
        self.clock = clock  # its wall-clock offset file (bench/chaos/clock)
        self.popen: subprocess.Popen[str] | None = None
        self.ready: dict[str, Any] = {}
        self.starts = 0
        self._lines: queue.Queue[str | None] = queue.Queue()

    def spawn(self) -> None:
        self.starts += 1
        self._lines = queue.Queue()
        with self.log.open("a") as err:
            err.write(f"\n== start {self.starts} at {time.time():.3f}\n")
            err.flush()
            env = child_env(CHAOS_CLOCK_FILE=str(self.clock))
            env["PYTHONPATH"] = os.pathsep.join([str(CLOCK_SHIM), env["PYTHONPATH"]])
            self.popen = subprocess.Popen(self.cmd, stdout=subprocess.PIPE, stderr=err,
                                          text=True, env=env, cwd=ROOT,
                                          start_new_session=True)
        lines, out = self._lines, self.popen.stdout
        threading.Thread(target=_pump, args=(out, lines), daemon=True,
                         name=f"{self.name}-stdout").start()

    def wait_ready(self, timeout: float = START_TIMEOUT) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = self._lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise TimeoutError(f"{self.name} not ready after {timeout:.0f}s; its "
                                   f"threads and log tail:\n{self._stacks()}") from None
            if line is None:
                code = self.popen.wait(10) if self.popen else None
                raise RuntimeError(f"{self.name} exited {code} before ready; log tail:\n"
                                   f"{tail(self.log)}")
            with contextlib.suppress(json.JSONDecodeError):
                event = json.loads(line)
                if isinstance(event, dict):
                    self.ready = event
                    return event

    def _stacks(self, wait: float = 3.0) -> str:
        """The log's tail after SIGUSR2 (the clock shim's faulthandler dumps every
        thread's stack there), once the dump stopped growing or ``wait`` passed."""
        pid = self.pid
        if pid is not None:
            size = self.log.stat().st_size
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, signal.SIGUSR2)
            deadline = time.monotonic() + wait
            while time.monotonic() < deadline and self.log.stat().st_size == size:
                time.sleep(0.05)
            time.sleep(0.2)  # the rest of the dump
        return tail(self.log, 12000)

    @property
    def pid(self) -> int | None:
        return self.popen.pid if self.popen is not None and self.popen.poll() is None else None

    def kill9(self) -> None:
        """SIGKILL to the process group (a hard crash), then reap it."""
        if self.popen is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.popen.pid, signal.SIGKILL)
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.popen.wait(15)

    def stop(self, timeout: float = 20.0) -> None:
        """SIGTERM (graceful), SIGKILL past ``timeout``."""
        if self.popen is None or self.popen.poll() is not None:
            return
        self.popen.send_signal(signal.SIGTERM)
        try:
            self.popen.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill9()


def _pump(stream: Any, lines: queue.Queue[str | None]) -> None:
    for line in stream:
        lines.put(line)
    lines.put(None)


@dataclass
class Pod:
    """One host: its namespace, data dir, credentials and its two processes."""

    index: int
    host: Any  # netlab.Host
    data: Path
    creds: Path
    logs: Path
    peers: list[str]
    disk: Path | None = None  # the small tmpfs holding ``data``, if any
    procs: dict[str, Proc] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    @property
    def name(self) -> str:
        return f"host{self.index}"

    @property
    def addr(self) -> str:
        return f"{self.host.ip}:{API_PORT}"

    @property
    def node_id(self) -> str:
        return str(self.procs["node"].ready.get("node_id", ""))

    def build(self) -> None:
        ns = ["ip", "netns", "exec", self.host.netns]
        base = [*ns, *memnode_cmd(), "--log-level", "WARNING"]
        node = [*base, "serve", "--data-dir", str(self.data), "--listen", self.addr,
                "--embedder", "test-hash", "--preset", "local", "--sidecar", "external",
                "--replica-listen", f"127.0.0.1:{REPLICA_PORT}",
                "--federation", str(self.creds), "--client-auth", "none",
                "--allow-unauthenticated", "--shutdown-grace-seconds", "2"]
        sidecar = [*base, "sidecar", "--node", f"127.0.0.1:{REPLICA_PORT}",
                   "--gossip-listen", f"{self.host.ip}:{GOSSIP_PORT}",
                   "--metrics-listen", f"{self.host.ip}:{METRICS_PORT}",
                   "--federation", str(self.creds), "--preset", "local",
                   *(a for p in self.peers for a in ("--peer", p))]
        self.set_clock(0.0)
        self.procs = {"node": Proc(f"{self.name}.node", node, self.logs / f"{self.name}.node.log",
                                   self.clock),
                      "sidecar": Proc(f"{self.name}.sidecar", sidecar,
                                      self.logs / f"{self.name}.sidecar.log", self.clock)}

    @property
    def clock(self) -> Path:
        return self.logs / f"{self.name}.clock"

    def set_clock(self, offset_seconds: float) -> None:
        """Step this host's wall clock to real time + ``offset_seconds`` (its processes
        see it within 0.1 s; bench/chaos/clock)."""
        tmp = self.clock.with_suffix(".tmp")
        tmp.write_text(f"{offset_seconds}\n")
        tmp.replace(self.clock)

    def start(self, which: tuple[str, ...] = PROCESSES, timeout: float = START_TIMEOUT) -> None:
        """Start those of ``which`` not running (the node before its sidecar) and wait
        for their ready lines. Idempotent: a process another driver restarted meanwhile
        is left alone (a second one would find the data dir locked, and the first one
        would run on untracked)."""
        spawned = [n for n in PROCESSES if n in which and self.procs[n].pid is None]
        for name in spawned:
            self.procs[name].spawn()
        for name in spawned:
            self.procs[name].wait_ready(timeout)

    def kill9(self, which: tuple[str, ...] = PROCESSES) -> None:
        for name in which:
            self.procs[name].kill9()

    def stop(self) -> None:
        for name in reversed(PROCESSES):
            self.procs[name].stop()

    def pids(self) -> dict[str, int]:
        return {n: p.pid for n, p in self.procs.items() if p.pid is not None}


@dataclass
class Cluster:
    """The bridge, the namespaces, the federation and the pods."""

    n: int
    work: Path
    small_disk: tuple[int, ...] = ()  # pods whose data dir is on a small tmpfs
    small_disk_mb: int = 96
    lab: Any = None
    mounts: list[Path] = field(default_factory=list)
    pods: list[Pod] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return str(self.lab.bridge)

    def create(self) -> Cluster:
        from federation.io.pki import init_federation, issue_node

        self.lab = lab = create_netlab(self.n)
        fed = self.work / "federation"
        init_federation(fed, name="chaos drill")
        logs = self.work / "logs"
        logs.mkdir(parents=True, exist_ok=True)
        gossip = [f"{h.ip}:{GOSSIP_PORT}" for h in lab.hosts]
        for i, host in enumerate(lab.hosts):
            creds = issue_node(fed, f"host{i}", self.work / f"creds{i}", ips=[host.ip])
            peers = [g for j, g in enumerate(gossip) if j != i][:2]
            disk = self._mount_small_disk(i) if i in self.small_disk else None
            data = disk / "data" if disk is not None else self.work / f"data{i}"
            pod = Pod(i, host, data, creds, logs, peers, disk)
            pod.build()
            self.pods.append(pod)
        return self

    def _mount_small_disk(self, i: int) -> Path:
        disk = self.work / f"disk{i}"
        disk.mkdir(parents=True, exist_ok=True)
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={self.small_disk_mb}m,mode=0700",
                        f"chaos{i}", str(disk)], check=True, capture_output=True, timeout=30)
        self.mounts.append(disk)
        return disk

    def start_all(self, timeout: float = START_TIMEOUT) -> None:
        """Nodes first (a few at a time: each imports chromadb), then the sidecars."""
        for k in range(0, len(self.pods), 3):
            group = self.pods[k:k + 3]
            for p in group:
                p.procs["node"].spawn()
            for p in group:
                p.procs["node"].wait_ready(timeout)
        for p in self.pods:
            p.procs["sidecar"].spawn()
        for p in self.pods:
            p.procs["sidecar"].wait_ready(timeout)

    def nft(self, rules: str, netns: str | None = None) -> None:
        cmd = ["nft", "-f", "-"]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        subprocess.run(cmd, input=rules, text=True, check=True, capture_output=True,
                       timeout=30)

    def nft_delete(self, family: str, table: str, netns: str | None = None) -> None:
        cmd = ["nft", "delete", "table", family, table]
        if netns:
            cmd = ["ip", "netns", "exec", netns, *cmd]
        subprocess.run(cmd, capture_output=True, timeout=30)  # absent is fine

    def teardown(self) -> None:
        for p in self.pods:
            for proc in p.procs.values():
                with contextlib.suppress(Exception):
                    proc.stop(timeout=5)
        if self.lab is not None:
            self.lab.teardown()
            self.lab = None
        for disk in self.mounts:
            subprocess.run(["umount", "-l", str(disk)], capture_output=True, timeout=30)
        self.mounts.clear()
