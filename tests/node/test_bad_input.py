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


def _code(call, request) -> tuple[grpc.StatusCode, str]:  # type: ignore[no-untyped-def]
    with pytest.raises(grpc.RpcError) as info:
        call(request, timeout=10)
    return info.value.code(), info.value.details()


def _good(text: str = "fine") -> pb.RememberRequest:
    return pb.RememberRequest(text=text.encode())


def _assert_nothing_written(handle: NodeHandle) -> None:
    status = handle.client.status()
    assert status.memories == {"local": 0, "replicated": 0, "ephemeral": 0}
    assert status.version_vector == {}


BAD_ITEMS = {
    "empty text": (pb.RememberRequest(text=b""), "empty"),
    "blank text": (pb.RememberRequest(text=b"  \n "), "empty"),
    "non-UTF-8 text": (pb.RememberRequest(text=b"caf\xe9 \xff"), "UTF-8"),
    "text over the limit": (pb.RememberRequest(text=b"x" * 1001), "limit is 1000"),
    "unknown privacy": (pb.RememberRequest(text=b"ok", privacy=9), "privacy"),
    "value with no type": (pb.RememberRequest(text=b"ok", metadata={"k": tpb.Value()}),
                           "no type"),
    "reserved key": (pb.RememberRequest(text=b"ok", metadata={"_origin": tpb.Value(s="x")}),
                     "reserved"),
    "non-finite float": (pb.RememberRequest(text=b"ok", metadata={"k": tpb.Value(f=float("nan"))}),
                         "finite"),
    "wrong dimension": (pb.RememberRequest(text=b"ok", embedding=np.ones(17, "<f4").tobytes()),
                        "17 dimensions"),
    "ragged embedding": (pb.RememberRequest(text=b"ok", embedding=b"\x00" * 7), "float32"),
    "ttl without ephemeral": (pb.RememberRequest(text=b"ok", ttl_seconds=5), "EPHEMERAL"),
}


@pytest.mark.parametrize("case", sorted(BAD_ITEMS))
def test_bad_item_is_invalid_argument_and_nothing_of_the_batch_is_written(
    small: NodeHandle, case: str
) -> None:
    request, words = BAD_ITEMS[case]
    stub = _stub(small)
    code, details = _code(stub.Remember, request)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and words in details
    # the same item inside a batch: the good items before it are not written either
    batch = pb.RememberBatchRequest(items=[_good("a"), _good("b"), request])
    code, details = _code(stub.RememberBatch, batch)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and details.startswith("item 2:")
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


def test_client_refuses_nested_metadata_before_sending(small: NodeHandle) -> None:
    from memnode import InvalidArgument

    with pytest.raises(InvalidArgument, match="flat map"):
        small.client.remember("x", {"nested": {"a": 1}})
    with pytest.raises(InvalidArgument, match="privacy"):
        small.client.remember("x", privacy="secret")
    _assert_nothing_written(small)


def test_node_keeps_serving_after_bad_input(small: NodeHandle) -> None:
    stub = _stub(small)
    for _ in range(20):
        _code(stub.Remember, pb.RememberRequest(text=b"\xff"))
    assert small.client.remember("still fine")
