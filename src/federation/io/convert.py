"""The shared wire types (``federation.v1.types``) and their Python forms, converted in
one place: metadata values, model identities, peer statuses.

Light on purpose: the client imports it (through :mod:`memnode.values`), so it pulls in
nothing but protobuf and the plain types of the core.
"""

from __future__ import annotations

from federation.events import MetaValue, ModelId
from federation.ports import PeerInfo
from federation.v1 import types_pb2 as tpb

__all__ = ["model_from_proto", "model_to_proto", "peer_from_proto", "peer_to_proto",
           "value_from_proto", "value_to_proto"]


def value_to_proto(value: MetaValue) -> tpb.Value:
    """TypeError for anything but str / int / float / bool (bool first: it is an int)."""
    if isinstance(value, bool):
        return tpb.Value(b=value)
    if isinstance(value, int):
        return tpb.Value(i=value)
    if isinstance(value, float):
        return tpb.Value(f=value)
    if isinstance(value, str):
        return tpb.Value(s=value)
    raise TypeError(f"metadata value of type {type(value).__name__}")


def value_from_proto(value: tpb.Value) -> MetaValue:
    """ValueError for a value with no type set."""
    kind = value.WhichOneof("kind")
    if kind is None:
        raise ValueError("metadata value with no type set")
    result: MetaValue = getattr(value, kind)
    return result


def model_to_proto(model: ModelId) -> tpb.ModelIdentity:
    return tpb.ModelIdentity(name=model.name, dim=model.dim, fingerprint=model.fingerprint)


def model_from_proto(msg: tpb.ModelIdentity) -> ModelId:
    return ModelId(name=msg.name, dim=msg.dim, fingerprint=msg.fingerprint)


def peer_to_proto(peer: PeerInfo) -> tpb.PeerStatus:
    return tpb.PeerStatus(node_id=peer.node_id, address=peer.address, state=peer.state,
                          events_behind=peer.events_behind, found_by=peer.found_by)


def peer_from_proto(msg: tpb.PeerStatus) -> PeerInfo:
    return PeerInfo(msg.node_id, msg.address, msg.state, msg.events_behind, msg.found_by)
