"""The log's SQLite database: its schema and how it is opened (``<data_dir>/log.db``).

Opened in WAL mode with ``secure_delete`` (deleted rows are zeroed, not left in pages),
checked (``quick_check``, the schema version) before use: a database that cannot be read
is reported (DataDirError), never reset. What the tables hold: :mod:`memnode.storage.eventlog`.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path

from memnode.errors import DataDirError
from memnode.storage import listing

__all__ = ["LOG_FILE", "SCHEMA_VERSION", "connect"]

SCHEMA_VERSION = "2"
#: Schema versions this code opens, and what opening one of them does first. 1 -> 2: the
#: listing table (memnode.storage.listing), filled at the next start; a log at 2 is refused
#: by code from before it, which would not keep the listing.
_MIGRATES = {"1": "UPDATE meta SET value = '2' WHERE key = 'schema'"}
LOG_FILE = "log.db"

_SCHEMA = """
CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE journal (
    jseq INTEGER PRIMARY KEY AUTOINCREMENT,
    op TEXT NOT NULL CHECK (op IN ('put', 'forget', 'replica')),
    memory_id TEXT NOT NULL,
    payload TEXT,
    embedding BLOB
);
CREATE TABLE events (
    origin TEXT NOT NULL,
    seq INTEGER NOT NULL,
    memory_id TEXT NOT NULL,
    kind INTEGER NOT NULL,
    body BLOB NOT NULL,
    PRIMARY KEY (origin, seq)
) WITHOUT ROWID;
CREATE INDEX events_by_memory ON events (memory_id);
CREATE TABLE origins (
    origin TEXT PRIMARY KEY,
    watermark INTEGER NOT NULL DEFAULT 0,
    gc_floor INTEGER NOT NULL DEFAULT 0,
    resync_from INTEGER
) WITHOUT ROWID;
"""


def connect(path: Path, synchronous: str = "FULL") -> sqlite3.Connection:
    """The log database at ``path``, created with the schema when new."""
    fresh = not path.exists()
    try:
        conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
        conn.execute("PRAGMA journal_mode=WAL")
        conn.execute(f"PRAGMA synchronous={synchronous}")
        # Deleted rows (journalled text, superseded events) are zeroed, not left in pages.
        conn.execute("PRAGMA secure_delete=ON")
        if fresh:  # one transaction: a crash in between leaves no log without a schema row
            conn.executescript("BEGIN;" + _SCHEMA + listing.SCHEMA + ";" + listing.FILLED
                               + ";INSERT INTO meta VALUES ('schema', '" + SCHEMA_VERSION
                               + "');COMMIT;")
        # restored nodes: own memories taken back from peers without their text
        conn.execute("CREATE TABLE IF NOT EXISTS lost_texts "
                     "(memory_id TEXT PRIMARY KEY, seq INTEGER NOT NULL)")
        conn.execute(listing.SCHEMA)  # a log from before it: filled at start
        conn.execute("CREATE TABLE IF NOT EXISTS data_keys "
                     "(memory_id TEXT PRIMARY KEY, wrapped BLOB NOT NULL) WITHOUT ROWID")
        check = conn.execute("PRAGMA quick_check").fetchone()[0]
        if check != "ok":
            raise DataDirError(f"{path}: log is corrupt ({check}); refusing to start")
        row = conn.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
    except sqlite3.DatabaseError as exc:
        raise DataDirError(f"{path}: log is unreadable ({exc}); refusing to start") from exc
    if row is not None and row[0] in _MIGRATES:
        conn.execute(_MIGRATES[row[0]])
        row = (SCHEMA_VERSION,)
    if row is None or row[0] != SCHEMA_VERSION:
        raise DataDirError(f"{path}: unknown log schema {row!r}; refusing to start")
    return conn
