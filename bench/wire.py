"""Bytes on the wire: per replicated 384-dim entry, and per in-sync digest exchange.

    python -m bench wire [--memories 1000] [--quiet-seconds 10] [--json OUT]

On a real 3-node loopback mesh (plaintext, so nothing hides in TLS):

1. ``--memories`` memories (default 1,000) written as RememberBatch calls spread over
   the three nodes, with precomputed 384-dim embeddings and TEAM metadata; once all
   nodes hold all of them, the sidecars' ``memnode_federation_bytes_sent_total`` summed
   over nodes / (M * 2 replicated entries) = bytes per entry when writes come in
   batches. (Single writes: ``bench convergence``; bulk catch-up: ``bench catchup``.)
2. In-sync digest exchange, measured: a quiet window of ``--quiet-seconds`` with no
   writes: bytes sent / digest exchanges started (each exchange is a digest and its
   reply; no events may move, checked).
3. The same, serialized: a real ``federation.v1.GossipMessage`` (the transport counts
   exactly its ``ByteSize()``) holding the Digest built from node 0's real version
   vector and peers (incarnation = start time in ms, heartbeat = ticks since start), and
   its reply. At 100k memories: the same digests with each origin's seq scaled so the
   log holds 100,000 events (a mesh with 100k memories from these 3 origins) and the
   heartbeat of a node up for a day: a digest's size depends on the number of origins
   and members, not on the number of memories; only varint lengths of seqs grow.
"""

from __future__ import annotations

import argparse
import secrets
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from bench._common import RESULTS, load_average, machine_info, write_json
from bench._mesh import MeshOptions, running_mesh

DESCRIPTION = "bytes per replicated entry (batched) and per in-sync digest exchange, 1k/100k"
TARGET_ENTRY_B = 1800
TARGET_DIGEST_B = 512


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--memories", type=int, default=1000)
    parser.add_argument("--quiet-seconds", type=float, default=None,
                        help="in-sync window (default 10; quick 4)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--json", type=Path, default=None, metavar="OUT")


def say(message: str) -> None:
    print(f"[bench wire {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def digest_bytes(sender: str, address: str, vv: dict[str, int], peers: list[dict[str, Any]],
                 incarnation: int, heartbeat: int) -> dict[str, int]:
    """Serialized GossipMessage sizes of a digest and its reply, and the size model's."""
    from federation.io.wire import message_to_proto
    from federation.messages import Digest, MemberHeartbeat
    from federation.sizes import digest_size

    members = tuple(MemberHeartbeat(p["node_id"], incarnation, heartbeat, p["address"])
                    for p in peers)
    d = Digest(sender=sender, incarnation=incarnation, heartbeat=heartbeat, address=address,
               version_vector=dict(vv), members=members)
    reply = Digest(sender=sender, incarnation=incarnation, heartbeat=heartbeat,
                   address=address, version_vector=dict(vv), members=members, reply=True)
    a, b = message_to_proto(d).ByteSize(), message_to_proto(reply).ByteSize()
    return {"digest": a, "reply": b, "exchange": a + b,
            "size_model_exchange": digest_size(d) + digest_size(reply)}


def run(args: argparse.Namespace) -> int:
    from bench.catchup import vectors
    from federation.config import FederationConfig
    from memnode import Client
    from memnode.client import NewMemory, _request
    from memnode.v1 import memnode_pb2 as pb

    quick = bool(args.quick)
    m = args.memories
    quiet = args.quiet_seconds or (4.0 if quick else 10.0)
    out = args.json or RESULTS / ("wire-quick.json" if quick else "wire.json")
    work = Path(tempfile.mkdtemp(prefix="memnode-bench-wire-"))
    o = MeshOptions(nodes=3)
    result: dict[str, Any] = {
        "benchmark": "wire", "quick": quick,
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(["python -m bench", *sys.argv[1:]]),
        "machine": machine_info(), "memories": m, "mesh": o.describe(),
    }
    try:
        with running_mesh(o, work, say) as mesh:
            mesh.wait_connected(60)
            clients = [Client(a, timeout=120) for a in mesh.addrs()]
            vecs = vectors(m, seed=11)
            token = secrets.token_hex(4)
            m0 = mesh.metrics()
            per = -(-m // 3)
            for i, c in enumerate(clients):
                ks = range(i * per, min(m, (i + 1) * per))
                model = c.status().model  # the vectors are declared as the node's model's
                for lo in range(0, len(ks), 1000):
                    items = [_request(NewMemory(f"wire memory {k} {token}",
                                                {"team": "bench", "k": str(k)}),
                                      vecs[k].tobytes(), model) for k in ks[lo:lo + 1000]]
                    c._call("RememberBatch", pb.RememberBatchRequest(items=items))
            deadline = time.monotonic() + 300
            while time.monotonic() < deadline:
                st = [c.status() for c in clients]
                if all(s.memories["local"] + s.memories["replicated"] >= m for s in st) and \
                        all(s.version_vector == st[0].version_vector for s in st):
                    break
                time.sleep(0.1)
            else:
                raise TimeoutError("the mesh did not converge on the written memories")
            time.sleep(1.0)
            m1 = mesh.metrics()
            say(f"{m} memories everywhere; {quiet:g}s in-sync window")
            time.sleep(quiet)
            m2 = mesh.metrics()
            st0 = clients[0].status()
            for c in clients:
                c.close()
            gossip0 = mesh.nodes[0].gossip
            uptime = st0.uptime_seconds
    finally:
        shutil.rmtree(work, ignore_errors=True)

    def delta(a: list[dict[str, float]], b: list[dict[str, float]], key: str) -> float:
        return sum(y.get(key, 0.0) - x.get(key, 0.0) for x, y in zip(a, b, strict=True))

    sent = delta(m0, m1, "bytes_sent")
    events = delta(m0, m1, "events_sent")
    quiet_bytes = delta(m1, m2, "bytes_sent")
    exchanges = delta(m1, m2, "messages_sent.digest")
    replies = delta(m1, m2, "messages_sent.digest_reply")
    quiet_events = delta(m1, m2, "events_sent")
    tick_ms = FederationConfig.local().tick_ms
    inc = int(time.time() * 1000)
    hb = int(uptime * 1000 / tick_ms)
    at_1k = digest_bytes(st0.node_id, gossip0, st0.version_vector, st0.peers, inc, hb)
    total = sum(st0.version_vector.values()) or 1
    vv_100k = {o: max(1, round(s * 100_000 / total)) for o, s in st0.version_vector.items()}
    at_100k = digest_bytes(st0.node_id, gossip0, vv_100k, st0.peers, inc,
                           86_400 * 1000 // tick_ms)
    result.update({
        "batched_write": {
            "bytes_per_entry": round(sent / (m * 2), 1),
            "bytes_per_event_sent": round(sent / events, 1) if events else None,
            "events_sent_per_entry": round(events / (m * 2), 3),
            "note": "RememberBatch calls: each is pushed as one rumor batch; includes "
                    "digests exchanged meanwhile",
        },
        "in_sync": {
            "window_s": quiet, "bytes": int(quiet_bytes), "exchanges": int(exchanges),
            "replies": int(replies), "events_sent": int(quiet_events),
            "bytes_per_exchange": round(quiet_bytes / exchanges, 1) if exchanges else None,
        },
        "digest_1k": {**at_1k, "version_vector": st0.version_vector, "members": len(st0.peers),
                      "heartbeat": hb},
        "digest_100k": {**at_100k, "version_vector": vv_100k, "members": len(st0.peers),
                        "heartbeat": 86_400 * 1000 // tick_ms,
                        "how": "node 0's real digest with each origin's seq scaled to a "
                               "100,000-event log and a day's heartbeat; serialized by "
                               "federation.io.wire (not sent through gRPC)"},
        "targets": {"entry_bytes": TARGET_ENTRY_B, "exchange_bytes": TARGET_DIGEST_B},
        "loadavg_at_end": load_average(),
    })
    write_json(out, result)
    b, q = result["batched_write"], result["in_sync"]
    print(f"bytes per replicated entry (batched writes, {m} memories, 3 nodes): "
          f"{b['bytes_per_entry']} B ({b['events_sent_per_entry']} events sent per entry); "
          f"target <= {TARGET_ENTRY_B}\n"
          f"in-sync exchange, measured: {q['bytes_per_exchange']} B per exchange "
          f"({q['exchanges']} exchanges, {q['events_sent']} events in {quiet:g}s)\n"
          f"in-sync exchange, serialized: {at_1k['exchange']} B at {total} memories, "
          f"{at_100k['exchange']} B at 100k; target <= {TARGET_DIGEST_B}, the same at both")
    say(f"results in {out}")
    return 0
