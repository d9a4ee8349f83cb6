"""A real mesh for the benchmarks: N ``memnode serve`` processes with embedded sidecars,
on loopback or each on its own host in a network namespace (../shared/NETLAB.md).

- Topology: ``star`` (every node's ``--peer`` is node 0) or ``ring`` (node 0 and the
  previous node). Membership gossip tells everyone about everyone either way.
- ``tls``: a fresh federation (CA, metadata key) and one certificate per node, so the
  sidecars speak mutual TLS (``--federation DIR``); else ``--insecure``.
- netns: the hosts come from ``tests/netns/netlab.py`` (bridge, veths, namespaces,
  teardown by tag). Loss: an nft ``numgen random`` drop on each host's input, gossip
  port only (client API traffic of the harness is not touched). Delay: an iptables
  NFQUEUE rule on each host's output, gossip port only, with ``bench/_delayq.py``
  holding every packet ``delay_ms`` before accepting it: one-way delay on every
  gossip packet, so the round trip grows by twice that. Needs iptables and the
  NetfilterQueue package; without them :class:`MeshUnavailable` says so.

Also: Prometheus scrapes of each sidecar and CPU seconds of each node from /proc.
"""

from __future__ import annotations

import contextlib
import importlib.util
import shutil
import subprocess
import sys
import threading
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

from bench._common import ROOT, ServeProcess, child_env, memnode_cmd, tail

API_PORT, GOSSIP_PORT, METRICS_PORT = 7420, 7422, 7423
CLK_TCK = 100


class MeshUnavailable(RuntimeError):
    """The requested mesh cannot be built on this machine (the reason is the message)."""


@dataclass(frozen=True)
class MeshOptions:
    nodes: int = 3
    hosts: str = "loopback"  # loopback | netns
    loss: float = 0.0  # percent, netns only
    delay_ms: float = 0.0  # one-way, netns only
    tls: bool = False
    embedder: str = "test-hash"
    topology: str = "star"  # star | ring
    preset: str = "local"
    sync: str = ""  # "" = the node's default
    extra: tuple[str, ...] = ()

    def describe(self) -> str:
        net = self.hosts
        if self.hosts == "netns":
            net += f", loss {self.loss:g}%, delay {self.delay_ms:g} ms one-way"
        return (f"{self.nodes} nodes ({net}), {'mTLS' if self.tls else 'plaintext'}, "
                f"embedder {self.embedder}, topology {self.topology}, preset {self.preset}")


class NodeProc(ServeProcess):
    """``memnode serve`` with a sidecar; ``prefix`` runs it inside a namespace."""

    def __init__(self, index: int, data_dir: Path, embedder: str, log_path: Path,
                 extra: list[str], host: str = "127.0.0.1", prefix: tuple[str, ...] = ()
                 ) -> None:
        super().__init__(data_dir, embedder, log_path, extra)
        self.index = index
        self.host = host
        self.prefix = list(prefix)

    def command(self) -> list[str]:
        port = API_PORT if self.prefix else 0
        # a namespace's private bridge address: the benchmark's clients carry no token
        auth = [] if self.host == "127.0.0.1" else ["--client-auth", "none",
                                                     "--allow-unauthenticated"]
        return [*self.prefix, *memnode_cmd(), "--log-level", "WARNING", "serve",
                "--data-dir", str(self.data_dir), "--listen", f"{self.host}:{port}",
                "--embedder", self.embedder, *auth, *self.extra]

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    @property
    def node_id(self) -> str:
        return str(self.ready["node_id"])

    @property
    def gossip(self) -> str:
        return str(self.ready["gossip"])

    @property
    def metrics_url(self) -> str:
        return f"http://{self.host}:{self.ready['metrics_port']}/metrics"


def load_netlab() -> ModuleType:
    """tests/netns/netlab.py (the namespace lab the multi-host tests use)."""
    path = ROOT / "tests" / "netns" / "netlab.py"
    if not path.is_file():
        raise MeshUnavailable(f"{path} is missing")
    spec = importlib.util.spec_from_file_location("_bench_netlab", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules.setdefault("_bench_netlab", module)
    spec.loader.exec_module(module)
    return module


def create_netlab(n: int) -> Any:
    """``n`` hosts in namespaces on a bridge, created (MeshUnavailable if this machine
    cannot: no root, no nft)."""
    netlab = load_netlab()
    lab = netlab.Netlab(n)
    try:
        lab.check_tools("nft")
        lab.create()
    except netlab.NetlabUnavailable as exc:
        raise MeshUnavailable(str(exc)) from None
    return lab


class LogProbe:
    """A node's version vector read straight from its event log (``DATA/log.db``, SQLite
    in WAL mode: a read-only reader never blocks the node): the very query behind
    ``Status.version_vector``, without the RPC, whose ~2 ms of node CPU per call (two
    Chroma counts) would load a 16-node mesh on 2 cores more than replication does.
    One connection per polling thread (each node has one)."""

    def __init__(self, data_dir: Path) -> None:
        self.path = data_dir / "log.db"
        self._conn: Any = None

    def __call__(self) -> dict[str, int]:
        import sqlite3

        if self._conn is None:
            self._conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True,
                                         check_same_thread=False, timeout=5)
        rows = self._conn.execute("SELECT origin, watermark FROM origins").fetchall()
        return {origin: int(seq) for origin, seq in rows if seq > 0}

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


def process_tree(pid: int) -> list[int]:
    """``pid`` and its descendants (a node and its Chroma process), from /proc."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                todo += [int(c) for c in (task / "children").read_text().split()]
            except OSError:
                continue
    return out


def _cpu(stat: Path) -> float:
    try:
        fields = stat.read_text().rpartition(")")[2].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process and its descendants, from /proc (0.0 if gone)."""
    return sum(_cpu(Path(f"/proc/{p}/stat")) for p in process_tree(pid))


def thread_cpu(pid: int) -> dict[str, float]:
    """CPU seconds of a node's threads by who runs them, from /proc: ``chroma``
    (Chroma's Rust runtime and SQLite workers in the node's own process),
    ``chroma_process`` (every thread of the node's child processes: Chroma, when it runs
    apart), ``grpc`` (gRPC's C threads), ``python`` (every Python thread: its name is
    the process's)."""
    out = {"chroma": 0.0, "chroma_process": 0.0, "grpc": 0.0, "python": 0.0}
    for p in process_tree(pid):
        for task in Path(f"/proc/{p}/task").glob("*"):
            try:
                comm = (task / "comm").read_text().strip()
            except OSError:
                continue
            group = ("chroma_process" if p != pid else
                     "chroma" if comm.startswith(("tokio", "sqlx")) else
                     "grpc" if comm.startswith(("event_engine", "grpc")) else "python")
            out[group] += _cpu(task / "stat")
    return out


def _status_kb(pid: int, path: str, key: str) -> int:
    try:
        text = Path(f"/proc/{pid}/{path}").read_text()
    except OSError:
        return 0
    return next((int(line.split()[1]) for line in text.splitlines()
                 if line.startswith(key)), 0)


def rss_mb(pid: int) -> float:
    """Resident memory of a process and its descendants in MB, from /proc (pages shared
    between them counted in each)."""
    return sum(_status_kb(p, "status", "VmRSS:") for p in process_tree(pid)) / 1024


def pss_mb(pid: int) -> float:
    """Proportional set size of a process and its descendants in MB: shared pages
    divided among the processes that map them."""
    return sum(_status_kb(p, "smaps_rollup", "Pss:") for p in process_tree(pid)) / 1024


def scrape(url: str, timeout: float = 10.0) -> dict[str, float]:
    """A Prometheus endpoint as {"name{label=value}": value} (samples, not families)."""
    from prometheus_client.parser import text_string_to_metric_families

    with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (ours)
        text = response.read().decode()
    out: dict[str, float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(sample.labels.items()))
            out[f"{sample.name}{{{labels}}}" if labels else sample.name] = sample.value
    return out


def index_tail(url: str, collection: str = "") -> float:
    """Changes a node holds that Chroma does not yet (``memnode_index_tail``), in one
    collection or in both."""
    label = f"{{collection={collection}}}" if collection else "{"
    return sum(v for k, v in scrape(url).items() if k.startswith("memnode_index_tail" + label))


def federation_metrics(sample: dict[str, float]) -> dict[str, float]:
    """The sidecar counters the benchmarks read, summed over labels."""
    keys = ("bytes_sent", "bytes_received", "events_sent", "events_received",
            "events_applied", "events_duplicate", "messages_sent", "messages_received")
    out = {k: 0.0 for k in keys}
    for name, value in sample.items():
        base = name.partition("{")[0].removeprefix("memnode_federation_").removesuffix("_total")
        if base in out:
            out[base] += value
        if base == "messages_sent" and "{" in name:
            kind = name.partition("kind=")[2].rstrip("}")
            out[f"messages_sent.{kind}"] = out.get(f"messages_sent.{kind}", 0.0) + value
        # memnode_federation_stage_cpu_seconds_total (sidecar), memnode_stage_... (node)
        if base.endswith("stage_cpu_seconds") and "stage=" in name:
            stage = name.partition("stage=")[2].rstrip("}").strip('"')
            out[f"cpu.{stage}"] = out.get(f"cpu.{stage}", 0.0) + value
    return out


@dataclass
class Mesh:
    options: MeshOptions
    work: Path
    say: Callable[[str], None] = print
    nodes: list[NodeProc] = field(default_factory=list)
    lab: Any = None
    notes: list[str] = field(default_factory=list)
    _helpers: list[subprocess.Popen[bytes]] = field(default_factory=list)

    # -- set-up ---------------------------------------------------------------------
    def start(self, timeout: float = 300.0) -> Mesh:
        o = self.options
        if o.hosts not in ("loopback", "netns"):
            raise ValueError(f"--hosts must be loopback or netns, not {o.hosts!r}")
        if o.hosts == "loopback" and (o.loss or o.delay_ms):
            raise ValueError("--loss and --delay need --hosts netns")
        self.work.mkdir(parents=True, exist_ok=True)
        creds = self._credentials() if o.tls else []
        if o.hosts == "netns":
            self._make_lab()
        procs = [self._node(i, creds[i] if creds else None) for i in range(o.nodes)]
        procs[0].start(timeout)
        self.nodes = [procs[0]]
        errors: list[BaseException] = []

        def start_one(p: NodeProc) -> None:
            p.extra += self._peers(p.index, procs)
            try:
                p.start(timeout)
            except BaseException as exc:  # reported below
                errors.append(exc)

        # a few at a time: 2 cores, and each start imports chromadb
        rest = procs[1:]
        step = 1 if o.topology == "ring" and o.hosts == "loopback" else 4
        for k in range(0, len(rest), step):
            threads = [threading.Thread(target=start_one, args=(p,)) for p in rest[k:k + step]]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            if errors:
                break
        self.nodes = [p for p in procs if p.proc is not None]
        if errors:
            raise errors[0]
        return self

    def _peers(self, i: int, procs: list[NodeProc]) -> list[str]:
        if self.options.hosts == "netns":
            addr = [f"{self.lab.hosts[j].ip}:{GOSSIP_PORT}" for j in range(len(procs))]
        else:
            addr = [procs[0].gossip] * len(procs)  # only node 0's port is known yet
        if self.options.topology == "ring" and i > 1:
            if self.options.hosts == "netns":
                return ["--peer", addr[0], "--peer", addr[i - 1]]
            # loopback ports are picked at start: ring nodes start one by one
            return ["--peer", addr[0], "--peer", procs[i - 1].gossip]
        return ["--peer", addr[0]]

    def _node(self, i: int, creds: Path | None) -> NodeProc:
        o = self.options
        security = ["--federation", str(creds)] if creds else ["--insecure"]
        extra = [*security, "--preset", o.preset, *(["--sync", o.sync] if o.sync else []),
                 *o.extra]
        data, log = self.work / f"node{i}", self.work / f"node{i}.log"
        if o.hosts == "loopback":
            extra += ["--gossip-listen", "127.0.0.1:0", "--metrics-listen", "127.0.0.1:0"]
            return NodeProc(i, data, o.embedder, log, extra)
        host = self.lab.hosts[i]
        extra += ["--gossip-listen", f"{host.ip}:{GOSSIP_PORT}",
                  "--metrics-listen", f"{host.ip}:{METRICS_PORT}"]
        return NodeProc(i, data, o.embedder, log, extra, host=host.ip,
                        prefix=("ip", "netns", "exec", host.netns))

    def _credentials(self) -> list[Path]:
        from federation.io.pki import init_federation, issue_node

        fed = self.work / "federation"
        init_federation(fed, name="bench federation")
        out = []
        for i in range(self.options.nodes):
            ips = [f"{self._prefix_guess()}.{i + 1}"] if self.options.hosts == "netns" else []
            out.append(issue_node(fed, f"node{i}", self.work / f"creds{i}", ips=ips))
        return out

    def _prefix_guess(self) -> str:
        # the lab picks its /24 in _make_lab, which runs after credentials: make it first
        if self.lab is None:
            self._make_lab()
        return str(self.lab.prefix)

    def _make_lab(self) -> None:
        if self.lab is not None:
            return
        self.lab = create_netlab(self.options.nodes)
        try:
            if self.options.loss:
                self._add_loss()
            if self.options.delay_ms:
                self._add_delay()
        except BaseException:
            self.stop()
            raise

    def _add_loss(self) -> None:
        pct = self.options.loss
        if not 0 < pct < 100:
            raise ValueError("--loss must be in (0, 100)")
        for host in self.lab.hosts:
            rules = (
                "table inet benchloss {\n"
                "  chain in {\n"
                "    type filter hook input priority 0; policy accept;\n"
                f"    tcp dport {GOSSIP_PORT} numgen random mod 10000 < {int(pct * 100)} drop\n"
                f"    tcp sport {GOSSIP_PORT} numgen random mod 10000 < {int(pct * 100)} drop\n"
                "  }\n"
                "}\n"
            )
            subprocess.run(["ip", "netns", "exec", host.netns, "nft", "-f", "-"], input=rules,
                           text=True, check=True, capture_output=True, timeout=30)
        self.notes.append(f"loss: nft numgen drop of {pct:g}% of gossip packets (both "
                          "directions) on each host's input")

    def _add_delay(self) -> None:
        if shutil.which("iptables") is None:
            raise MeshUnavailable("--delay needs iptables (apt-get install iptables): the "
                                  "kernel has no netem and no nft queue, only xt NFQUEUE")
        if importlib.util.find_spec("netfilterqueue") is None:
            raise MeshUnavailable("--delay needs the NetfilterQueue package (apt-get install "
                                  "libnetfilter-queue-dev; pip install NetfilterQueue)")
        for i, host in enumerate(self.lab.hosts):
            queue = 10 + i
            helper = subprocess.Popen(
                ["ip", "netns", "exec", host.netns, sys.executable, "-m", "bench._delayq",
                 "--queue", str(queue), "--delay-ms", str(self.options.delay_ms),
                 "--seconds", "7200"],
                stdout=subprocess.PIPE, stderr=(self.work / f"delayq{i}.log").open("ab"),
                env=child_env(), cwd=ROOT, start_new_session=True)
            self._helpers.append(helper)
            self.lab.procs.append(helper)
            netlab = load_netlab()
            if "ready" not in netlab.read_until(helper, "ready", 30):
                raise MeshUnavailable("the delay queue did not start: "
                                      + tail(self.work / f"delayq{i}.log"))
            for flag in ("--dport", "--sport"):
                subprocess.run(["ip", "netns", "exec", host.netns, "iptables", "-A", "OUTPUT",
                                "-p", "tcp", flag, str(GOSSIP_PORT), "-j", "NFQUEUE",
                                "--queue-num", str(queue), "--queue-bypass"],
                               check=True, capture_output=True, timeout=30)
        self.notes.append(f"delay: NFQUEUE + bench/_delayq.py holds every gossip packet "
                          f"{self.options.delay_ms:g} ms on each host's output (one-way; "
                          f"round trip +{2 * self.options.delay_ms:g} ms)")

    # -- running ------------------------------------------------------------------------
    def addrs(self) -> list[str]:
        return [n.addr for n in self.nodes]

    def wait_connected(self, timeout: float) -> float:
        """Until every node sees N-1 alive peers; returns the seconds it took."""
        from memnode import Client

        started = time.monotonic()
        want = len(self.nodes) - 1
        clients = [Client(a, timeout=10) for a in self.addrs()]
        try:
            while True:
                counts = []
                for c in clients:
                    try:
                        peers = c.status().peers
                    except Exception:  # not up yet
                        peers = []
                    counts.append(sum(1 for p in peers if p["state"] == "alive"))
                if min(counts) >= want:
                    return time.monotonic() - started
                if time.monotonic() - started > timeout:
                    raise TimeoutError(f"mesh not connected after {timeout:.0f}s: alive "
                                       f"peers per node {counts}, want {want}")
                time.sleep(0.2)
        finally:
            for c in clients:
                c.close()

    def metrics(self) -> list[dict[str, float]]:
        return [federation_metrics(scrape(n.metrics_url)) for n in self.nodes]

    def cpu(self) -> list[float]:
        return [cpu_seconds(n.pid) for n in self.nodes]

    def wait_indexed(self, timeout: float) -> float:
        """Poll every node's ``memnode_index_tail`` until none holds a change Chroma has
        not (the indexer's window ends), within ``timeout``; the seconds it took."""
        started = time.monotonic()
        while True:
            held = sum(index_tail(n.metrics_url) for n in self.nodes)
            if not held:
                return time.monotonic() - started
            if time.monotonic() - started > timeout:
                raise MeshUnavailable(f"the index tails still hold {held:g} changes "
                                      f"after {timeout:g} s")
            time.sleep(0.1)

    def thread_cpu(self) -> list[dict[str, float]]:
        return [thread_cpu(n.pid) for n in self.nodes]

    def rss(self) -> list[float]:
        return [rss_mb(n.pid) for n in self.nodes]

    def pss(self) -> list[float]:
        return [pss_mb(n.pid) for n in self.nodes]

    def stop(self) -> None:
        for n in self.nodes:
            with contextlib.suppress(Exception):
                n.stop(timeout=20)
        if self.lab is not None:
            self.lab.teardown()
            self.lab = None

    def __enter__(self) -> Mesh:
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def running_mesh(options: MeshOptions, work: Path, say: Callable[[str], None],
                 timeout: float = 300.0) -> Iterator[Mesh]:
    mesh = Mesh(options, work, say)
    try:
        mesh.start(timeout)
        yield mesh
    finally:
        mesh.stop()
