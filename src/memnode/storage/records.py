"""How the log's journal holds a local record (text, metadata, embedding).

With a sealer (encryption at rest, :mod:`memnode.storage.atrest`) the payload holds the
text and metadata sealed under the memory's data key (``sealed``); a store kept in
clear, or a backup made before encryption at rest, holds them as ``text``/``metadata``.
"""

from __future__ import annotations

import json
import sqlite3
import struct
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from federation.events import Event, SharedPrivacy
from federation.io.wire import event_from_bytes, event_to_bytes
from memnode.errors import DataDirError
from memnode.node.domain import LocalRecord, Privacy
from memnode.storage import listing

if TYPE_CHECKING:
    from memnode.storage.atrest import Sealer


@dataclass(frozen=True)
class JournalEntry:
    jseq: int
    op: Literal["put", "forget", "replica"]
    memory_id: str
    record: LocalRecord | None  # for "put" (None: forgotten since, its key is gone)


def record_payload(record: LocalRecord, sealer: Sealer | None = None,
                   c: sqlite3.Connection | None = None) -> tuple[str, bytes]:
    """The journal row of ``record``; with ``sealer``, its data key is made (in ``c``'s
    transaction) when the memory has none yet."""
    data: dict[str, object] = {"privacy": int(record.privacy),
                               "created": record.created_at_ms,
                               "updated": record.updated_at_ms}
    if sealer is not None:
        assert c is not None
        key = sealer.key_for_write(c, record.id)
        data["sealed"] = sealer.seal(key, record.id, record.text, record.metadata)
    else:
        data.update(text=record.text, metadata=record.metadata)
    payload = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return payload, np.ascontiguousarray(record.embedding, dtype="<f4").tobytes()


def journal_put(c: sqlite3.Connection, record: LocalRecord, sealer: Sealer | None) -> None:
    payload, blob = record_payload(record, sealer, c)
    c.execute("INSERT INTO journal (op, memory_id, payload, embedding) VALUES ('put',?,?,?)",
              (record.id, payload, blob))
    listing.add(c, record.id, replica=False)


def journal_forget(c: sqlite3.Connection, memory_id: str, sealer: Sealer | None) -> None:
    """Journal the forget and destroy the memory's data key, in one transaction."""
    c.execute("INSERT INTO journal (op, memory_id) VALUES ('forget', ?)", (memory_id,))
    listing.remove(c, memory_id, replica=False)
    if sealer is not None:
        sealer.destroy(c, memory_id)


_SEALED_EVENT = b"\x00sealed\x00"  # a protobuf message never starts with a 0 byte


def event_body(c: sqlite3.Connection, event: Event, sealer: Sealer | None) -> bytes:
    """How the log stores an event: an own PUBLIC event with metadata (clear values)
    sealed under its memory's data key when ``sealer`` is given, else as on the wire."""
    body = event_to_bytes(event)
    if sealer is None or event.privacy != SharedPrivacy.PUBLIC or not event.metadata:
        return body
    key = sealer.key_for_write(c, event.memory_id)
    mid = event.memory_id.encode()
    return (_SEALED_EVENT + struct.pack(">H", len(mid)) + mid
            + sealer.seal_bytes(key, event.memory_id, body))


def event_of(c: sqlite3.Connection | None, body: bytes, sealer: Sealer | None) -> Event:
    """The event a log row holds (see ``event_body``)."""
    if not body.startswith(_SEALED_EVENT):
        return event_from_bytes(body)
    start = len(_SEALED_EVENT) + 2
    (size,) = struct.unpack(">H", body[start - 2 : start])
    memory_id = body[start : start + size].decode()
    key = None if sealer is None else sealer.keys([memory_id], c).get(memory_id)
    if sealer is None or key is None:
        raise DataDirError(f"the event of {memory_id} is sealed and its key is missing")
    return event_from_bytes(sealer.open_bytes(key, memory_id, body[start + size :]))


def record_from_row(memory_id: str, payload: str, embedding: bytes,
                    keys: dict[str, bytes] | None = None,
                    sealer: Sealer | None = None) -> LocalRecord | None:
    """The record of a journal row; None when it is sealed and its key is gone."""
    data = json.loads(payload)
    if "sealed" in data:
        if sealer is None or keys is None:
            raise ValueError("a sealed journal row needs the store's sealer")
        key = keys.get(memory_id)
        if key is None:
            return None
        text, metadata = sealer.open(key, memory_id, data["sealed"])
    else:
        text, metadata = data["text"], data["metadata"]
    return LocalRecord(
        id=memory_id,
        text=text,
        embedding=np.frombuffer(embedding, dtype="<f4").copy(),
        metadata=metadata,
        privacy=Privacy(data["privacy"]),
        created_at_ms=data["created"],
        updated_at_ms=data["updated"],
    )
