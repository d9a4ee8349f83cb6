"""What a gossip stream says once: the per-stream header of a ``Deliver`` stream.

Every message and event repeats what never changes on one stream: the sender's node id
and gossip address, and each origin's public key (32 bytes) and model identity (name,
dimension, fingerprint). A stream whose receiver understands it says each once:

- a batch's or digest's ``sender``, and a digest's ``address``, are left out once the
  stream has carried them;
- an event's ``public_key`` and ``model`` are left out once the stream has carried them
  for its origin (a model only on PUT and UPDATE: a FORGET has none);
- a run's ``origin`` is left out when it is the batch's sender (a push of one's own
  writes).

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


class StreamWriter:
    """One outbound stream's memory of what it has said; shortens messages in place
    once :attr:`shorten` is set (the receiver's :data:`HEADER` arrived)."""

    def __init__(self) -> None:
        self.shorten = False
        self._sender = ""
        self._address = ""
        self._keys: dict[str, bytes] = {}
        self._models: dict[str, tpb.ModelIdentity] = {}

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


class StreamReader:
    """One inbound stream's memory of what it has been told; fills shortened messages
    in place (MalformedEvent when a message leaves out what the stream never said)."""

    def __init__(self) -> None:
        self._sender = ""
        self._address = ""
        self._keys: dict[str, bytes] = {}
        self._models: dict[str, tpb.ModelIdentity] = {}

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
