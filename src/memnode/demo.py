"""``make run``: a node on loopback with embedded defaults, a short demo, then it keeps serving.

Data lives in ./.memnode-demo/ (delete it to start afresh). Ctrl-C stops the node.
"""

from __future__ import annotations

import argparse
import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path

DEMO_MEMORIES = [
    ("The staging database is backed up every night at 02:00 UTC.", {"topic": "ops"}),
    ("Deploys are frozen on Fridays after 15:00.", {"topic": "process"}),
    ("Ana prefers code reviews in the morning; reach her at ana@example.com.",
     {"topic": "people"}),
    ("The payment service retries failed webhooks five times with exponential backoff.",
     {"topic": "payments"}),
]
DEMO_QUERY = "when do database backups run?"


def _free(port: int) -> bool:
    with socket.socket() as s:
        return s.connect_ex(("127.0.0.1", port)) != 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data-dir", type=Path, default=Path(".memnode-demo"))
    parser.add_argument("--port", type=int, default=7420)
    parser.add_argument("--embedder", default=os.environ.get("MEMNODE_EMBEDDER", "minilm"))
    parser.add_argument("--exit-after-demo", action="store_true",
                        help="stop once the demo has run (for tests)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")

    from memnode.client import Client
    from memnode.config import NodeConfig
    from memnode.node import Node
    from memnode.server import NodeServer

    port = args.port if _free(args.port) else 0
    print(f"memnode demo: loading the {args.embedder} model and starting a node...", flush=True)
    started = time.perf_counter()
    config = NodeConfig(data_dir=args.data_dir / "node1", listen=f"127.0.0.1:{port}",
                        embedder=args.embedder)
    node = Node(config)
    server = NodeServer(node)
    server.start()
    print(f"node {node.node_id} serving on {server.address} "
          f"(started in {time.perf_counter() - started:.1f} s, data in {config.data_dir})\n")

    with Client(server.address) as client:
        if client.status().memories["local"] == 0:
            for text, meta in DEMO_MEMORIES:
                mid = client.remember(text, meta)
                print(f"  remembered {mid}: {client.get(mid).text}")
        else:
            print(f"  (memories from an earlier run are still in {args.data_dir})")
        print(f"\nrecall {DEMO_QUERY!r}:")
        for hit in client.recall(DEMO_QUERY, k=2):
            print(f"  {hit.score:.3f}  {hit.text}")
        status = client.status()
        print(f"\nstatus: {status.memories['local']} memories, "
              f"version vector {status.version_vector}")

    print(f"\nTry it yourself while this runs (Ctrl-C stops the node):\n"
          f"  export MEMNODE_ADDR={server.address}\n"
          f"  .venv/bin/memnode remember 'the VPN certificate expires in March' --meta topic=ops\n"
          f"  .venv/bin/memnode recall 'when does the certificate expire?'\n"
          f"  .venv/bin/memnode status\n", flush=True)
    if args.exit_after_demo:
        server.stop()
        return 0
    done = threading.Event()
    signal.signal(signal.SIGINT, lambda *_: done.set())
    signal.signal(signal.SIGTERM, lambda *_: done.set())
    done.wait()
    print("\nstopping...", flush=True)
    server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
