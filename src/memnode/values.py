"""Metadata maps between Python and protobuf (``federation.v1.Value``), and CLI value
parsing. Light: imported by the CLI client."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from federation.events import MetaValue
from federation.io.convert import value_from_proto, value_to_proto
from memnode.errors import InvalidArgument


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
