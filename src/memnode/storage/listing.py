"""The listing: every persisted memory's id, kept in the log, so List pages by id.

List used to page over Chroma's rows by offset and then over the index tail; a change
the indexer moved from the tail into Chroma between two pages was in neither, and a
delete before the offset shifted the rows after it (a memory skipped). The log knows
every memory the node holds the moment it is durable: this table holds their ids (own
memories, and replicas apart), written in the same transaction as the journal row or
the event that adds or removes them. List reads ids in order after the last one it gave
(keyset paging: nothing shifts), then the records through the tail and Chroma.

A log from before the table is filled once at start (:func:`fill`): own ids from
Chroma and the pending journal, replicas from the log's events.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

__all__ = ["SCHEMA", "add", "after", "fill", "is_filled", "remove"]

SCHEMA = ("CREATE TABLE IF NOT EXISTS listing (replica INTEGER NOT NULL, "
          "memory_id TEXT NOT NULL, PRIMARY KEY (replica, memory_id)) WITHOUT ROWID")
#: The meta row saying the table holds every memory (set at creation, or by fill).
FILLED = "INSERT OR REPLACE INTO meta VALUES ('listing', 'filled')"


def add(c: sqlite3.Connection, memory_id: str, replica: bool) -> None:
    c.execute("INSERT OR IGNORE INTO listing VALUES (?, ?)", (int(replica), memory_id))


def remove(c: sqlite3.Connection, memory_id: str, replica: bool) -> None:
    c.execute("DELETE FROM listing WHERE replica = ? AND memory_id = ?",
              (int(replica), memory_id))


def after(c: sqlite3.Connection, replica: bool, last_id: str, limit: int) -> list[str]:
    """Up to ``limit`` ids after ``last_id`` in order ("" for the first)."""
    rows = c.execute("SELECT memory_id FROM listing WHERE replica = ? AND memory_id > ? "
                     "ORDER BY memory_id LIMIT ?", (int(replica), last_id, limit))
    return [r[0] for r in rows]


def is_filled(c: sqlite3.Connection) -> bool:
    return c.execute("SELECT 1 FROM meta WHERE key = 'listing'").fetchone() is not None


def fill(c: sqlite3.Connection, own_ids: Iterable[str], own_origin: str,
         forget_kind: int) -> None:
    """Fill the table of a log from before it: ``own_ids`` (what Chroma and the pending
    journal hold), replicas from the live events of other origins."""
    c.execute("DELETE FROM listing")
    c.executemany("INSERT OR IGNORE INTO listing VALUES (0, ?)", ((m,) for m in own_ids))
    c.execute("INSERT OR IGNORE INTO listing SELECT 1, memory_id FROM events "
              "WHERE kind != ? AND substr(memory_id, 1, ?) != ?",
              (forget_kind, len(own_origin) + 1, own_origin + "/"))
    c.execute(FILLED)
