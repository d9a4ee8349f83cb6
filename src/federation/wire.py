"""Conversion between the core's Event dataclass and its federation.v1 protobuf form.

An adapter (protobuf is a wire format, not part of the pure core). Anything a peer
could send malformed raises :class:`MalformedEvent`, never a bare protobuf error.
"""

from __future__ import annotations

from federation.events import Event, EventKind, ModelId, SharedPrivacy
from federation.v1 import federation_pb2 as fpb
from memnode.values import value_from_proto, value_to_proto


class MalformedEvent(ValueError):
    """An event (or its bytes) that cannot be understood."""


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
        msg.model.name = event.model.name
        msg.model.dim = event.model.dim
        msg.model.fingerprint = event.model.fingerprint
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
        model = ModelId(msg.model.name, msg.model.dim, msg.model.fingerprint)
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
