"""infra/docker/compose.yaml: the 3-node mesh in the pod shape (each sidecar in its node's
network namespace), its commands parsed by the CLI's own parser, and its one-shot
federation service's script run for real."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path
from typing import Any

import pytest

from infrakit import DOCKER, load_docs, memnode_api, memnode_wrapper, node_config, sidecar_config

NODES = ["node1", "node2", "node3"]


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    return load_docs(DOCKER / "compose.yaml")[0]


def flag(argv: list[str], name: str) -> list[str]:
    """The values of ``--name=VALUE`` / ``--name VALUE`` in argv."""
    values = []
    for i, arg in enumerate(argv):
        if arg.startswith(f"--{name}="):
            values.append(arg.split("=", 1)[1])
        elif arg == f"--{name}":
            values.append(argv[i + 1])
    return values


def volume_mounts(service: dict[str, Any]) -> dict[str, str]:
    """container path -> volume (or bind source), for short-syntax volumes."""
    out = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        out[target] = source
    return out


def sidecar_of(node: str) -> str:
    return "sidecar" + node.removeprefix("node")


def test_each_sidecar_shares_its_nodes_network_namespace(compose: dict[str, Any]) -> None:
    services = compose["services"]
    sidecars = sorted(s for s in services if s.startswith("sidecar"))
    assert sidecars == [sidecar_of(n) for n in NODES]
    for node in NODES:
        side = services[sidecar_of(node)]
        assert side["network_mode"] == f"service:{node}"
        assert "network_mode" not in services[node]
        assert "ports" not in side, "a sidecar in its node's namespace publishes nothing"
        assert side["depends_on"][node]["condition"] == "service_healthy"


def test_node_and_sidecar_commands_are_real_and_fit_together(compose: dict[str, Any]) -> None:
    services = compose["services"]
    for node in NODES:
        n, s = services[node], services[sidecar_of(node)]
        cfg, _ = node_config(n["command"], {})
        args, side = sidecar_config(s["command"], {})
        assert cfg.sidecar == "external"
        assert args.node == cfg.replica_listen and args.node.startswith("127.0.0.1:")
        # the node's metadata key and the sidecar's credentials: the node's own volume
        assert cfg.metadata_key_file == side.federation / "metadata.key"
        assert volume_mounts(n)[str(side.federation)] == f"{node}-credentials"
        assert volume_mounts(s)[str(side.federation)] == f"{node}-credentials"
        assert volume_mounts(n)[str(cfg.data_dir)] == f"{node}-data"
        # peers: the other nodes, on the gossip port this sidecar listens on
        gossip_port = side.gossip_listen.rpartition(":")[2]
        assert side.advertise == f"{n['hostname']}:{gossip_port}"
        assert sorted(side.peer) == [f"{o}:{gossip_port}" for o in NODES if o != node]
        published = [p.split(":") for p in n["ports"]]
        assert all(host == "127.0.0.1" for host, _, _ in published), \
            "the client API is published on the host's loopback only"
        assert [int(c) for _, _, c in published] == [int(cfg.listen.rpartition(":")[2])]


def test_volumes_and_the_ca_stay_where_they_belong(compose: dict[str, Any]) -> None:
    services = compose["services"]
    declared = set(compose["volumes"])
    used = {src for svc in services.values() for src in volume_mounts(svc).values()
            if not src.startswith(".")}
    assert used == declared
    ca_users = [name for name, svc in services.items()
                if "federation-ca" in volume_mounts(svc).values()]
    assert ca_users == ["federation"], "the CA's key is mounted by the init service only"
    for node in NODES:
        users = {name for name, svc in services.items()
                 if f"{node}-credentials" in volume_mounts(svc).values()}
        assert users == {"federation", node, sidecar_of(node)}
    init = services["federation"]
    assert init["restart"] == "no"
    assert init["command"] == NODES
    for node in NODES:
        assert services[node]["depends_on"]["federation"]["condition"] == \
            "service_completed_successfully"
    for name, svc in services.items():
        if name != "federation":
            assert svc["read_only"] is True and svc["cap_drop"] == ["ALL"], name
            assert "user" not in svc, f"{name} runs as the image's unprivileged user"


def test_federation_init_script_makes_loadable_credentials_once(
        tmp_path: Path, compose: dict[str, Any]) -> None:
    init = compose["services"]["federation"]
    script = DOCKER / Path(next(src for src in volume_mounts(init).values()
                                if src.startswith("./"))).name
    assert init["entrypoint"] == ["/bin/sh", f"/{script.name}"]
    bin_dir = tmp_path / "bin"
    memnode_wrapper(bin_dir)
    for node in NODES:
        (tmp_path / "data" / node).mkdir(parents=True)
    env = {**os.environ, "PATH": f"{bin_dir}:{os.environ['PATH']}",
           "MEMNODE_CA_DIR": str(tmp_path / "ca"),
           "MEMNODE_CREDENTIALS_ROOT": str(tmp_path / "creds"),
           "MEMNODE_DATA_ROOT": str(tmp_path / "data"),
           "MEMNODE_OWNER": f"{os.getuid()}:{os.getgid()}"}

    def run() -> subprocess.CompletedProcess[str]:
        return subprocess.run(["/bin/sh", str(script), *init["command"]], env=env,
                              capture_output=True, text=True, timeout=120)

    first = run()
    assert first.returncode == 0, first.stderr
    api = memnode_api()
    certs = {}
    for node in NODES:
        creds = api.load_node_credentials(tmp_path / "creds" / node)
        assert creds.name == node
        assert (tmp_path / "creds" / node).stat().st_mode & 0o777 == 0o700
        certs[node] = (tmp_path / "creds" / node / "node.crt").read_bytes()
    assert len({api.load_node_credentials(tmp_path / "creds" / n).federation_id
                for n in NODES}) == 1
    again = run()
    assert again.returncode == 0, again.stderr
    assert {n: (tmp_path / "creds" / n / "node.crt").read_bytes() for n in NODES} == certs, \
        "a second run must keep the credentials it made"
    assert not (tmp_path / "creds" / "node1" / "ca.key").exists()
