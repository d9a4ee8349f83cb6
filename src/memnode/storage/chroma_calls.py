"""Where Chroma runs: the few collection calls :class:`ChromaStore` makes, in this process
(:class:`InlineChroma`) or in a child process of its own (:class:`ChromaProcess`).

Why a child process: chromadb 1.5's writes (``upsert``, ``add``, ``delete``) hold
Python's GIL for their whole duration (its Rust bindings release it for ``get`` and
``query`` only), and an index batch of a few hundred vectors takes 50-150 ms of wall
time on 2 cores, far more when the cores are busy. In the node's process every request
handler, the group commit and the sidecar's gossip threads stop for that long: at 16
nodes on 2 cores, request -> ack p99 was 142-287 ms with the indexer running and
35-39 ms with it held back. In a child the node's Python never waits on Chroma's
writes; a recall waits only for its own query.

What crosses to the child is what Chroma stores: ids, vectors and the metadata the
store writes (sealed text and keyed hashes when the store is encrypted at rest), never
a clear text of a sealed store. Calls are pickled over a few socket pairs (one call in
flight on each, so concurrent recalls do not queue behind an index batch in the pipe).
The child exits when the node closes them, or when the node dies (end of file on every
socket). A child that ends unexpectedly is started again by the next call, against the
same files, and a call it cut short is made once more there (every call the store makes
is idempotent); a call unanswered for ``CALL_SECONDS`` (a hung Chroma) ends the child
the same way. A data directory's Chroma is opened by one child at a time
(``memnode-owner.lock`` in it: a child still finishing a batch for a node that was
killed holds back its successor until it is done). The child runs at the node's
priority: at nice +10, 32 nodes on 2 cores (saturated) starved their children and
propagated 99% with a p99 of 8.8 s, against 100% and 0.4 s at the same priority.
"""

from __future__ import annotations

import fcntl
import logging
import os
import queue
import signal
import socket
import subprocess
import sys
import threading
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

log = logging.getLogger("memnode.storage")

LOCAL = "memories"
REPLICAS = "replicas"
COLLECTIONS = (LOCAL, REPLICAS)
OPS = frozenset({"upsert", "delete", "get", "query", "count"})
OWNER_LOCK = "memnode-owner.lock"
_CONNECTIONS = 4
_START_SECONDS = 120.0
#: A call unanswered this long is taken as a hung Chroma (chromadb 1.5 can wait 1,000 s
#: on a lock after a write that ran out of disk): the child is killed and the call made
#: once more in a new one. The largest call the node makes (an index batch of
#: --index-batch-max vectors) takes seconds.
CALL_SECONDS = 120.0


class ChromaError(RuntimeError):
    """A Chroma call failed (its type and message are in the text), Chroma could not open
    its directory, or Chroma's process ended during the call."""


class _ChildEnded(ChromaError):
    pass


class ChromaCalls(Protocol):
    batch_size: int

    def call(self, collection: str, op: str, **kwargs: Any) -> Any: ...

    def close(self) -> None: ...


class InlineChroma:
    """Chroma's client in this process: the two collections, cosine space, explicit
    embeddings (``embedding_function=None``: Chroma's default one downloads a model),
    telemetry off. Raises :class:`ChromaError` for a directory Chroma cannot open."""

    def __init__(self, path: Path) -> None:
        os.environ.setdefault("ANONYMIZED_TELEMETRY", "False")
        import chromadb
        from chromadb.config import Settings

        try:
            self._client = chromadb.PersistentClient(
                path=str(path), settings=Settings(anonymized_telemetry=False))
            config: Any = {"hnsw": {"space": "cosine"}}
            self._collections = {name: self._client.get_or_create_collection(
                name, embedding_function=None, configuration=config) for name in COLLECTIONS}
            self.batch_size = int(self._client.get_max_batch_size())
        except Exception as exc:  # Chroma raises many types for a damaged directory
            raise ChromaError(f"{path}: Chroma store unreadable ({exc})") from exc

    def call(self, collection: str, op: str, **kwargs: Any) -> Any:
        if collection not in self._collections or op not in OPS:
            raise ChromaError(f"no Chroma call {collection}.{op}")
        try:
            return getattr(self._collections[collection], op)(**kwargs)
        except Exception as exc:
            raise ChromaError(f"{type(exc).__name__}: {exc}") from exc

    def close(self) -> None:
        """Release Chroma's files and threads (its system stops with its last client)."""
        self._client.close()  # type: ignore[attr-defined]  # on Client, not ClientAPI


class _Child:
    """One running child: its process and its connections (each idle one in ``idle``)."""

    def __init__(self, path: Path) -> None:
        pairs = [socket.socketpair() for _ in range(_CONNECTIONS)]
        theirs = [b.fileno() for _, b in pairs]
        env = dict(os.environ)
        env.pop("GLIBC_TUNABLES", None)  # it holds no clear text to scrub (cli.heapscrub)
        try:
            # -P: this file runs alone, with stdlib and chromadb only (no memnode, grpc)
            self.proc = subprocess.Popen(
                [sys.executable, "-P", __file__, str(path), ",".join(map(str, theirs))],
                pass_fds=theirs, env=env, stdin=subprocess.DEVNULL)
        finally:
            for _, b in pairs:
                b.close()
        self.conns = [Connection(a.detach()) for a, _ in pairs]
        self.idle: queue.SimpleQueue[Connection] = queue.SimpleQueue()
        self.dead = False
        try:
            if not self.conns[0].poll(_START_SECONDS):
                raise ChromaError(f"Chroma's process did not start in {_START_SECONDS:.0f}s")
            status, value = self.conns[0].recv()
        except (EOFError, OSError, ChromaError) as exc:
            self.close()
            raise ChromaError(f"{path}: Chroma's process failed to start "
                              f"(exit {self.proc.returncode}): {exc}") from exc
        if status != "ready":
            self.close()
            raise ChromaError(str(value))
        self.batch_size: int = value["batch_size"]
        for conn in self.conns:
            self.idle.put(conn)

    def call(self, collection: str, op: str, kwargs: dict[str, Any],
             timeout: float) -> Any:
        conn = self.idle.get()
        try:
            conn.send((collection, op, kwargs))
            if not conn.poll(timeout):
                log.error("Chroma's process has not answered %s.%s in %.0fs; killing it",
                          collection, op, timeout)
                self.proc.kill()
                raise EOFError("killed")
            status, value = conn.recv()
        except (EOFError, OSError) as exc:
            self.dead = True
            raise _ChildEnded(f"Chroma's process ended during {collection}.{op}") from exc
        finally:
            self.idle.put(conn)  # a dead one too: whoever takes it next fails at once
        if status != "ok":
            raise ChromaError(value)
        return value

    def alive(self) -> bool:
        return not self.dead and self.proc.poll() is None

    def close(self, timeout: float = 60.0) -> None:
        """End of file on every connection: the child finishes its calls and exits."""
        for conn in self.conns:
            conn.close()
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("Chroma's process still busy after %.0fs; killing it", timeout)
            self.proc.kill()
            self.proc.wait()


class ChromaProcess:
    """Chroma in a child process (module docstring). Thread-safe; ``restarts`` counts
    children started again after one ended unexpectedly."""

    def __init__(self, path: Path, call_seconds: float = CALL_SECONDS) -> None:
        self.path = path
        self.call_seconds = call_seconds
        self._lock = threading.Lock()
        self._child = _Child(path)
        self.batch_size = self._child.batch_size
        self.restarts = 0

    @property
    def pid(self) -> int:
        return self._child.proc.pid

    def _current(self) -> _Child:
        child = self._child
        if child.alive():
            return child
        with self._lock:
            if self._child is child:
                log.warning("Chroma's process ended (exit %s); starting it again",
                            child.proc.poll())
                child.close(timeout=5.0)
                self._child = _Child(self.path)
                self.restarts += 1
            return self._child

    def call(self, collection: str, op: str, **kwargs: Any) -> Any:
        """One call; if the child ends during it, once more in a new child (every call
        the store makes is idempotent: upserts and deletes by id, and reads)."""
        try:
            return self._current().call(collection, op, kwargs, self.call_seconds)
        except _ChildEnded:
            return self._current().call(collection, op, kwargs, self.call_seconds)

    def close(self) -> None:
        with self._lock:
            self._child.close()


def serve(path: Path, fds: list[int]) -> int:
    """The child's main: open Chroma at ``path`` and answer calls on the connections
    ``fds`` until every one of them reaches end of file."""
    conns = [Connection(fd) for fd in fds]
    # Ctrl-C in a terminal signals the whole process group: the node shuts down (and
    # still indexes through this process), then closes the sockets, which ends it
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    path.mkdir(parents=True, exist_ok=True)
    owner = open(path / OWNER_LOCK, "a")  # noqa: SIM115  # held until the process ends
    fcntl.flock(owner, fcntl.LOCK_EX)
    try:
        db = InlineChroma(path)
        ready: tuple[str, Any] = ("ready", {"batch_size": db.batch_size})
    except Exception as exc:
        conns[0].send(("error", str(exc)))
        return 1
    conns[0].send(ready)
    threads = [threading.Thread(target=_answer, args=(db, conn), daemon=True,
                                name=f"chroma-calls-{i}") for i, conn in enumerate(conns)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    db.close()
    return 0


def _answer(db: InlineChroma, conn: Connection) -> None:
    while True:
        try:
            collection, op, kwargs = conn.recv()
        except (EOFError, OSError):
            return
        try:
            reply: tuple[str, Any] = ("ok", db.call(collection, op, **kwargs))
        except Exception as exc:  # ChromaError, or a call the store never makes
            reply = ("error", str(exc))
        try:
            conn.send(reply)
        except OSError:
            return


if __name__ == "__main__":
    sys.exit(serve(Path(sys.argv[1]), [int(fd) for fd in sys.argv[2].split(",")]))
