"""``memnode compact``: rewrite a stopped node's stores so deleted data leaves the disk.

Chroma's deletes are soft in its files (bytes of forgotten text, metadata and vectors
can stay in its SQLite pages, WAL and HNSW segments). Compaction copies every live
record into a fresh Chroma directory, swaps it in and removes the old one, then
VACUUMs the node's log. Run it while the node is stopped (the data directory's lock
file makes sure of that).
"""

from __future__ import annotations

import shutil
import sqlite3
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from memnode.errors import DataDirError
from memnode.storage.chroma import CHROMA_DIR, LOCAL, REPLICAS
from memnode.storage.eventlog import LOG_FILE
from memnode.storage.lock import DataDirLock

_PAGE = 2000


@dataclass(frozen=True)
class CompactReport:
    local: int
    replicas: int
    bytes_before: int
    bytes_after: int


def _size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _copy(source: Any, target: Any) -> int:
    copied = 0
    offset = 0
    while True:
        got = source.get(limit=_PAGE, offset=offset,
                         include=["embeddings", "documents", "metadatas"])
        if not got["ids"]:
            return copied
        target.add(ids=got["ids"], embeddings=got["embeddings"],
                   documents=got["documents"], metadatas=got["metadatas"])
        copied += len(got["ids"])
        offset += len(got["ids"])


def compact(data_dir: Path) -> CompactReport:
    import chromadb
    from chromadb.api.shared_system_client import SharedSystemClient
    from chromadb.config import Settings

    chroma = data_dir / CHROMA_DIR
    if not chroma.is_dir():
        raise DataDirError(f"{data_dir} holds no Chroma store")
    with DataDirLock(data_dir):
        before = _size(data_dir)
        fresh = data_dir / (CHROMA_DIR + ".compact")
        old = data_dir / (CHROMA_DIR + ".old")
        shutil.rmtree(fresh, ignore_errors=True)
        settings = Settings(anonymized_telemetry=False)
        src = chromadb.PersistentClient(path=str(chroma), settings=settings)
        dst = chromadb.PersistentClient(path=str(fresh), settings=settings)
        counts = []
        for name in (LOCAL, REPLICAS):
            source = src.get_or_create_collection(name, embedding_function=None)
            target = dst.get_or_create_collection(
                name, embedding_function=None, configuration={"hnsw": {"space": "cosine"}})
            counts.append(_copy(source, target))
        del src, dst, source, target
        SharedSystemClient.clear_system_cache()
        shutil.rmtree(old, ignore_errors=True)
        chroma.rename(old)
        fresh.rename(chroma)
        shutil.rmtree(old)
        log = sqlite3.connect(data_dir / LOG_FILE)
        try:
            log.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            log.execute("VACUUM")
        finally:
            log.close()
        return CompactReport(counts[0], counts[1], before, _size(data_dir))
