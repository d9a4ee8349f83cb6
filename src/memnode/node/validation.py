"""Checks on what clients send; each failure is a MemnodeError a person can act on.
And the door: own events are checked as every peer checks them (``admit``)."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from federation.config import FederationConfig
from federation.events import Event, ModelId, split_memory_id
from federation.sizes import event_size
from federation.validate import Limits, check_event
from memnode.errors import InvalidArgument, ResourceExhausted
from memnode.node.domain import Metadata, MetaValue, Privacy, Vector
from memnode.node.metrics import NodeMetrics
from memnode.storage.eventlog import EventLog

log = logging.getLogger("memnode.node")


def decode_text(raw: bytes, max_bytes: int, what: str = "text") -> str:
    if len(raw) > max_bytes:
        raise InvalidArgument(f"{what} is {len(raw)} bytes; the limit is {max_bytes}")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidArgument(f"{what} is not valid UTF-8 (byte {exc.start})") from None
    if not text.strip():
        raise InvalidArgument(f"{what} is empty")
    return text


def privacy(value: int) -> Privacy:
    if value == 0:
        return Privacy.TEAM
    try:
        return Privacy(value)
    except ValueError:
        raise InvalidArgument(
            f"unknown privacy level {value} (ephemeral=1, private=2, team=3, public=4)"
        ) from None


@dataclass(frozen=True)
class MetadataLimits:
    """What a memory's metadata may hold (at every privacy level, so that a memory's
    level can change without its metadata becoming unreplicable)."""

    max_keys: int
    max_key_bytes: int
    max_value_bytes: int

    @classmethod
    def of(cls, fed: FederationConfig) -> MetadataLimits:
        """The federation's limits: what may replicate is defined there, once, and a
        write the node acknowledges must replicate."""
        return cls(fed.max_metadata_entries, fed.max_metadata_key_bytes,
                   fed.max_metadata_value_bytes)


def metadata(meta: Mapping[str, object], limits: MetadataLimits) -> Metadata:
    """A flat map of str -> str | int | float | bool, keys not starting with '_'."""
    max_keys, max_value_bytes = limits.max_keys, limits.max_value_bytes
    if not isinstance(meta, Mapping):
        raise InvalidArgument("metadata must be a map of key -> value")
    if len(meta) > max_keys:
        raise InvalidArgument(f"metadata has {len(meta)} keys; the limit is {max_keys}")
    out: Metadata = {}
    for key, value in meta.items():
        if not isinstance(key, str) or not key:
            raise InvalidArgument("metadata keys must be non-empty strings")
        if key.startswith("_"):
            raise InvalidArgument(f"metadata key {key!r}: keys starting with '_' are reserved")
        if len(key.encode()) > limits.max_key_bytes:
            raise InvalidArgument(f"metadata key {key[:40]!r}... is {len(key.encode())} bytes; "
                                  f"the limit is {limits.max_key_bytes}")
        out[key] = meta_value(key, value, max_value_bytes)
    return out


def meta_value(key: str, value: object, max_value_bytes: int) -> MetaValue:
    if isinstance(value, bool | int):
        if not isinstance(value, bool) and not -(2**63) <= value < 2**63:
            raise InvalidArgument(f"metadata {key!r}: integer out of 64-bit range")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise InvalidArgument(f"metadata {key!r}: {value} is not a finite number")
        return value
    if isinstance(value, str):
        if len(value.encode()) > max_value_bytes:
            raise InvalidArgument(
                f"metadata {key!r}: value is {len(value.encode())} bytes; "
                f"the limit is {max_value_bytes}"
            )
        return value
    raise InvalidArgument(
        f"metadata {key!r}: values must be str, int, float or bool, not {type(value).__name__} "
        "(metadata is a flat map)"
    )


def embedding(raw: bytes, dim: int) -> Vector:
    if len(raw) % 4:
        raise InvalidArgument(f"embedding is {len(raw)} bytes: not a float32 array")
    if len(raw) // 4 != dim:
        raise InvalidArgument(
            f"embedding has {len(raw) // 4} dimensions; this node's model has {dim}"
        )
    vec = np.frombuffer(raw, dtype="<f4").astype(np.float32)
    norm = float(np.linalg.norm(vec))
    if not math.isfinite(norm) or norm == 0.0:
        raise InvalidArgument("embedding must be finite and non-zero")
    normalized: Vector = vec / norm
    return normalized


def embedding_model(declared: ModelId | None, node_model: ModelId, level: Privacy) -> None:
    """The door for a client's own embedding: TEAM and PUBLIC memories replicate under
    the node's model identity, so their embedding must declare a model, and that model
    must be the node's. PRIVATE and EPHEMERAL ones stay on this node and may leave the
    model out; a model they do declare must match too (another model's vectors are
    meaningless in this node's index)."""
    if declared is None:
        if level in (Privacy.TEAM, Privacy.PUBLIC):
            raise InvalidArgument(
                f"a {level.name.lower()} memory's embedding must declare the model it came "
                f"from (embedding_model): it replicates as this node's model {node_model}; "
                "declare it, let the node embed the text, or use privacy private")
        return
    if declared != node_model:
        raise InvalidArgument(
            f"embedding comes from model {declared}, but this node's model is {node_model}: "
            "only embeddings of the node's model are accepted; let the node embed the text")


def batch_size(n: int, limit: int) -> None:
    if n == 0:
        raise InvalidArgument("empty batch")
    if n > limit:
        raise ResourceExhausted(f"batch of {n} memories; the limit is {limit}")


def recall_k(k: int, limit: int) -> int:
    if k == 0:
        return 10
    if k > limit:
        raise InvalidArgument(f"k={k}; the limit is {limit}")
    return k


def memory_id(value: str) -> str:
    try:
        split_memory_id(value)
    except ValueError:
        raise InvalidArgument(f"{value!r} is not a memory id (<node_id>/<suffix>)") from None
    return value


def admit(events: Sequence[Event], limits: Limits, metrics: NodeMetrics) -> None:
    """The door: each event is checked with the validation every peer runs, so a
    write the node acknowledges can always replicate. InvalidArgument otherwise."""
    for event in events:
        reason = check_event(event, limits)
        if reason is None:
            continue
        metrics.writes_refused.labels(reason=reason.value).inc()
        raise InvalidArgument(
            f"the mesh would refuse this write's replication event ({reason.value}): "
            f"{event_size(event)} bytes of event, {len(event.metadata)} metadata "
            f"entries; limits: {limits.max_event_bytes} bytes per event, "
            f"{limits.max_metadata_entries} entries, keys of "
            f"{limits.max_metadata_key_bytes} and values of "
            f"{limits.max_metadata_value_bytes} bytes")


def drop_unreplicable_own_events(event_log: EventLog, node_id: str, limits: Limits,
                                  metrics: NodeMetrics, version: str) -> None:
    """Once per log: own events that the mesh would refuse (written before the node
    checked writes at the door) leave the log, so its runs vouch for their seqs as
    compacted and peers go on past them. Their memories stay here, unreplicated
    (an update with valid metadata replicates them again)."""
    if event_log.meta("admission") == version:
        return
    for event, reason in event_log.drop_own_events(
            node_id, lambda e: check_event(e, limits)):
        metrics.own_events_unreplicable.labels(reason=reason.value).inc()
        log.warning("own event %d (memory %s) could never replicate (%s): dropped from "
                    "the log; the memory stays on this node only", event.seq,
                    event.memory_id, reason.value)
    event_log.set_meta("admission", version)
