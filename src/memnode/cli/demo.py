"""``make run``: a local 3-node mesh on loopback with embedded defaults.

Each node has its own data directory under ./.memnode-demo/ and its embedded sidecar;
the three share one loaded model (one process). The demo writes memories on different
nodes, shows a mesh-wide recall on one node finding the others' memories (without their
text), prints the convergence time and each node's status, then keeps serving for your
own CLI calls. Ctrl-C stops it; delete .memnode-demo/ to start afresh.
"""

from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any

from memnode.api.signals import shutdown_event

DEMO_MEMORIES = [
    (0, "The staging database is backed up every night at 02:00 UTC.", {"topic": "ops"}),
    (1, "Deploys are frozen on Fridays after 15:00.", {"topic": "process"}),
    (2, "Ana prefers code reviews in the morning; reach her at ana@example.com.",
     {"topic": "people"}),
    (1, "The payment service retries failed webhooks five times with exponential backoff.",
     {"topic": "payments"}),
    (2, "Restores of the staging DB take about forty minutes.", {"topic": "ops"}),
]
DEMO_QUERY = "when do database backups run?"
NODES = 3


def _port(preferred: int) -> int:
    with socket.socket() as s:
        return preferred if s.connect_ex(("127.0.0.1", preferred)) != 0 else 0


def _credentials(data_dir: Path) -> list[Path]:
    """A federation (CA + metadata key) made on first run, and a certificate per node."""
    from federation.io.pki import init_federation, issue_node

    federation = data_dir / "federation"
    if not (federation / "ca.crt").exists():
        init_federation(federation, name="memnode demo federation")
    creds = []
    for i in range(NODES):
        out = data_dir / f"creds-node{i + 1}"
        if not (out / "node.crt").exists():
            issue_node(federation, f"node{i + 1}", out)
        creds.append(out)
    return creds


def _aside_if_clear(data_dir: Path) -> None:
    """A demo directory from before encryption at rest (its stores in clear, which a
    node refuses) is moved aside, and the demo starts afresh."""
    from memnode.storage.atrest import in_clear

    if any(in_clear(d) for d in data_dir.glob("node*")):
        moved = data_dir.with_name(f"{data_dir.name}.before-encryption-{int(time.time())}")
        data_dir.rename(moved)
        print(f"{data_dir}/ was made by a memnode without encryption at rest: moved to "
              f"{moved}/ (delete it when you like); starting afresh", flush=True)


def _start_mesh(data_dir: Path, embedder_name: str) -> list[Any]:
    from federation.io.sidecar import Sidecar
    from federation.io.sidecar_config import SidecarConfig
    from memnode.api.server import NodeServer, build_security, with_federation_key
    from memnode.config import NodeConfig
    from memnode.embedders import load_embedder
    from memnode.node.node import Node

    embedder = load_embedder(embedder_name)
    mesh: list[Any] = []
    for i, creds in enumerate(_credentials(data_dir)):
        peers = [mesh[0][1].address] if mesh else []
        sidecar_config = SidecarConfig(gossip_listen=f"127.0.0.1:{_port(7422 + 10 * i)}",
                                       peer=peers, preset="local", federation=creds)
        config = with_federation_key(NodeConfig(
            data_dir=data_dir / f"node{i + 1}", listen=f"127.0.0.1:{_port(7420 + 10 * i)}",
            embedder=embedder_name), sidecar_config)
        server = NodeServer(Node(config, embedder=embedder))
        security, deny = build_security(sidecar_config)
        assert security is not None
        sidecar = Sidecar(server.replication, sidecar_config, security, deny=deny)
        server.start()
        sidecar.start()
        mesh.append((server, sidecar))
    return mesh


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".memnode-demo"))
    parser.add_argument("--embedder", default=os.environ.get("MEMNODE_EMBEDDER", "minilm"))
    parser.add_argument("--exit-after-demo", action="store_true",
                        help="stop once the demo has run (for tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    from memnode.client import Client

    print(f"memnode demo: loading the {args.embedder} model and starting {NODES} nodes...",
          flush=True)
    started = time.perf_counter()
    _aside_if_clear(args.data_dir)
    mesh = _start_mesh(args.data_dir, args.embedder)
    clients = [Client(server.address) for server, _ in mesh]
    print(f"started in {time.perf_counter() - started:.1f} s; peers speak mutual TLS with "
          f"certificates of a federation made in {args.data_dir / 'federation'}\n")
    for n, (server, sidecar) in enumerate(mesh):
        print(f"  node{n + 1}  {server.node.node_id}  api {server.address}  "
              f"gossip {sidecar.address}")

    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not all(
        sum(p["state"] == "alive" for p in c.status().peers) == NODES - 1 for c in clients
    ):
        time.sleep(0.01)
    print(f"  every node sees its {NODES - 1} peers alive after "
          f"{time.perf_counter() - started:.1f} s")

    if sum(c.status().memories["local"] for c in clients) == 0:
        print()
        written = time.perf_counter()
        for n, text, meta in DEMO_MEMORIES:
            mid = clients[n].remember(text, meta)
            print(f"  node{n + 1} remembered {mid}")
        total = len(DEMO_MEMORIES)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            counts = [s.memories["local"] + s.memories["replicated"]
                      for s in (c.status() for c in clients)]
            if counts == [total] * NODES:
                break
            time.sleep(0.005)
        print(f"\nconverged: every node holds all {total} memories "
              f"{(time.perf_counter() - written) * 1000:.0f} ms after the first write")
    else:
        print(f"\n(memories from an earlier run are still in {args.data_dir})")

    print(f"\nnode1 recalls {DEMO_QUERY!r} across the mesh:")
    for hit in clients[0].recall(DEMO_QUERY, k=3, scope="mesh"):
        where = "own" if hit.local else f"from {hit.origin}"
        text = hit.text or "(text stays on its origin node)"
        print(f"  {hit.score:.3f}  {where:<25} {text}  {hit.metadata}")

    print()
    for n, client in enumerate(clients):
        s = client.status()
        peers = ", ".join(f"{p['node_id'][:8]}:{p['state']}" for p in s.peers)
        print(f"  node{n + 1}: {s.memories['local']} own, {s.memories['replicated']} replicas, "
              f"origins {len(s.version_vector)}, peers [{peers}]")

    stop = None if args.exit_after_demo else shutdown_event()  # before saying Ctrl-C
    print(f"\nTry it yourself while this runs (Ctrl-C stops the mesh):\n"
          f"  export MEMNODE_ADDR={mesh[1][0].address}   # node2\n"
          f"  .venv/bin/memnode remember 'the VPN certificate expires in March' --meta topic=ops\n"
          f"  MEMNODE_ADDR={mesh[0][0].address} .venv/bin/memnode recall 'VPN certificate' "
          f"--scope mesh\n"
          f"  .venv/bin/memnode status\n", flush=True)
    if stop is not None:
        stop.wait()
        print("\nstopping...", flush=True)
    for client in clients:
        client.close()
    for server, sidecar in mesh:
        sidecar.stop()
        server.stop(1.0)
    return 0


if __name__ == "__main__":
    sys.exit(main())
