"""The pod test: infra/k8s's StatefulSet run by what its containers run. Each of its 3
pods is one network namespace of a lab on a bridge (tests/netns/netlab.py) holding two
processes, the `node` container's and the `sidecar` container's own args and env with
the image's `memnode` entrypoint: they share the namespace's loopback (the sidecar
reaches the node's Replica API on 127.0.0.1) and nothing else. Before them, the
`credentials` init container's own script runs on the Secrets that the documented
command, infra/k8s/make-secrets.sh, made (for real, on a fresh `memnode federation
init`), laid out as a kubelet mounts secret volumes.

The pods find each other only through the headless Service's DNS name (the sidecar's
`--discover dns:...`) and gossip to each other's per-pod names (`MEMNODE_ADVERTISE`):
a dnslib server (tests/discovery/_dnsserver.py) on a fourth namespace, the cluster's
DNS, answers both from a zone file, and every pod's resolv.conf is the one a kubelet
writes (search path, ndots:5) pointing at it.

What the test supplies is what a kubelet would: the pod's IP (its namespace's address),
the downward-API env (pod name, namespace), and the volumes. The manifest's absolute
paths (/data, /run/memnode/..., /tmp) cannot be used as-is outside a container, so
:func:`kubelet_paths` -- the one place this happens -- moves every path under a
container's volumeMount to that volume's directory under the test's temp dir: the PVC
`data-memnode-N` survives its pod, the emptyDirs (credentials, tmp) are made afresh at
each pod start, and /tmp is also handed over as TMPDIR. The processes run as the test's
user, not as the manifest's runAsUser.

The node listens on 0.0.0.0 in the kubernetes preset, so clients need a token: the test
issues one per pod with `memnode token issue --data-dir DATA` and calls each node from
the root namespace through the bridge.

Then: memories written on each pod reach every other (equal version vectors, matching
replica counts); one pod is killed (both processes, SIGKILL to their process groups)
right after a write it acknowledged; the others take more writes; the pod starts again
on the same data volume: no acknowledged write is lost (every id is readable on every
node, with its text on its origin) and it catches up.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from helpers import converged_vectors, memnode_cmd, wait_for
from infrakit import (
    container,
    container_argv,
    container_env,
    make_secrets,
    mount_secret,
    pod_spec,
    port_of,
    statefulset,
)

TESTS = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(TESTS / "netns"))
sys.path.insert(0, str(TESTS / "discovery"))

from memnode import Client  # noqa: E402

from disclab import spawn  # noqa: E402
from netlab import Host, Netlab, NetlabUnavailable, read_until  # noqa: E402

pytestmark = pytest.mark.slow

NAMESPACE = "memtest"
REPLICAS = 3
NETNS_ETC = Path("/etc/netns")
START_TIMEOUT = 90  # three nodes loading the model at once on a small machine


# -- the kubelet's part -----------------------------------------------------------------


def kubelet_paths(c: dict[str, Any], volume_dirs: dict[str, Path]) -> Callable[[str], str]:
    """The one mapping of the manifest's in-container paths: a value at or under one of
    ``c``'s mountPaths becomes the same path under that volume's directory (the longest
    mountPath wins, as in the container's mount table); other values are unchanged.
    ``--flag=/path`` arguments are mapped on their value."""
    table = sorted(((m["mountPath"].rstrip("/"), volume_dirs[m["name"]])
                    for m in c.get("volumeMounts", [])), key=lambda t: -len(t[0]))

    def move(value: str) -> str:
        if value.startswith("--") and "=" in value:
            flag, _, rest = value.partition("=")
            return f"{flag}={move(rest)}"
        for mount, host in table:
            if value == mount or value.startswith(mount + "/"):
                return str(host) + value[len(mount):]
        return value

    return move


def volume_kinds() -> dict[str, str]:
    """volume name -> secret / emptyDir / pvc, from the pod spec and the claim templates."""
    kinds = {}
    for v in pod_spec()["volumes"]:
        kind = "secret" if "secret" in v else "emptyDir" if "emptyDir" in v else None
        assert kind, f"volume {v['name']}: the test knows secret and emptyDir volumes"
        kinds[v["name"]] = kind
    for claim in statefulset()["spec"]["volumeClaimTemplates"]:
        kinds[claim["metadata"]["name"]] = "pvc"
    return kinds


def process_env(c: dict[str, Any], downward: dict[str, str],
                move: Callable[[str], str]) -> dict[str, str]:
    """The container's env (downward API filled in, paths mapped) over this process's
    environment without its MEMNODE_* (the venv, PYTHONPATH, the model's offline cache);
    TMPDIR is the container's /tmp volume if it has one."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEMNODE_")}
    env.update({k: move(v) for k, v in container_env(c, downward).items()})
    tmp = move("/tmp")
    if tmp != "/tmp":
        env["TMPDIR"] = tmp
    return env


# -- a pod ------------------------------------------------------------------------------


@dataclass
class Pod:
    name: str
    host: Host
    root: Path  # this pod's volumes; its PVC is outside, in CLAIMS
    claim: Path
    secrets: list[dict[str, Any]]
    procs: dict[str, subprocess.Popen[bytes]] = field(default_factory=dict)
    token: str = ""
    starts: int = 0

    @property
    def downward(self) -> dict[str, str]:
        return {"metadata.name": self.name, "metadata.namespace": NAMESPACE}

    def volumes(self) -> dict[str, Path]:
        """Each volume's directory for this start: Secrets laid out as a kubelet mounts
        them, emptyDirs empty, the PVC as it was left."""
        by_name = {d["metadata"]["name"]: d for d in self.secrets}
        spec = {v["name"]: v for v in pod_spec()["volumes"]}
        dirs: dict[str, Path] = {}
        run = self.root / f"start{self.starts}"
        for name, kind in volume_kinds().items():
            if kind == "pvc":
                dirs[name] = self.claim
                self.claim.mkdir(parents=True, exist_ok=True)
                continue
            dirs[name] = run / name
            if kind == "secret":
                secret = spec[name]["secret"]
                mount_secret(by_name[secret["secretName"]], dirs[name], secret["defaultMode"])
            else:
                dirs[name].mkdir(parents=True)
        return dirs

    def credentials_init(self, dirs: dict[str, Path]) -> None:
        """The `credentials` init container's own script, on this start's volumes."""
        init = container("credentials")
        assert init["command"][:2] == ["/bin/sh", "-ec"]
        move = kubelet_paths(init, dirs)
        env = {"PATH": os.environ["PATH"],
               **{k: move(v) for k, v in container_env(init, self.downward).items()}}
        done = subprocess.run([*init["command"], *init["args"]], env=env,
                              capture_output=True, text=True, timeout=60)
        assert done.returncode == 0, f"{self.name} credentials: {done.stderr}"

    def start(self, lab: Netlab, logs: Path) -> None:
        """Init container, then the native sidecar, then the node, in the namespace."""
        self.starts += 1
        dirs = self.volumes()
        self.credentials_init(dirs)
        for name in ("sidecar", "node"):
            c = container(name)
            move = kubelet_paths(c, dirs)
            argv = [move(a) for a in container_argv(c, self.downward)]
            env = process_env(c, self.downward, move)
            cmd = ["env", "-i", *(f"{k}={v}" for k, v in env.items()), *memnode_cmd(*argv)]
            log = logs / f"{self.name}.{name}.{self.starts}.log"
            with log.open("wb") as err:
                self.procs[name] = lab.spawn(cmd, self.host.netns, stderr=err)

    def ready(self, logs: Path) -> dict[str, Any]:
        """Both processes' ready lines (the sidecar's comes once it reached the node);
        the node's."""
        out = {}
        for name in ("node", "sidecar"):
            proc = self.procs[name]
            line = read_until(proc, "\n", START_TIMEOUT)
            if not line.endswith("\n"):
                proc.poll()
                log = logs / f"{self.name}.{name}.{self.starts}.log"
                raise AssertionError(f"{self.name} {name} not ready (exit {proc.returncode})"
                                     f": {line!r}\n{log.read_text()[-3000:]}")
            out[name] = json.loads(line.splitlines()[0])
        node = out["node"]
        assert node["data_dir"] == str(self.claim), node
        assert node["gossip"] == "", "the node runs no embedded sidecar"
        assert out["sidecar"]["node_id"] == node["node_id"]
        return dict(node)

    def kill(self) -> None:
        """SIGKILL to both process groups, as when the pod's node dies hard."""
        for proc in self.procs.values():
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        for proc in self.procs.values():
            proc.wait(10)
            if proc.stdout is not None:
                proc.stdout.close()

    def client(self) -> Client:
        port = port_of(container_env(container("node"))["MEMNODE_LISTEN"])
        return Client(f"{self.host.ip}:{port}", token=self.token, timeout=30)


def issue_token(data_dir: Path) -> str:
    done = subprocess.run(memnode_cmd("token", "issue", "--data-dir", str(data_dir),
                                      "--scope", "read,write"),
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout.splitlines()[0].strip()


# -- the cluster's DNS ------------------------------------------------------------------


def dns_names() -> tuple[str, Callable[[str], str]]:
    """The headless Service name the sidecar discovers, and a pod's advertised host
    name (or address), both as the manifest gives them."""
    side = container("sidecar")
    discover = [a.split("=", 1)[1] for a in container_argv(side, _downward("memnode-0"))
                if a.startswith("--discover=")]
    assert len(discover) == 1 and discover[0].startswith("dns:"), discover
    service = discover[0].removeprefix("dns:").rpartition(":")[0]

    def advertised(pod: str) -> str:
        return container_env(side, _downward(pod))["MEMNODE_ADVERTISE"].rpartition(":")[0]

    return service, advertised


def _downward(pod: str) -> dict[str, str]:
    return {"metadata.name": pod, "metadata.namespace": NAMESPACE}


def kubelet_resolv_conf(nameserver: str) -> str:
    """What a kubelet writes for a pod with dnsPolicy ClusterFirst."""
    domain = "cluster.local"
    return (f"search {NAMESPACE}.svc.{domain} svc.{domain} {domain}\n"
            f"nameserver {nameserver}\noptions ndots:5\n")


@pytest.fixture
def lab() -> Iterator[Netlab]:
    pytest.importorskip("dnslib", reason="the cluster's DNS is served with dnslib")
    lab = Netlab(REPLICAS + 1)  # the pods, and the cluster's DNS
    try:
        lab.create()
    except NetlabUnavailable as exc:
        pytest.skip(f"the pod test runs each pod in a network namespace: {exc}")
    made_root = not NETNS_ETC.exists()
    try:
        for host in lab.hosts[:REPLICAS]:
            folder = NETNS_ETC / host.netns
            folder.mkdir(parents=True)
            (folder / "resolv.conf").write_text(kubelet_resolv_conf(lab.hosts[-1].ip))
        yield lab
    finally:
        lab.teardown()
        for host in lab.hosts:
            shutil.rmtree(NETNS_ETC / host.netns, ignore_errors=True)
        if made_root:
            with contextlib.suppress(OSError):
                NETNS_ETC.rmdir()
    wait_for(lambda: not lab.leftovers(), "the lab's interfaces and namespaces to go", 10)


# -- the test ---------------------------------------------------------------------------


def _replicated_all(clients: list[Client], own: list[int]) -> bool:
    """Every node holds every other node's memories as replicas, and only its own as
    local ones."""
    total = sum(own)
    for c, n in zip(clients, own, strict=True):
        memories = c.status().memories
        if memories["local"] != n or memories["replicated"] != total - n:
            return False
    return True


def _found_by_dns(client: Client, n: int) -> bool:
    """``n`` peers, each found through the headless Service's name or learnt from gossip
    (an empty ``found_by``), at least one by DNS."""
    ways = [p["found_by"] for p in client.status().peers]
    return len(ways) == n and any(w.startswith("dns") for w in ways) and all(
        w.startswith("dns") or w == "" for w in ways)


def test_statefulset_pods_find_each_other_by_dns_and_a_killed_pod_loses_nothing(
        lab: Netlab, tmp_path: Path) -> None:
    t0 = time.monotonic()
    logs = tmp_path / "logs"
    logs.mkdir()
    _, secrets, _ = make_secrets(tmp_path / "admin", "--replicas", str(REPLICAS),
                                 namespace=NAMESPACE)
    sts = statefulset()
    assert sts["spec"]["replicas"] == REPLICAS
    names = [f"{sts['metadata']['name']}-{i}" for i in range(REPLICAS)]
    claim = sts["spec"]["volumeClaimTemplates"][0]["metadata"]["name"]
    pods = [Pod(name, host, tmp_path / "pods" / name, tmp_path / "pvc" / f"{claim}-{name}",
                secrets) for name, host in zip(names, lab.hosts, strict=False)]

    service, advertised = dns_names()
    zone: dict[str, list[str]] = {f"{service}.": [p.host.ip for p in pods]}
    for p in pods:
        host = advertised(p.name)
        if not host.replace(".", "").isdigit():
            zone[f"{host}."] = [p.host.ip]
    zone_file = tmp_path / "zone.json"
    zone_file.write_text(json.dumps(zone))
    dns = lab.hosts[-1]
    server = spawn(lab, dns.netns, "_dnsserver.py", [str(zone_file), dns.ip], logs / "dns.log")
    assert "ready" in read_until(server, "ready", 30), (logs / "dns.log").read_text()

    for p in pods:
        p.token = issue_token(p.claim)
        p.start(lab, logs)
    ready = [p.ready(logs) for p in pods]
    print(f"3 pods ready in {time.monotonic() - t0:.1f}s")
    clients = [p.client() for p in pods]
    try:
        written: dict[str, tuple[int, str]] = {}  # id -> (origin pod, text)

        def write(i: int, what: str) -> str:
            text = f"{what} on {pods[i].name}"
            written[clients[i].remember(text)] = (i, text)
            return text

        for i in range(REPLICAS):
            for k in range(2):
                write(i, f"memory {k}")
        own = [2, 2, 2]
        wait_for(lambda: _replicated_all(clients, own) and converged_vectors(clients),
                 "every pod to hold every memory, version vectors equal", 60, 0.2)
        vector = clients[0].status().version_vector
        assert set(vector) == {r["node_id"] for r in ready}, vector
        for i, c in enumerate(clients):
            wait_for(lambda c=c: _found_by_dns(c, 2), f"{pods[i].name} to list its two "
                     "peers, found by DNS", 15, 0.2)
        gossip_port = port_of(container_env(container("sidecar"))["MEMNODE_GOSSIP_LISTEN"])
        for i, c in enumerate(clients):
            peers = {p["node_id"]: p["address"] for p in c.status().peers}
            assert peers == {ready[j]["node_id"]: f"{advertised(pods[j].name)}:{gossip_port}"
                             for j in range(REPLICAS) if j != i}, (pods[i].name, peers)
        print(f"mesh converged at {time.monotonic() - t0:.1f}s")

        # a write acknowledged right before the pod dies, then the pod dies hard
        victim = 2
        write(victim, "last words")
        own[victim] += 1
        clients[victim].close()
        pods[victim].kill()
        for i in range(REPLICAS):
            if i != victim:
                for k in range(2):
                    write(i, f"while {pods[victim].name} was down {k}")
                own[i] += 2

        pods[victim].start(lab, logs)
        again = pods[victim].ready(logs)
        assert again["node_id"] == ready[victim]["node_id"], "the PVC keeps the identity"
        clients[victim] = pods[victim].client()
        wait_for(lambda: _replicated_all(clients, own) and converged_vectors(clients),
                 f"{pods[victim].name} to catch up after its restart", 60, 0.2)
        print(f"restarted pod caught up at {time.monotonic() - t0:.1f}s")

        for i, c in enumerate(clients):
            for mid, (origin, text) in written.items():
                got = c.get(mid)
                assert got.origin == ready[origin]["node_id"], (pods[i].name, mid)
                if i == origin:
                    assert got.text == text and got.local, (pods[i].name, mid)
        assert len(written) == sum(own)
    finally:
        for c in clients:
            c.close()
        if server.stdin is not None:
            server.stdin.close()
    print(f"pod test done in {time.monotonic() - t0:.1f}s")
