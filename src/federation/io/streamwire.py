"""What a gossip stream says once: the per-stream header of a ``Deliver`` stream.

Every message and event repeats what never changes on one stream: the sender's node id
and gossip address, and each origin's public key (32 bytes) and model identity (name,
dimension, fingerprint). A stream whose receiver understands it says each once:

- a batch's or digest's ``sender``, and a digest's ``address``, are left out once the
  stream has carried them;
- an event's ``public_key`` and ``model`` are left out once the stream has carried them
  for its origin (a model only on PUT and UPDATE: a FORGET has none);
- a run's ``origin`` is left out when it is the batch's sender (a push of one's own
  writes);
- a digest is a delta (``Digest.delta``): its version vector and GC floors carry only
  the entries that changed since the stream's previous digest (0: gone, which a vector
  or a floor means anyway), and a member heartbeat leaves out an incarnation and
  address the stream said for that member (incarnations are a start's wall-clock ms,
  never 0: an entry with neither is one the stream said).

The receiver (:class:`StreamReader`) learns the same from every message it reads,
whether shortened or not, and fills in what was left out before the message is decoded.
Nothing is trusted for it: a filled-in key or model is one the same stream gave for
that origin, and the event's signature (over both) still decides.

Negotiated per stream: a receiver that reads shortened messages says so in the stream's
initial metadata (:data:`HEADER`); a sender shortens only after it has seen that, so an
older receiver keeps getting whole messages. State lives and dies with the stream, so a
reconnect starts afresh. Saved per replicated entry, measured: see README "Scale".
"""

from __future__ import annotations

from typing import Any

from federation.errors import MalformedEvent
from federation.v1 import federation_pb2 as fpb
from federation.v1 import types_pb2 as tpb

__all__ = ["HEADER", "StreamReader", "StreamWriter"]

#: Initial metadata a ``Deliver`` receiver sends when it reads shortened messages.
HEADER = ("memnode-gossip-stream", "1")

_MODELED = (fpb.PUT, fpb.UPDATE)


def _body(msg: fpb.GossipMessage) -> fpb.EventBatch | fpb.Digest | None:
    kind = msg.WhichOneof("body")
    if kind == "batch":
        return msg.batch
    if kind == "digest":
        return msg.digest
    return None


class _Stream:
    """What one stream has carried so far: the same on both ends."""

    def __init__(self) -> None:
        self._sender = ""
        self._address = ""
        self._keys: dict[str, bytes] = {}
        self._models: dict[str, tpb.ModelIdentity] = {}
        self._digests = _Said()


class StreamWriter(_Stream):
    """One outbound stream's memory of what it has said; shortens messages in place
    once :attr:`shorten` is set (the receiver's :data:`HEADER` arrived)."""

    def __init__(self) -> None:
        super().__init__()
        self.shorten = False

    def write(self, msg: fpb.GossipMessage) -> fpb.GossipMessage:
        body = _body(msg)
        if body is None:
            return msg
        shorten = self.shorten
        sender = body.sender
        if shorten and sender == self._sender:
            body.ClearField("sender")
        self._sender = sender
        if isinstance(body, fpb.Digest):
            if shorten and body.address == self._address:
                body.ClearField("address")
            self._address = body.address or self._address
            self._digests.write(body, shorten)
            return msg
        for run in body.runs:
            origin = run.origin
            if shorten and origin == sender:
                run.ClearField("origin")
            for event in run.events:
                key = event.public_key
                if shorten and key and self._keys.get(origin) == key:
                    event.ClearField("public_key")
                elif key:
                    self._keys[origin] = key
                if event.HasField("model") and event.kind in _MODELED:
                    said = self._models.get(origin)
                    if shorten and said is not None and said == event.model:
                        event.ClearField("model")
                    else:
                        self._models[origin] = tpb.ModelIdentity()
                        self._models[origin].CopyFrom(event.model)
        return msg


class StreamReader(_Stream):
    """One inbound stream's memory of what it has been told; fills shortened messages
    in place (MalformedEvent when a message leaves out what the stream never said)."""

    def read(self, msg: fpb.GossipMessage) -> fpb.GossipMessage:
        body = _body(msg)
        if body is None:
            return msg
        if body.sender:
            self._sender = body.sender
        elif self._sender:
            body.sender = self._sender
        else:
            raise MalformedEvent("a stream's first message without its sender")
        sender = body.sender
        if isinstance(body, fpb.Digest):
            if body.address:
                self._address = body.address
            else:
                body.address = self._address
            self._digests.read(body)
            return msg
        for run in body.runs:
            if not run.origin:
                run.origin = sender
            origin = run.origin
            for event in run.events:
                if event.public_key:
                    self._keys[origin] = event.public_key
                elif origin in self._keys:
                    event.public_key = self._keys[origin]
                if event.kind not in _MODELED:
                    continue
                if event.HasField("model"):
                    self._models[origin] = tpb.ModelIdentity()
                    self._models[origin].CopyFrom(event.model)
                elif origin in self._models:
                    event.model.CopyFrom(self._models[origin])
        return msg


class _Said:
    """What one stream's digests said last: the version vector, the GC floors, and each
    member's (incarnation, address). The writer's and the reader's copies stay equal:
    both record every digest, whole or delta."""

    def __init__(self) -> None:
        self.vector: dict[str, int] = {}
        self.floors: dict[str, int] = {}
        self.members: dict[str, tuple[int, str]] = {}

    def write(self, d: fpb.Digest, shorten: bool) -> None:
        vector, floors = dict(d.version_vector), dict(d.gc_floors)
        if shorten:
            d.delta = True
            _changes(d.version_vector, self.vector, vector)
            _changes(d.gc_floors, self.floors, floors)
        for m in d.members:
            said = self.members.get(m.node_id)
            if m.address:
                self.members[m.node_id] = (m.incarnation, m.address)
                if shorten and said == (m.incarnation, m.address):
                    m.ClearField("incarnation")
                    m.ClearField("address")
        self.vector, self.floors = vector, floors

    def read(self, d: fpb.Digest) -> None:
        if d.delta:
            self.vector = _applied(self.vector, d.version_vector)
            self.floors = _applied(self.floors, d.gc_floors)
            d.ClearField("version_vector")
            d.version_vector.update(self.vector)
            d.ClearField("gc_floors")
            d.gc_floors.update(self.floors)
            d.ClearField("delta")
            for m in d.members:
                said = self.members.get(m.node_id)
                if said is not None and not m.address and not m.incarnation:
                    m.incarnation, m.address = said
        else:
            self.vector, self.floors = dict(d.version_vector), dict(d.gc_floors)
        for m in d.members:
            if m.address:
                self.members[m.node_id] = (m.incarnation, m.address)


def _changes(field: Any, said: dict[str, int], now: dict[str, int]) -> None:
    """Leave in the map ``field`` (holding ``now``) only what differs from ``said``;
    what ``said`` had and ``now`` lacks, as 0."""
    for key, value in now.items():
        if said.get(key) == value:
            del field[key]
    for key in said:
        if key not in now:
            field[key] = 0


def _applied(state: dict[str, int], changes: Any) -> dict[str, int]:
    out = dict(state)
    for key, value in changes.items():
        if value:
            out[key] = value
        else:
            out.pop(key, None)
    return out
