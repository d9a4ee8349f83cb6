"""Checked at the door: a client's own embedding declares the model it came from, and
only the node's model may replicate (team, public); private and ephemeral may leave it
undeclared."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from federation.v1 import types_pb2 as tpb
from memnode.errors import InvalidArgument
from memnode.v1 import memnode_pb2 as pb
from memnode.v1 import memnode_pb2_grpc as pb_grpc

from helpers import NodeHandle

EPHEMERAL, PRIVATE, TEAM, PUBLIC = 1, 2, 3, 4


@pytest.fixture
def node(node_factory) -> NodeHandle:  # type: ignore[no-untyped-def]
    handle: NodeHandle = node_factory("door")
    return handle


def _remember(handle: NodeHandle, **fields: object) -> tuple[grpc.StatusCode, str]:
    stub = pb_grpc.MemoryServiceStub(grpc.insecure_channel(handle.addr))
    try:
        stub.Remember(pb.RememberRequest(text="a fact", **fields), timeout=10)  # type: ignore[arg-type]
    except grpc.RpcError as exc:
        return exc.code(), exc.details()  # type: ignore[attr-defined]
    return grpc.StatusCode.OK, ""


def test_only_the_nodes_model_is_accepted_for_what_replicates(node: NodeHandle) -> None:
    model = node.node.model
    vec = np.ones(model.dim, "<f4").tobytes()
    ours = tpb.ModelIdentity(name=model.name, dim=model.dim, fingerprint=model.fingerprint)
    other = tpb.ModelIdentity(name="other-model", dim=model.dim, fingerprint="0badc0ffee")
    for privacy in (TEAM, PUBLIC, 0):  # 0: the default, team
        code, details = _remember(node, privacy=privacy, embedding=vec)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "must declare the model" in details and str(model) in details
        code, details = _remember(node, privacy=privacy, embedding=vec, embedding_model=other)
        assert code == grpc.StatusCode.INVALID_ARGUMENT
        assert "other-model/" in details and str(model) in details
    code, details = _remember(node, privacy=PRIVATE, embedding=vec, embedding_model=other)
    assert code == grpc.StatusCode.INVALID_ARGUMENT and "other-model/" in details
    assert node.client.status().memories == {"local": 0, "replicated": 0, "ephemeral": 0}
    stats = node.node.metrics.registry
    assert stats.get_sample_value("memnode_errors_total", {"kind": "invalid_argument"}) == 7

    for fields in ({"privacy": TEAM, "embedding_model": ours},
                   {"privacy": PUBLIC, "embedding_model": ours},
                   {"privacy": PRIVATE}, {"privacy": EPHEMERAL},
                   {"privacy": PRIVATE, "embedding_model": ours}):
        assert _remember(node, embedding=vec, **fields) == (grpc.StatusCode.OK, "")


def test_the_client_declares_the_model_status_gives(node: NodeHandle) -> None:
    model = node.client.status().model
    vec = np.ones(model["dim"], "<f4").tobytes()
    item = node.client.remember("declared", embedding=vec, embedding_model=model)
    assert node.client.get(item) is not None
    with pytest.raises(InvalidArgument, match="must declare the model"):
        node.client.remember("undeclared", embedding=vec)
    with pytest.raises(InvalidArgument, match="this node's model is"):
        node.client.remember("another model", embedding=vec,
                             embedding_model={**model, "fingerprint": "ffff"})
    with pytest.raises(InvalidArgument, match="not a model identity"):
        node.client.remember("nonsense", embedding=vec, embedding_model={"dim": "many"})
    assert node.client.remember("kept home", embedding=vec, privacy="private")
