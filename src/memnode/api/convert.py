"""Between the node's domain objects and memnode.v1 messages (the servicer's side)."""

from __future__ import annotations

from memnode.node.domain import Hit, LocalRecord, ReplicaRecord
from memnode.node.watch import Change
from memnode.v1 import memnode_pb2 as pb
from memnode.values import meta_from_proto, meta_to_proto

__all__ = ["meta_to_proto", "meta_from_proto", "hit_to_proto", "memory_to_proto",
           "change_to_proto"]


def hit_to_proto(hit: Hit) -> pb.Hit:
    msg = pb.Hit(
        id=hit.id, origin=hit.origin, score=hit.score, text=hit.text,
        privacy=int(hit.privacy), local=hit.local, created_at_ms=hit.created_at_ms,  # type: ignore[arg-type]
    )
    meta_to_proto(hit.metadata, msg.metadata)
    return msg


def memory_to_proto(record: LocalRecord | ReplicaRecord, own_id: str) -> pb.Memory:
    local = isinstance(record, LocalRecord)
    msg = pb.Memory(
        id=record.id,
        origin=record.origin if isinstance(record, ReplicaRecord) else own_id,
        text=record.text if isinstance(record, LocalRecord) else "",
        privacy=int(record.privacy),  # type: ignore[arg-type]
        local=local,
        created_at_ms=record.created_at_ms,
        updated_at_ms=record.updated_at_ms,
        expires_at_ms=record.expires_at_ms if isinstance(record, LocalRecord) else 0,
    )
    meta_to_proto(record.metadata, msg.metadata)
    return msg


def change_to_proto(change: Change) -> pb.Change:
    msg = pb.Change(origin=change.origin, seq=change.seq, kind=int(change.kind))  # type: ignore[arg-type]
    m = msg.memory
    m.id, m.origin, m.text, m.local = change.id, change.origin, change.text, change.local
    m.privacy = int(change.privacy)  # type: ignore[assignment]
    m.created_at_ms, m.updated_at_ms = change.created_at_ms, change.updated_at_ms
    meta_to_proto(change.metadata, m.metadata)
    return msg
