"""Metadata values between Python and memnode.v1.Value. Light: imported by the CLI client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from memnode.errors import InvalidArgument
from memnode.v1 import memnode_pb2 as pb

MetaValue = str | int | float | bool


def value_to_proto(value: MetaValue) -> pb.Value:
    if isinstance(value, bool):
        return pb.Value(b=value)
    if isinstance(value, int):
        return pb.Value(i=value)
    if isinstance(value, float):
        return pb.Value(f=value)
    if isinstance(value, str):
        return pb.Value(s=value)
    raise TypeError(f"metadata value of type {type(value).__name__}")


def value_from_proto(value: pb.Value) -> MetaValue:
    kind = value.WhichOneof("kind")
    if kind is None:
        raise ValueError("metadata value with no type set")
    result: MetaValue = getattr(value, kind)
    return result


def meta_to_proto(meta: Mapping[str, Any], target: Any) -> None:
    """Fill the protobuf map ``target``; InvalidArgument for a value that is not flat."""
    for key, value in meta.items():
        try:
            target[key].CopyFrom(value_to_proto(value))
        except (TypeError, ValueError):
            raise InvalidArgument(
                f"metadata {key!r}: values must be str, int, float or bool, "
                f"not {type(value).__name__} (metadata is a flat map)"
            ) from None


def meta_from_proto(target: Any) -> dict[str, MetaValue]:
    out: dict[str, MetaValue] = {}
    for key, value in target.items():
        try:
            out[key] = value_from_proto(value)
        except ValueError:
            raise InvalidArgument(f"metadata {key!r}: value has no type set") from None
    return out


def parse_value(text: str) -> MetaValue:
    """A value typed on a command line: true/false, an int, a float, else a string."""
    lowered = text.lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for cast in (int, float):
        try:
            return cast(text)  # type: ignore[no-any-return,operator]
        except ValueError:
            pass
    return text
