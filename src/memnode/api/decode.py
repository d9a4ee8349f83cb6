"""Requests that do not parse get INVALID_ARGUMENT naming the field, never INTERNAL.

python protobuf refuses a ``string`` field holding invalid UTF-8 while parsing, and the
grpc server answers a deserializer that raises with INTERNAL ("Exception deserializing
request!"). So the MemoryService handlers are registered here with deserializers that
return an :class:`Undecodable` in place of the message; the servicer turns it into an
InvalidArgument, counted and answered like any other refusal.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import grpc
from google.protobuf.descriptor import Descriptor, FieldDescriptor, ServiceDescriptor
from google.protobuf.message import DecodeError, Message
from google.protobuf.message_factory import GetMessageClass


@dataclass(frozen=True)
class Undecodable:
    """What the servicer receives for a request that did not parse."""

    reason: str


def lenient(cls: type[Message]) -> Callable[[bytes], Message | Undecodable]:
    """A request deserializer that never raises."""

    def parse(data: bytes) -> Message | Undecodable:
        try:
            return cls.FromString(data)
        except DecodeError as exc:
            return Undecodable(explain(cls.DESCRIPTOR, data, exc))

    return parse


def explain(descriptor: Descriptor, data: bytes, exc: Exception) -> str:
    """Which field broke the parse, as a person can act on it. Batches name the item:
    ``item 2: text is not valid UTF-8 (byte 3)``."""
    try:
        found = _locate(descriptor, data, [])
    except Exception:  # malformed past the point protobuf gave up: say no more than it
        found = None
    if found is None:
        return f"request is not a valid {descriptor.full_name}: {exc}"
    path, problem = found
    prefix = ""
    if len(path) > 1 and isinstance(path[1], int):
        prefix, path = f"item {path[1]}: ", path[2:]
    if not path:
        return prefix + problem.removeprefix("is ")
    return f"{prefix}{'.'.join(str(p) for p in path)} {problem}"


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if byte < 0x80:
            return value, pos
        shift += 7
        if shift > 63:
            raise ValueError("varint too long")


def _locate(descriptor: Descriptor, data: bytes, path: list[str | int]
            ) -> tuple[list[str | int], str] | None:
    """The path to the first field that does not parse (a string that is not UTF-8, a
    message that is corrupt), and what is wrong with it."""
    pos, seen = 0, dict[str, int]()
    while pos < len(data):
        key, pos = _varint(data, pos)
        number, wire = key >> 3, key & 7
        if wire == 0:
            _, pos = _varint(data, pos)
            continue
        if wire in (1, 5):
            pos += 8 if wire == 1 else 4
            continue
        if wire != 2:
            raise ValueError(f"wire type {wire}")
        size, pos = _varint(data, pos)
        chunk, pos = data[pos:pos + size], pos + size
        field = descriptor.fields_by_number.get(number)
        if field is None:
            continue
        here: list[str | int] = [*path, field.name]
        if field.is_repeated and field.message_type is not None \
                and not field.message_type.GetOptions().map_entry:
            here.append(seen.get(field.name, 0))
            seen[field.name] = seen.get(field.name, 0) + 1
        if field.type == FieldDescriptor.TYPE_STRING:
            try:
                chunk.decode("utf-8")
            except UnicodeDecodeError as bad:
                return here, f"is not valid UTF-8 (byte {bad.start})"
        elif field.type == FieldDescriptor.TYPE_MESSAGE:
            inner = _locate(field.message_type, chunk, here)
            if inner is not None:
                return inner
            try:
                GetMessageClass(field.message_type).FromString(chunk)
            except DecodeError:
                return here, f"is not a valid {field.message_type.full_name}"
    return None


_KINDS = {
    (False, False): grpc.unary_unary_rpc_method_handler,
    (False, True): grpc.unary_stream_rpc_method_handler,
    (True, False): grpc.stream_unary_rpc_method_handler,
    (True, True): grpc.stream_stream_rpc_method_handler,
}


def add_service(service: ServiceDescriptor, servicer: Any, server: grpc.Server) -> None:
    """Like the generated ``add_*Servicer_to_server``, with lenient deserializers."""
    handlers = {}
    for method in service.methods:
        kind = _KINDS[(method.client_streaming, method.server_streaming)]
        handlers[method.name] = kind(
            getattr(servicer, method.name),
            request_deserializer=lenient(GetMessageClass(method.input_type)),
            response_serializer=GetMessageClass(method.output_type).SerializeToString,
        )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(service.full_name, handlers),))
    server.add_registered_method_handlers(service.full_name, handlers)
