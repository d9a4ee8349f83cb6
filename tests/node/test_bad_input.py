"""Bad input gets a clear status, is counted, and writes nothing (not even part of a batch)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from federation.v1 import types_pb2 as tpb
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc

from helpers import NodeHandle


@pytest.fixture
def small(node_factory) -> NodeHandle:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("small", max_text_bytes=1000, max_batch_items=5)
    return handle


def _stub(handle: NodeHandle) -> pb_grpc.MemoryServiceStub:
    return pb_grpc.MemoryServiceStub(grpc.insecure_channel(handle.addr))


def _raw(handle: NodeHandle, method: str):  # type: ignore[no-untyped-def]
    """A call that sends its request as wire bytes, as a client in any language might."""
    return grpc.insecure_channel(handle.addr).unary_unary(f"/memnode.v1.MemoryService/{method}")


def _code(call, request) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value.code(), info.value.details()


def _varint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out, n = out + bytes([n & 0x7F | 0x80]), n >> 7
    return out + bytes([n])


def _field(number: int, payload: bytes) -> bytes:
    """One length-delimited field on the wire."""
    return _varint(number << 3 | 2) + _varint(len(payload)) + payload


def _wire(request: pb.RememberRequest) -> bytes:
    return request.SerializeToString()


def _good(text: str = "fine") -> pb.RememberRequest:
    return pb.RememberRequest(text=text)


def _assert_nothing_written(handle: NodeHandle) -> None:
    status = handle.client.status()
    assert status.memories == {"local": 0, "replicated": 0, "ephemeral": 0}
    assert status.version_vector == {}


# A protobuf string that is not UTF-8 cannot be built in Python: these go as raw bytes.
NOT_UTF8_TEXT = _field(1, b"caf\xe9 \xff")
NOT_UTF8_KEY = _wire(_good("ok")) + _field(2, _field(1, b"k\xff") + _field(2, _field(1, b"v")))
NOT_UTF8_VALUE = _wire(_good("ok")) + _field(2, _field(1, b"k") + _field(2, _field(1, b"\xc3")))

BAD_ITEMS = {
    "empty text": (_wire(pb.RememberRequest(text="")), "empty"),
    "blank text": (_wire(pb.RememberRequest(text="  \n ")), "empty"),
    "non-UTF-8 text": (NOT_UTF8_TEXT, "text is not valid UTF-8 (byte 3)"),
    "non-UTF-8 metadata key": (NOT_UTF8_KEY, "metadata.key is not valid UTF-8 (byte 1)"),
    "non-UTF-8 metadata value": (NOT_UTF8_VALUE, "metadata.value.s is not valid UTF-8"),
    "text over the limit": (_wire(pb.RememberRequest(text="x" * 1001)), "limit is 1000"),
    "unknown privacy": (_wire(pb.RememberRequest(text="ok", privacy=9)), "privacy"),  # type: ignore[arg-type]
    "value with no type": (_wire(pb.RememberRequest(text="ok", metadata={"k": tpb.Value()})),
                           "no type"),
    "reserved key": (_wire(pb.RememberRequest(text="ok",
                                              metadata={"_origin": tpb.Value(s="x")})),
                     "reserved"),
    "non-finite float": (_wire(pb.RememberRequest(
        text="ok", metadata={"k": tpb.Value(f=float("nan"))})), "finite"),
    "wrong dimension": (_wire(pb.RememberRequest(
        text="ok", embedding=np.ones(17, "<f4").tobytes())), "17 dimensions"),
    "ragged embedding": (_wire(pb.RememberRequest(text="ok", embedding=b"\x00" * 7)),
                         "float32"),
    "ttl without ephemeral": (_wire(pb.RememberRequest(text="ok", ttl_seconds=5)),
                              "EPHEMERAL"),
    "truncated message": (b"\x0a\x05ab", "not a valid memnode.v1.RememberRequest"),
}


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_bad_item_is_invalid_argument_and_nothing_of_the_batch_is_written(
    small: NodeHandle, case: str
) -> None:
    request, words = BAD_ITEMS[case]
    code, details = _code(_raw(small, "Remember"), request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and words in details
    # the same item inside a batch: the good items before it are not written either
    batch = pb.RememberBatchRequest(items=[_good("a"), _good("b")]).SerializeToString() \
        + _field(1, request)
    code, details = _code(_raw(small, "RememberBatch"), batch)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("item 2:")
    assert details == "item 2: not a valid memnode.v1.RememberRequest" if "truncated" in case \
        else words in details
    _assert_nothing_written(small)
    reg = small.node.metrics.registry
    assert reg.get_sample_value("memnode_errors_total", {"kind": "invalid_argument"}) == 2


def test_batch_over_the_limit_is_resource_exhausted(small: NodeHandle) -> None:
    code, details = _code(_stub(small).RememberBatch,
                          pb.RememberBatchRequest(items=[_good()] * 6))
    assert code == grpc.StatusCode.RESOURCE_EXHAUSTED and "limit is 5" in details
    _assert_nothing_written(small)


def test_unknown_and_malformed_ids(small: NodeHandle) -> None:
    stub = _stub(small)
    missing = f"{small.node.node_id}/doesnotexist"
    for call, req in ((stub.Get, pb.GetRequest(id=missing)),
                      (stub.Forget, pb.ForgetRequest(id=missing)),
                      (stub.Update, pb.UpdateRequest(id=missing))):
        assert _code(call, req)[0] == grpc.StatusCode.NOT_FOUND
    code, details = _code(stub.Get, pb.GetRequest(id="no-slash"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "memory id" in details


def test_bad_recall_requests(small: NodeHandle) -> None:
    stub = _stub(small)
    assert _code(stub.Recall, pb.RecallRequest(query=""))[0] == grpc.StatusCode.INVALID_ARGUMENT
    assert _code(stub.Recall, pb.RecallRequest(query="x", k=10**6))[0] == \
        grpc.StatusCode.INVALID_ARGUMENT
    code, details = _code(stub.Recall, pb.RecallRequest(
        embedding=np.ones(3, "<f4").tobytes()))
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "3 dimensions" in details
    code, _ = _code(stub.List, pb.ListRequest(page_token="garbage"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    code, details = _code(grpc.insecure_channel(small.addr).unary_unary(
        "/memnode.v1.MemoryService/Recall"), _field(1, b"\xfe\xff"))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert details == "query is not valid UTF-8 (byte 0)"


def test_stream_item_that_does_not_parse_is_invalid_argument(small: NodeHandle) -> None:
    stream = grpc.insecure_channel(small.addr).stream_stream(
        "/memnode.v1.MemoryService/RememberStream",
        response_deserializer=pb.RememberBatchResponse.FromString)
    good = pb.RememberBatchRequest(items=[_good("a")]).SerializeToString()
    with pytest.raises(grpc.RpcError) as info:
        list(stream(iter([good, _field(1, NOT_UTF8_TEXT)]), timeout=10))
    assert info.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert info.value.details() == "item 0: text is not valid UTF-8 (byte 3)"


def test_client_refuses_text_that_is_not_utf8_before_sending(small: NodeHandle) -> None:
    from memnode import InvalidArgument

    with pytest.raises(InvalidArgument, match=r"text is not valid UTF-8 \(byte 3\)"):
        small.client.remember(b"caf\xe9")
    with pytest.raises(InvalidArgument, match=r"text is not valid UTF-8 \(byte 1\)"):
        small.client.remember("a\udcff")
    _assert_nothing_written(small)


def test_client_refuses_nested_metadata_before_sending(small: NodeHandle) -> None:
    from memnode import InvalidArgument

    with pytest.raises(InvalidArgument, match="flat map"):
        small.client.remember("x", {"nested": {"a": 1}})
    with pytest.raises(InvalidArgument, match="privacy"):
        small.client.remember("x", privacy="secret")
    _assert_nothing_written(small)


def test_node_keeps_serving_after_bad_input(small: NodeHandle) -> None:
    stub = _stub(small)
    raw = _raw(small, "Remember")
    for _ in range(20):
        assert _code(raw, _field(1, b"\xff"))[0] == grpc.StatusCode.INVALID_ARGUMENT
    code, details = _code(stub.RememberBatch, pb.RememberBatchRequest(items=[_good("")]))
    assert code == grpc.StatusCode.INVALID_ARGUMENT
    assert small.client.remember("still fine")
