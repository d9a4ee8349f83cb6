"""A size model of messages on the wire, without protobuf.

The core must not depend on protobuf, yet it bounds batches in bytes and the
simulator reports bytes. So sizes are computed with protobuf's own encoding rules
(proto3: a 1-byte tag for field numbers < 16, varint lengths, fields at their
default value omitted, map entries as nested key/value messages with both written)
over the field numbers of ``proto/federation/v1/federation.proto`` (Event, EventRun,
EventBatch with rumor_hops 3 / watermarks 4 / gc_floors 5, Digest, MemberHeartbeat).
``tests/federation/test_fed_sizes.py`` checks the result against real serialization.

Transport framing (HTTP/2, gRPC's 5-byte prefix, TLS) is not counted.
"""

from __future__ import annotations

from collections.abc import Mapping

from federation.events import Event, MetaValue
from federation.messages import (
    Digest,
    EventBatch,
    EventRun,
    Message,
    SignedDenyList,
    SignedErasures,
)


def varint_len(value: int) -> int:
    """Bytes of a protobuf varint (negative int64 values take 10 bytes)."""
    if 0 <= value < 0x80:
        return 1
    if value < 0:
        return 10
    return (value.bit_length() + 6) // 7


def _len_field(payload: int) -> int:
    """A length-delimited field (tag < 16) carrying ``payload`` bytes."""
    return (2 if payload < 0x80 else 1 + varint_len(payload)) + payload


def _str_len(value: str) -> int:
    return len(value) if value.isascii() else len(value.encode("utf-8"))


def _str_field(value: str) -> int:
    if not value:
        return 0
    n = len(value) if value.isascii() else len(value.encode("utf-8"))
    return (2 if n < 0x80 else 1 + varint_len(n)) + n


def _bytes_field(value: bytes) -> int:
    return _len_field(len(value)) if value else 0


def _int_field(value: int) -> int:
    if not value:
        return 0
    return 2 if 0 < value < 0x80 else 1 + varint_len(value)


def _value_size(value: MetaValue) -> int:
    """memnode.v1.Value: a oneof, so even a default value is written."""
    if isinstance(value, bool):
        return 2
    if isinstance(value, int):
        return 1 + varint_len(value)
    if isinstance(value, float):
        return 1 + 8
    return _len_field(_str_len(value))


def _map_key(key: str) -> int:
    """A map entry's key: always written, even when empty."""
    n = _str_len(key)
    return 1 + varint_len(n) + n


def _seq_map_size(entries: Mapping[str, int]) -> int:
    """map<string, uint64>: each entry a nested {key = 1, value = 2} message whose
    key and value are always written."""
    total = 0
    for key, seq in entries.items():
        total += _len_field(_map_key(key) + 1 + varint_len(seq))
    return total


def event_size(event: Event) -> int:
    size = (
        _str_field(event.origin)
        + _int_field(event.seq)
        + _int_field(int(event.kind))
        + _str_field(event.local_id)
        + _int_field(event.timestamp_ms)
        + _int_field(int(event.privacy))
        + _bytes_field(event.embedding)
        + _bytes_field(event.public_key)
        + _bytes_field(event.signature)
    )
    if event.model is not None:
        model = (
            _str_field(event.model.name)
            + _int_field(event.model.dim)
            + _str_field(event.model.fingerprint)
        )
        size += _len_field(model)
    for key, value in event.metadata.items():
        entry = _map_key(key) + _len_field(_value_size(value))
        size += _len_field(entry)
    return size


def run_size(run: EventRun) -> int:
    """Events inside a run travel without their origin (the run's; federation.io.wire)."""
    size = _str_field(run.origin) + _int_field(run.after_seq) + _int_field(run.through_seq)
    for event in run.events:
        elided = _str_field(event.origin) if event.origin == run.origin else 0
        size += _len_field(event_size(event) - elided)
    return size


RUN_OVERHEAD = 1 + 3 + 64
"""Upper bound of a run's size beyond its events (tag, length, origin, two seqs)."""

BATCH_OVERHEAD = 64
"""Upper bound of a batch's size beyond its runs (sender, hops, a few floors)."""


def batch_size(batch: EventBatch) -> int:
    size = _str_field(batch.sender) + _int_field(batch.rumor_hops)
    if batch.rumor_seen:
        size += 9  # fixed64
    for run in batch.runs:
        size += _len_field(run_size(run))
    return size + _seq_map_size(batch.watermarks) + _seq_map_size(batch.gc_floors)


def digest_size(digest: Digest) -> int:
    size = (
        _str_field(digest.sender)
        + _int_field(digest.incarnation)
        + _int_field(digest.heartbeat)
        + _str_field(digest.address)
        + _seq_map_size(digest.version_vector)
        + (2 if digest.reply else 0)
        + _seq_map_size(digest.gc_floors)
        + _seq_map_size(digest.resync)
        + _int_field(digest.deny_version)
        + _int_field(digest.erasure_version)
    )
    for m in digest.members:
        size += _len_field(
            _str_field(m.node_id)
            + _int_field(m.incarnation)
            + _int_field(m.heartbeat)
            + _str_field(m.address)
        )
    return size


def message_size(message: Message) -> int:
    if isinstance(message, Digest):
        return digest_size(message)
    if isinstance(message, SignedDenyList | SignedErasures):
        return (_str_field(message.sender) + _int_field(message.version)
                + _bytes_field(message.payload))
    return batch_size(message)

