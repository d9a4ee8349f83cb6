"""Server reflection under both ``grpc.reflection.v1`` and ``grpc.reflection.v1alpha``.

Newer tools (grpcurl, buf curl, Postman) ask for v1 first; grpcio-reflection 1.85 ships
only v1alpha. The two protocols are the same messages under two package names, so they
are the same bytes on the wire: one v1alpha servicer answers both method paths. The v1
file descriptor (the v1alpha one renamed) goes into the default pool, so that v1 can
describe itself like any other service listed.
"""

from __future__ import annotations

from collections.abc import Iterable

import grpc
from google.protobuf import descriptor_pb2, descriptor_pool
from grpc_reflection.v1alpha import reflection, reflection_pb2, reflection_pb2_grpc

V1ALPHA = reflection.SERVICE_NAME
V1 = "grpc.reflection.v1.ServerReflection"
_OLD, _NEW = ".grpc.reflection.v1alpha.", ".grpc.reflection.v1."


def _rename(message: descriptor_pb2.DescriptorProto) -> None:
    for field in message.field:
        if field.HasField("type_name"):
            field.type_name = field.type_name.replace(_OLD, _NEW)
    for nested in message.nested_type:
        _rename(nested)


def v1_file() -> descriptor_pb2.FileDescriptorProto:
    """grpc/reflection/v1/reflection.proto, built from the v1alpha file."""
    fdp = descriptor_pb2.FileDescriptorProto.FromString(reflection_pb2.DESCRIPTOR.serialized_pb)
    fdp.name = "grpc/reflection/v1/reflection.proto"
    fdp.package = "grpc.reflection.v1"
    fdp.ClearField("options")
    for message in fdp.message_type:
        _rename(message)
    for service in fdp.service:
        for method in service.method:
            method.input_type = method.input_type.replace(_OLD, _NEW)
            method.output_type = method.output_type.replace(_OLD, _NEW)
    return fdp


def _ensure_v1_descriptor() -> None:
    pool = descriptor_pool.Default()
    try:
        pool.FindServiceByName(V1)
    except KeyError:
        pool.Add(v1_file())


def enable(service_names: Iterable[str], server: grpc.Server) -> None:
    """Serve reflection for ``service_names`` (and both reflection services) on ``server``."""
    _ensure_v1_descriptor()
    servicer = reflection.ReflectionServicer((*service_names, V1, V1ALPHA))
    reflection_pb2_grpc.add_ServerReflectionServicer_to_server(servicer, server)
    v1 = grpc.stream_stream_rpc_method_handler(
        servicer.ServerReflectionInfo,
        request_deserializer=reflection_pb2.ServerReflectionRequest.FromString,
        response_serializer=reflection_pb2.ServerReflectionResponse.SerializeToString,
    )
    server.add_generic_rpc_handlers(
        (grpc.method_handlers_generic_handler(V1, {"ServerReflectionInfo": v1}),))
