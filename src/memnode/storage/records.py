"""How the log's journal holds a local record (text, metadata, embedding)."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Literal

import numpy as np

from memnode.node.domain import LocalRecord, Privacy


@dataclass(frozen=True)
class JournalEntry:
    jseq: int
    op: Literal["put", "forget", "replica"]
    memory_id: str
    record: LocalRecord | None  # for "put"


def record_payload(record: LocalRecord) -> tuple[str, bytes]:
    payload = json.dumps(
        {
            "text": record.text,
            "metadata": record.metadata,
            "privacy": int(record.privacy),
            "created": record.created_at_ms,
            "updated": record.updated_at_ms,
        },
        ensure_ascii=False,
        separators=(",", ":"),
    )
    return payload, np.ascontiguousarray(record.embedding, dtype="<f4").tobytes()


def record_from_row(memory_id: str, payload: str, embedding: bytes) -> LocalRecord:
    data = json.loads(payload)
    return LocalRecord(
        id=memory_id,
        text=data["text"],
        embedding=np.frombuffer(embedding, dtype="<f4").copy(),
        metadata=data["metadata"],
        privacy=Privacy(data["privacy"]),
        created_at_ms=data["created"],
        updated_at_ms=data["updated"],
    )
