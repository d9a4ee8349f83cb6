"""Validation of events received from peers: structure, origin, size, model, signature.

Checks run cheapest first and the first failure is the reason reported:

1. ``malformed``: a field missing or of the wrong type, seq < 1, an unknown kind or
   privacy, a FORGET carrying a model/embedding/metadata, a PUT/UPDATE without a
   model, metadata that is not a flat map of str -> str/int/float/bool.
2. ``wrong_origin``: ``origin`` is not the node id derived from ``public_key``.
3. ``oversized``: embedding above ``max_embedding_dim`` floats, too many or too long
   metadata entries or local id, or the whole event above ``max_event_bytes``.
4. ``wrong_model``: a PUT/UPDATE made with another embedding model than ours.
5. ``wrong_dimension``: embedding length is not 4 * model.dim bytes.
6. ``bad_signature``: the Ed25519 signature does not verify (the most expensive check,
   last).

A rejected event never changes replica state; it is counted by reason.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass

from federation.config import FederationConfig
from federation.events import (
    Event,
    EventKind,
    ModelId,
    SharedPrivacy,
    node_id_from_public_key,
    verify_signature,
)
from federation.sizes import event_size


class RejectReason(enum.Enum):
    """Why an event (or a run) from the network was refused; values are metric labels."""

    MALFORMED = "malformed"
    WRONG_ORIGIN = "wrong_origin"
    OVERSIZED = "oversized"
    WRONG_MODEL = "wrong_model"
    WRONG_DIMENSION = "wrong_dimension"
    BAD_SIGNATURE = "bad_signature"
    OWN_ORIGIN = "own_origin"
    """A peer sent events of *our* origin above our own log's head: we never wrote
    them (or our log was restored from an old backup). Never applied."""
    ERASED = "erased"
    """An event of a memory a CA-signed erasure order covers (federation.erasure): valid,
    but never applied; skipped like a compacted seq."""


@dataclass(frozen=True)
class Limits:
    """The validation limits of FederationConfig, plus the local model."""

    model: ModelId
    max_embedding_dim: int = 4096
    max_metadata_entries: int = 64
    max_metadata_key_bytes: int = 128
    max_metadata_value_bytes: int = 1024
    max_local_id_bytes: int = 256
    max_event_bytes: int = 64 * 1024
    verify_signatures: bool = True

    @classmethod
    def from_config(cls, config: FederationConfig, model: ModelId) -> Limits:
        return cls(
            model=model,
            max_embedding_dim=config.max_embedding_dim,
            max_metadata_entries=config.max_metadata_entries,
            max_metadata_key_bytes=config.max_metadata_key_bytes,
            max_metadata_value_bytes=config.max_metadata_value_bytes,
            max_local_id_bytes=config.max_local_id_bytes,
            max_event_bytes=config.max_event_bytes,
            verify_signatures=not config.insecure_skip_signature_verification,
        )


_INT64 = (-(1 << 63), (1 << 63) - 1)


def _is_int(value: object, low: int = _INT64[0], high: int = _INT64[1]) -> bool:
    """An int (not a bool) in [low, high]: what the canonical encoding can pack."""
    return isinstance(value, int) and not isinstance(value, bool) and low <= value <= high


def _text(value: object) -> bool:
    """A str the canonical encoding can carry (valid UTF-8: no lone surrogates)."""
    if not isinstance(value, str):
        return False
    if value.isascii():
        return True
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _malformed(event: Event) -> bool:
    if not isinstance(event, Event):
        return True
    if not _text(event.origin) or not event.origin or "/" in event.origin:
        return True
    if not _is_int(event.seq, 1, (1 << 64) - 1) or not _is_int(event.timestamp_ms):
        return True
    if not _text(event.local_id) or not event.local_id:
        return True
    if not isinstance(event.kind, EventKind) or not isinstance(event.privacy, SharedPrivacy):
        return True
    if not isinstance(event.embedding, bytes) or not isinstance(event.metadata, Mapping):
        return True
    if not isinstance(event.public_key, bytes) or len(event.public_key) != 32:
        return True
    if not isinstance(event.signature, bytes) or len(event.signature) != 64:
        return True
    if event.kind is EventKind.FORGET:
        return event.model is not None or bool(event.embedding) or bool(event.metadata)
    model = event.model
    if not isinstance(model, ModelId) or not _text(model.name) or not model.name:
        return True
    if not _is_int(model.dim, 1, (1 << 32) - 1) or not _text(model.fingerprint):
        return True
    for key, value in event.metadata.items():
        if not _text(key) or not key:
            return True
        if isinstance(value, str) and not _text(value):
            return True
        if isinstance(value, int) and not isinstance(value, bool) and not _is_int(value):
            return True
        if not isinstance(value, (str, int, float, bool)):
            return True
    return False


def _oversized(event: Event, limits: Limits) -> bool:
    if len(event.embedding) > 4 * limits.max_embedding_dim:
        return True
    if len(event.local_id.encode("utf-8")) > limits.max_local_id_bytes:
        return True
    if len(event.metadata) > limits.max_metadata_entries:
        return True
    for key, value in event.metadata.items():
        if len(key.encode("utf-8")) > limits.max_metadata_key_bytes:
            return True
        if isinstance(value, str) and len(value.encode("utf-8")) > limits.max_metadata_value_bytes:
            return True
    return event_size(event) > limits.max_event_bytes


def check_event(event: Event, limits: Limits) -> RejectReason | None:
    """The reason to reject ``event``, or None when it is acceptable."""
    if _malformed(event):
        return RejectReason.MALFORMED
    if node_id_from_public_key(event.public_key) != event.origin:
        return RejectReason.WRONG_ORIGIN
    if _oversized(event, limits):
        return RejectReason.OVERSIZED
    if event.kind is not EventKind.FORGET:
        if event.model != limits.model:
            return RejectReason.WRONG_MODEL
        assert event.model is not None
        if len(event.embedding) != 4 * event.model.dim:
            return RejectReason.WRONG_DIMENSION
    if limits.verify_signatures:
        try:
            valid = verify_signature(event)
        except (ValueError, TypeError, OverflowError, UnicodeError):  # cannot be encoded
            return RejectReason.MALFORMED
        if not valid:
            return RejectReason.BAD_SIGNATURE
    return None
