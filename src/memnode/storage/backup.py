"""Backups of a node's data directory: online, consistent, verified on restore.

A backup is a directory::

    manifest.json   format, node id, model, version vector, counts, sha256 of each file
    log.db          the node's event log (SQLite's backup API, so a running node's log
                    is copied consistently), whose journal also holds every own memory
                    (text, metadata, embedding) as it was in Chroma: replaying that
                    journal rebuilds the own collection
    identity.key    the node's Ed25519 key (mode 0600): the backup IS the node's identity
    metadata.key    the federation's metadata key, when the node reads it from a file
    atrest.json     the store's key check and wrapped index key (encryption at rest)
    master.key      the master key, when it lives in the data directory (else restore
                    needs --master-key-file or $MEMNODE_MASTER_KEY)

Own memories' text and metadata stay sealed in the backup's journal, under data keys
wrapped by the master key (the log's ``data_keys``). A backup made before encryption at
rest (no atrest.json) holds them in clear: restoring it makes an encrypted store (the
way to encrypt an old data directory).

Chroma itself is not copied (its files are not safe to copy under a live writer, and
tie the backup to a Chroma version): on restore the own collection is rebuilt from the
journal and the replicas from the log's events (they hold embedding and metadata).
Taking the snapshot (the log copy and the export of own memories) runs with the node's
writes paused; checksums and the manifest are written after, with writes running again.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from federation.events import EventKind
from memnode.errors import MemnodeError
from memnode.storage.atrest import ATREST_FILE, open_atrest
from memnode.storage.chroma import ChromaStore
from memnode.storage.eventlog import LOG_FILE, EventLog
from memnode.storage.keywrap import MASTER_FILE
from memnode.storage.records import record_payload

FORMAT_VERSION = 1
MANIFEST = "manifest.json"
IDENTITY = "identity.key"
METADATA_KEY = "metadata.key"
_PAGE = 2000


class BackupError(MemnodeError):
    """A backup that cannot be made, or one that fails verification (the CLI exits 2)."""

    kind = "backup"


@dataclass(frozen=True)
class Snapshot:
    """What ``take_snapshot`` copied, while writes were paused."""

    own_memories: int
    seconds: float


def take_snapshot(event_log: EventLog, store: ChromaStore, out: Path,
                  progress: Callable[[int], None] = lambda n: None) -> Snapshot:
    """Copy the log to ``out/log.db`` and journal every own memory held in Chroma into
    the copy, ahead of the changes the log itself still had pending. Call with the
    node's writes paused (its write lock held): the two must be of one moment."""
    started = time.perf_counter()
    path = out / LOG_FILE
    event_log.backup_to(path)
    dst = sqlite3.connect(path, isolation_level=None)
    try:
        dst.execute("BEGIN")
        pending = dst.execute("SELECT op, memory_id, payload, embedding FROM journal "
                              "ORDER BY jseq").fetchall()
        dst.execute("DELETE FROM journal")
        offset = 0
        while True:
            records = store.list_local(offset, _PAGE)
            if not records:
                break
            rows = [(r.id, *record_payload(r, event_log.sealer, dst)) for r in records]
            dst.executemany("INSERT INTO journal (op, memory_id, payload, embedding) "
                            "VALUES ('put', ?, ?, ?)", rows)
            offset += len(records)
            progress(len(records))
        dst.executemany("INSERT INTO journal (op, memory_id, payload, embedding) "
                        "VALUES (?, ?, ?, ?)", pending)
        dst.execute("COMMIT")
    finally:
        dst.close()
    return Snapshot(offset, time.perf_counter() - started)


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()


def finish(out: Path, identity_file: Path, metadata_key_file: Path | None,
           snapshot: Snapshot, created_by: str) -> dict[str, Any]:
    """Add the keys and write the manifest (after the snapshot; writes may run)."""
    shutil.copyfile(identity_file, out / IDENTITY)
    (out / IDENTITY).chmod(0o600)
    if metadata_key_file is not None and metadata_key_file.is_file():
        shutil.copyfile(metadata_key_file, out / METADATA_KEY)
        (out / METADATA_KEY).chmod(0o600)
    for name in (ATREST_FILE, MASTER_FILE):
        if (identity_file.parent / name).is_file():
            shutil.copyfile(identity_file.parent / name, out / name)
            (out / name).chmod(0o600)
    log = EventLog.open(out)
    try:
        node_id = log.meta("node_id") or ""
        count = log.count_events
        manifest: dict[str, Any] = {
            "format": FORMAT_VERSION,
            "node_id": node_id,
            "model": log.meta("model"),
            "version_vector": log.version_vector(),
            "counts": {
                "own_memories": snapshot.own_memories,
                "events": count(),
                "tombstones": count(kind=EventKind.FORGET),
                "own_events": count(origin=node_id),
            },
            "created_at_ms": time.time_ns() // 1_000_000,
            "created_by": created_by,
            "snapshot_seconds": round(snapshot.seconds, 3),
        }
    finally:
        log.close()
    single = sqlite3.connect(out / LOG_FILE, isolation_level=None)
    try:
        single.execute("PRAGMA journal_mode=DELETE")  # one file, no -wal beside it
    finally:
        single.close()
    manifest["files"] = {p.name: {"sha256": sha256_file(p), "bytes": p.stat().st_size}
                         for p in sorted(out.iterdir()) if p.name != MANIFEST}
    (out / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def read_manifest(backup: Path) -> dict[str, Any]:
    path = backup / MANIFEST
    try:
        manifest = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise BackupError(f"{path}: no readable manifest ({exc})") from None
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT_VERSION:
        raise BackupError(f"{path}: unknown backup format {manifest.get('format')!r} "
                          f"(this memnode reads format {FORMAT_VERSION})")
    return manifest


def verify(backup: Path) -> dict[str, Any]:
    """The manifest, once every file matches its checksum and the log, key and
    manifest agree on who the node is. BackupError says what does not match."""
    from memnode.node.identity import load_or_create

    manifest = read_manifest(backup)
    files = manifest.get("files")
    if not isinstance(files, dict) or LOG_FILE not in files or IDENTITY not in files:
        raise BackupError(f"{backup}: the manifest lists no {LOG_FILE} or {IDENTITY}")
    present = {p.name for p in backup.iterdir() if p.name != MANIFEST}
    if present - set(files):
        raise BackupError(f"{backup}: files not in the manifest: {sorted(present - set(files))}")
    for name, expected in files.items():
        path = backup / name
        if not path.is_file():
            raise BackupError(f"{backup}: {name} is missing")
        if path.stat().st_size != expected.get("bytes") or sha256_file(path) != expected.get(
                "sha256"):
            raise BackupError(f"{backup}: {name} does not match its checksum in the "
                              "manifest: the backup was altered or damaged; refusing it")
    identity, _ = load_or_create(backup)
    if identity.node_id != manifest.get("node_id"):
        raise BackupError(f"{backup}: {IDENTITY} is node {identity.node_id}, the manifest "
                          f"says {manifest.get('node_id')}")
    conn = sqlite3.connect(f"file:{backup / LOG_FILE}?mode=ro", uri=True)
    try:
        row = conn.execute("SELECT value FROM meta WHERE key = 'node_id'").fetchone()
        vv = dict(conn.execute("SELECT origin, watermark FROM origins WHERE watermark > 0"))
    except sqlite3.DatabaseError as exc:
        raise BackupError(f"{backup}: {LOG_FILE} unreadable ({exc})") from None
    finally:
        conn.close()
    if row is None or row[0] != identity.node_id:
        raise BackupError(f"{backup}: the log belongs to another node")
    if vv != manifest.get("version_vector"):
        raise BackupError(f"{backup}: the log's version vector differs from the manifest's")
    return manifest


@dataclass(frozen=True)
class RestoreReport:
    node_id: str
    own_memories: int
    replicas: int
    moved_aside: Path | None
    seconds: float


def restore(backup: Path, data_dir: Path, *, force: bool = False,
            progress: Callable[[int], None] | None = None,
            master_key_file: Path | None = None) -> RestoreReport:
    """Verify ``backup`` and lay out ``data_dir`` from it: the log (marked *restoring*:
    the node will learn its own seq from its peers before it writes), the keys, and a
    Chroma store rebuilt from the log. A non-empty ``data_dir`` is refused unless
    ``force``; then it is moved aside (never deleted), and never while a node runs."""
    from memnode.node.restore import LEARNING, META
    from memnode.storage.durable import Durable
    from memnode.storage.lock import DataDirLock

    manifest = verify(backup)
    clear = ATREST_FILE not in manifest["files"] or json.loads(
        (backup / ATREST_FILE).read_text()).get("mode") == "clear"
    if not clear:  # the master key must open the backup before anything is laid out
        open_atrest(backup, master_key_file, os.environ)
    started = time.perf_counter()
    moved: Path | None = None
    if data_dir.exists() and any(data_dir.iterdir()):
        if not force:
            raise BackupError(f"{data_dir} is not empty; --force moves it aside first")
        with DataDirLock(data_dir):  # refuses while a node runs there
            pass
        moved = data_dir.with_name(f"{data_dir.name}.before-restore-{int(time.time())}")
        data_dir.rename(moved)
    data_dir.mkdir(parents=True, exist_ok=True)
    with DataDirLock(data_dir):
        if clear:  # made before encryption at rest: a new encrypted store
            sealer = open_atrest(data_dir, master_key_file, os.environ)
        for name in manifest["files"]:
            if not (clear and name == ATREST_FILE):
                shutil.copyfile(backup / name, data_dir / name)
            if name != LOG_FILE:
                (data_dir / name).chmod(0o600)
        if not clear:
            sealer = open_atrest(data_dir, master_key_file, os.environ)
        log = EventLog.open(data_dir, sealer=sealer)
        try:
            if clear:
                _seal_journal(log)
                log.seal_own_events(str(manifest["node_id"]))
            log.set_meta(META, LEARNING)
            node_id = manifest["node_id"]
            replicas = log.journal_replicas(node_id)
            dim = int(str(manifest["model"]).split("/")[-2])
            Durable(log, ChromaStore(data_dir, dim, sealer)).replay(progress=progress)
        finally:
            log.close()
    return RestoreReport(node_id, int(manifest["counts"]["own_memories"]), replicas, moved,
                         time.perf_counter() - started)


def _seal_journal(log: EventLog) -> None:
    """A journal written in clear (a backup from before encryption at rest) journalled
    again, sealed, a page at a time; the clear rows are deleted (``secure_delete``)."""
    conn = sqlite3.connect(log.path)
    try:
        end = conn.execute("SELECT MAX(jseq) FROM journal").fetchone()[0] or 0
    finally:
        conn.close()
    while True:
        page = [e for e in log.pending_journal(_PAGE) if e.jseq <= end]
        if not page:
            return
        log.commit_local(puts=[e.record for e in page if e.record is not None],
                         forgets=[e.memory_id for e in page if e.op == "forget"])
        log.journal_done(page[-1].jseq)  # replicas: restore journals them all again
