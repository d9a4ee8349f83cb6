"""Conversion between the core's Event dataclass and its federation.v1 protobuf form.

An adapter (protobuf is a wire format, not part of the pure core). Anything a peer
could send malformed raises :class:`MalformedEvent`, never a bare protobuf error.
"""

from __future__ import annotations

from federation.effects import (
    DeleteReplica,
    DropTombstone,
    Effect,
    KeepErasures,
    OriginMarks,
    OwnSeqLearned,
    UpsertReplica,
)
from federation.errors import MalformedEvent
from federation.events import Event, EventKind, SharedPrivacy
from federation.io.convert import model_from_proto, model_to_proto, value_from_proto, value_to_proto
from federation.messages import (
    Digest,
    EventBatch,
    EventRun,
    MemberHeartbeat,
    Message,
    SignedDenyList,
    SignedErasures,
)
from federation.v1 import federation_pb2 as fpb


def event_to_proto(event: Event) -> fpb.Event:
    msg = fpb.Event(
        origin=event.origin,
        seq=event.seq,
        kind=int(event.kind),  # type: ignore[arg-type]
        local_id=event.local_id,
        timestamp_ms=event.timestamp_ms,
        privacy=int(event.privacy),  # type: ignore[arg-type]
        embedding=event.embedding,
        public_key=event.public_key,
        signature=event.signature,
    )
    if event.model is not None:
        msg.model.CopyFrom(model_to_proto(event.model))
    for key, value in event.metadata.items():
        msg.metadata[key].CopyFrom(value_to_proto(value))
    return msg


def event_from_proto(msg: fpb.Event) -> Event:
    try:
        kind = EventKind(msg.kind)
        privacy = SharedPrivacy(msg.privacy)
    except ValueError as exc:
        raise MalformedEvent(f"event {msg.origin}/{msg.seq}: {exc}") from exc
    if not msg.origin or msg.seq < 1 or not msg.local_id:
        raise MalformedEvent("event without origin, seq or local id")
    try:
        metadata = {k: value_from_proto(v) for k, v in msg.metadata.items()}
    except ValueError as exc:
        raise MalformedEvent(f"event {msg.origin}/{msg.seq}: {exc}") from exc
    model = None
    if msg.HasField("model"):
        model = model_from_proto(msg.model)
    return Event(
        origin=msg.origin,
        seq=msg.seq,
        kind=kind,
        local_id=msg.local_id,
        timestamp_ms=msg.timestamp_ms,
        privacy=privacy,
        model=model,
        embedding=msg.embedding,
        metadata=metadata,
        public_key=msg.public_key,
        signature=msg.signature,
    )


def event_to_bytes(event: Event) -> bytes:
    data: bytes = event_to_proto(event).SerializeToString()
    return data


def event_from_bytes(data: bytes) -> Event:
    msg = fpb.Event()
    try:
        msg.ParseFromString(data)
    except Exception as exc:  # protobuf raises its own DecodeError subclasses
        raise MalformedEvent(f"undecodable event ({len(data)} bytes): {exc}") from exc
    return event_from_proto(msg)


# -- messages between peers ----------------------------------------------------------------


def run_to_proto(run: EventRun) -> fpb.EventRun:
    """Events inside a run leave out their origin (the run's): 22 bytes each."""
    msg = fpb.EventRun(origin=run.origin, after_seq=run.after_seq, through_seq=run.through_seq,
                       events=[event_to_proto(e) for e in run.events])
    for event in msg.events:
        if event.origin == run.origin:
            event.ClearField("origin")
    return msg


def run_from_proto(msg: fpb.EventRun) -> EventRun:
    for event in msg.events:
        if not event.origin:
            event.origin = msg.origin
    return EventRun(msg.origin, msg.after_seq, msg.through_seq,
                    tuple(event_from_proto(e) for e in msg.events))


def batch_to_proto(batch: EventBatch) -> fpb.EventBatch:
    return fpb.EventBatch(
        sender=batch.sender, runs=[run_to_proto(r) for r in batch.runs],
        rumor_hops=batch.rumor_hops, watermarks=dict(batch.watermarks),
        gc_floors=dict(batch.gc_floors), rumor_seen=batch.rumor_seen,
    )


def batch_from_proto(msg: fpb.EventBatch) -> EventBatch:
    return EventBatch(
        sender=msg.sender, runs=tuple(run_from_proto(r) for r in msg.runs),
        rumor_hops=msg.rumor_hops, watermarks=dict(msg.watermarks),
        gc_floors=dict(msg.gc_floors), rumor_seen=msg.rumor_seen,
    )


def digest_to_proto(d: Digest) -> fpb.Digest:
    return fpb.Digest(
        sender=d.sender, incarnation=d.incarnation, heartbeat=d.heartbeat, address=d.address,
        version_vector=dict(d.version_vector),
        members=[fpb.MemberHeartbeat(node_id=m.node_id, incarnation=m.incarnation,
                                     heartbeat=m.heartbeat, address=m.address)
                 for m in d.members],
        reply=d.reply, gc_floors=dict(d.gc_floors), resync=dict(d.resync),
        deny_version=d.deny_version, erasure_version=d.erasure_version,
    )


def digest_from_proto(msg: fpb.Digest) -> Digest:
    return Digest(
        sender=msg.sender, incarnation=msg.incarnation, heartbeat=msg.heartbeat,
        address=msg.address, version_vector=dict(msg.version_vector),
        members=tuple(MemberHeartbeat(m.node_id, m.incarnation, m.heartbeat, m.address)
                      for m in msg.members),
        reply=msg.reply, gc_floors=dict(msg.gc_floors), resync=dict(msg.resync),
        deny_version=msg.deny_version, erasure_version=msg.erasure_version,
    )


def message_to_proto(message: Message) -> fpb.GossipMessage:
    if isinstance(message, Digest):
        return fpb.GossipMessage(digest=digest_to_proto(message))
    if isinstance(message, SignedDenyList):
        return fpb.GossipMessage(deny_list=fpb.SignedDenyList(
            sender=message.sender, version=message.version, payload=message.payload))
    if isinstance(message, SignedErasures):
        return fpb.GossipMessage(erasures=fpb.SignedDenyList(
            sender=message.sender, version=message.version, payload=message.payload))
    return fpb.GossipMessage(batch=batch_to_proto(message))


def message_from_proto(msg: fpb.GossipMessage) -> Message:
    """A peer's message; MalformedEvent for anything that cannot be understood."""
    body = msg.WhichOneof("body")
    if body == "digest":
        return digest_from_proto(msg.digest)
    if body == "batch":
        return batch_from_proto(msg.batch)
    if body == "deny_list":
        d = msg.deny_list
        return SignedDenyList(d.sender, d.version, d.payload)
    if body == "erasures":
        d = msg.erasures
        return SignedErasures(d.sender, d.version, d.payload)
    raise MalformedEvent("gossip message with no body")


# -- effects, between a sidecar and its node --------------------------------------------------


def marks_to_proto(m: OriginMarks) -> fpb.OriginMarks:
    return fpb.OriginMarks(origin=m.origin, watermark=m.watermark, gc_floor=m.gc_floor,
                           resyncing=m.resync_from is not None, resync_from=m.resync_from or 0)


def marks_from_proto(msg: fpb.OriginMarks) -> OriginMarks:
    return OriginMarks(msg.origin, msg.watermark, msg.gc_floor,
                       msg.resync_from if msg.resyncing else None)


def effect_to_proto(effect: Effect) -> fpb.Effect:
    if isinstance(effect, UpsertReplica):
        return fpb.Effect(upsert=event_to_proto(effect.event))
    if isinstance(effect, DeleteReplica):
        delete = fpb.DeleteReplica(memory_id=effect.memory_id)
        if effect.forget is not None:
            delete.forget.CopyFrom(event_to_proto(effect.forget))
        return fpb.Effect(delete=delete)
    if isinstance(effect, DropTombstone):
        return fpb.Effect(drop=fpb.DropTombstone(memory_id=effect.memory_id,
                                                 origin=effect.origin, seq=effect.seq))
    if isinstance(effect, OwnSeqLearned):
        return fpb.Effect(own_seq=fpb.OwnSeqLearned(watermark=effect.watermark,
                                                    learned=effect.learned))
    if isinstance(effect, KeepErasures):
        return fpb.Effect(keep_erasures=fpb.KeepErasures(record=effect.record))
    return fpb.Effect(marks=marks_to_proto(effect))


def effect_from_proto(msg: fpb.Effect) -> Effect:
    kind = msg.WhichOneof("kind")
    if kind == "upsert":
        return UpsertReplica(event_from_proto(msg.upsert))
    if kind == "delete":
        forget = event_from_proto(msg.delete.forget) if msg.delete.HasField("forget") else None
        return DeleteReplica(msg.delete.memory_id, forget)
    if kind == "drop":
        return DropTombstone(msg.drop.memory_id, msg.drop.origin, msg.drop.seq)
    if kind == "marks":
        return marks_from_proto(msg.marks)
    if kind == "own_seq":
        return OwnSeqLearned(msg.own_seq.watermark, msg.own_seq.learned)
    if kind == "keep_erasures":
        return KeepErasures(msg.keep_erasures.record)
    raise MalformedEvent("effect with no kind")
