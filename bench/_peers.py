"""The side-by-side peers: simple replicating processes that hold the same memories as
memnode's replicas (id -> 384-dim float32 embedding bytes + keyed-hash metadata).

    python -m bench._peers --mode naive --name p0 --interval 1.0 --seconds 600
    python -m bench._peers --mode crdt --name p0 --seconds 600

Each prints one JSON line {"control": PORT} and serves, on 127.0.0.1, a small HTTP
control API for the harness: ``POST /peers`` (JSON list of the others' control
``host:port``; crdt: their data ``host:port``), ``POST /write`` (JSON {id, embedding
(base64), meta}; answered once applied), ``GET /vv`` ({origin: highest contiguous seq},
ids being ``origin/seq``), ``GET /stats`` (bytes sent), ``POST /stop``.

- ``naive``: what a simple sync agent does: every ``--interval`` seconds pull the full
  state of every peer (``GET /state``: every entry, binary) and merge what is new.
  State in memory.
- ``crdt``: pycrdt (Yrs, the Rust port of Yjs): one ``Doc`` with a ``Map`` of id ->
  {"e": bytes, "m": metadata}; every local transaction's incremental update is sent at
  once to every peer over one TCP connection each (4-byte length + update), and applied
  there (a full mesh, as y-webrtc does; no relaying needed). State in memory.

Both keep state in RAM only (memnode's writes are durable, fsynced and indexed in
Chroma before they count): a generous comparison for them. Every loop is bounded by
``--seconds``.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import json
import socket
import struct
import sys
import threading
import time
import zlib
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Tracker:
    """Per origin, the highest contiguous seq seen (ids are ``origin/seq``)."""

    def __init__(self) -> None:
        self.wm: dict[str, int] = {}
        self.pending: dict[str, set[int]] = {}
        self.lock = threading.Lock()

    def add(self, memory_id: str) -> None:
        origin, _, seq_s = memory_id.rpartition("/")
        seq = int(seq_s)
        with self.lock:
            wm = self.wm.get(origin, 0)
            if seq <= wm:
                return
            pend = self.pending.setdefault(origin, set())
            pend.add(seq)
            while wm + 1 in pend:
                wm += 1
                pend.discard(wm)
            self.wm[origin] = wm

    def vv(self) -> dict[str, int]:
        with self.lock:
            return dict(self.wm)


class Peer:
    def __init__(self, name: str, interval: float) -> None:
        self.name = name
        self.interval = interval
        self.tracker = Tracker()
        self.peers: list[str] = []
        self.bytes_sent = 0
        self.messages_sent = 0
        self.stop = threading.Event()

    def write(self, memory_id: str, embedding: bytes, meta: dict[str, Any]) -> None:
        raise NotImplementedError

    def stats(self) -> dict[str, Any]:
        return {"bytes_sent": self.bytes_sent, "messages_sent": self.messages_sent}


class NaivePeer(Peer):
    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name, interval)
        self.entries: dict[str, tuple[bytes, str]] = {}
        self.lock = threading.Lock()
        self.pulls = 0

    def write(self, memory_id: str, embedding: bytes, meta: dict[str, Any]) -> None:
        with self.lock:
            self.entries[memory_id] = (embedding, json.dumps(meta, sort_keys=True))
        self.tracker.add(memory_id)

    def state(self) -> bytes:
        with self.lock:
            items = list(self.entries.items())
        parts = [struct.pack("!I", len(items))]
        for memory_id, (emb, meta) in items:
            i, m = memory_id.encode(), meta.encode()
            parts.append(struct.pack("!HIH", len(i), len(emb), len(m)) + i + emb + m)
        return b"".join(parts)

    def merge(self, data: bytes) -> None:
        (count,) = struct.unpack_from("!I", data, 0)
        off = 4
        new = []
        for _ in range(count):
            li, le, lm = struct.unpack_from("!HIH", data, off)
            off += 8
            memory_id = data[off:off + li].decode()
            off += li
            emb = data[off:off + le]
            off += le
            meta = data[off:off + lm].decode()
            off += lm
            new.append((memory_id, emb, meta))
        with self.lock:
            fresh = [(i, e, m) for i, e, m in new if i not in self.entries]
            for i, e, m in fresh:
                self.entries[i] = (e, m)
        for i, _, _ in fresh:
            self.tracker.add(i)

    def run(self) -> None:
        # a fixed phase per peer, as independent agents would have
        self.stop.wait(self.interval * (zlib.crc32(self.name.encode()) % 100) / 100)
        while not self.stop.is_set():
            started = time.monotonic()
            for peer in list(self.peers):
                host, _, port = peer.rpartition(":")
                try:
                    conn = http.client.HTTPConnection(host, int(port), timeout=10)
                    conn.request("GET", "/state")
                    body = conn.getresponse().read()
                    conn.close()
                    self.merge(body)
                    self.pulls += 1
                except OSError:
                    continue
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - started)))


class CrdtPeer(Peer):
    def __init__(self, name: str, interval: float) -> None:
        super().__init__(name, interval)
        from pycrdt import Doc, Map

        self.doc: Any = Doc()
        self.map: Any = self.doc.get("memories", type=Map)
        self.lock = threading.Lock()
        self.outbox: list[bytes] = []
        self.remote = False
        self.doc.observe(self._on_update)
        self.map.observe(self._on_keys)
        self.socks: list[socket.socket] = []
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.data_port = self.listener.getsockname()[1]

    def _on_update(self, event: Any) -> None:
        if not self.remote:
            self.outbox.append(bytes(event.update))

    def _on_keys(self, event: Any) -> None:
        for key in event.keys:
            self.tracker.add(key)

    def connect(self) -> None:
        for peer in self.peers:
            host, _, port = peer.rpartition(":")
            s = socket.create_connection((host, int(port)), timeout=10)
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            self.socks.append(s)

    def write(self, memory_id: str, embedding: bytes, meta: dict[str, Any]) -> None:
        with self.lock:
            with self.doc.transaction():
                self.map[memory_id] = {"e": embedding, "m": meta}
            updates, self.outbox = self.outbox, []
        for update in updates:
            frame = struct.pack("!I", len(update)) + update
            for s in self.socks:
                s.sendall(frame)
                self.bytes_sent += len(frame)
                self.messages_sent += 1

    def serve(self) -> None:
        self.listener.settimeout(1.0)
        while not self.stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            threading.Thread(target=self._receive, args=(conn,), daemon=True).start()

    def _receive(self, conn: socket.socket) -> None:
        f = conn.makefile("rb")
        while not self.stop.is_set():
            head = f.read(4)
            if len(head) < 4:
                return
            (size,) = struct.unpack("!I", head)
            update = f.read(size)
            with self.lock:
                self.remote = True
                try:
                    self.doc.apply_update(update)
                finally:
                    self.remote = False


def control(peer: Peer) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args: Any) -> None:
            pass

        def _reply(self, body: bytes, ctype: str = "application/json") -> None:
            self.send_response(200)
            self.send_header("Content-Type", ctype)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self) -> None:  # noqa: N802
            if self.path == "/vv":
                self._reply(json.dumps(peer.tracker.vv()).encode())
            elif self.path == "/stats":
                self._reply(json.dumps(peer.stats()).encode())
            elif self.path == "/state" and isinstance(peer, NaivePeer):
                body = peer.state()
                peer.bytes_sent += len(body)
                peer.messages_sent += 1
                self._reply(body, "application/octet-stream")
            else:
                self.send_error(404)

        def do_POST(self) -> None:  # noqa: N802
            body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
            if self.path == "/write":
                w = json.loads(body)
                peer.write(w["id"], base64.b64decode(w["embedding"]), w["meta"])
                self._reply(b"{}")
            elif self.path == "/peers":
                peer.peers = json.loads(body)
                if isinstance(peer, CrdtPeer):
                    peer.connect()
                elif isinstance(peer, NaivePeer):
                    threading.Thread(target=peer.run, daemon=True).start()
                self._reply(b"{}")
            elif self.path == "/stop":
                peer.stop.set()
                self._reply(b"{}")
            else:
                self.send_error(404)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    return server


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--mode", choices=("naive", "crdt"), required=True)
    parser.add_argument("--name", required=True)
    parser.add_argument("--interval", type=float, default=1.0)
    parser.add_argument("--seconds", type=float, default=600.0)
    args = parser.parse_args(argv)
    peer: Peer = (NaivePeer if args.mode == "naive" else CrdtPeer)(args.name, args.interval)
    server = control(peer)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    ready: dict[str, Any] = {"control": server.server_address[1]}
    if isinstance(peer, CrdtPeer):
        threading.Thread(target=peer.serve, daemon=True).start()
        ready["data"] = peer.data_port
    print(json.dumps(ready), flush=True)
    peer.stop.wait(args.seconds)
    peer.stop.set()
    server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
