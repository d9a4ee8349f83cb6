"""Client authentication: bearer tokens checked on a real gRPC server (port 0).

Every bad token of the issue's list (missing, malformed, forged, another node's, revoked,
expired) and every wrong scope gets its status code, its message and its count in
``memnode_auth_refused_total``, and the node keeps answering. Expiry runs on a fake clock.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import grpc
import pytest
from grpc_health.v1 import health_pb2, health_pb2_grpc

from memnode import Client, NewMemory, PermissionDenied, Unauthenticated
from memnode.node import tokens
from memnode.node.tokens import Claims, TokenError
from memnode.storage.tokenstore import LIST_FILE, TokenStore

from helpers import FakeClock, NodeHandle

ALL = frozenset({"read", "write", "admin"})


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def secured(node_factory: Callable[..., NodeHandle], clock: FakeClock) -> NodeHandle:
    return node_factory("secured", clock_ms=clock, client_auth="token")


def issue(handle: NodeHandle, clock: FakeClock, *scopes: str, ttl: float = 0) -> str:
    token, _ = TokenStore(handle.data_dir).issue(frozenset(scopes), clock(), ttl)
    return token


def refused(handle: NodeHandle, reason: str) -> float:
    value = handle.node.metrics.registry.get_sample_value(
        "memnode_auth_refused_total", {"reason": reason})
    return value or 0.0


def _with_claims(token: str, **changes: Any) -> str:
    prefix, claims, mac = token.split(".")
    body = json.loads(base64.urlsafe_b64decode(claims + "=" * (-len(claims) % 4)))
    body.update(changes)
    raw = base64.urlsafe_b64encode(json.dumps(body).encode()).rstrip(b"=").decode()
    return f"{prefix}.{raw}.{mac}"


# -- the pure token code -----------------------------------------------------------------


def test_a_token_round_trips_and_any_change_breaks_it() -> None:
    key = bytes(range(32))
    claims = Claims(tokens.key_id(key), "abc", frozenset({"read"}), 1, 0)
    token = tokens.sign(key, claims)
    assert tokens.decode(token, key) == claims
    with pytest.raises(TokenError) as err:
        tokens.decode(_with_claims(token, scp=["admin"]), key)
    assert err.value.reason == "bad_signature"
    with pytest.raises(TokenError) as err:
        tokens.decode(token, bytes(32))
    assert err.value.reason == "foreign"
    for bad in ("x", "mnt1.a.b", "mnt1..", "mnt2." + token[5:], token + "é", "a" * 5000,
                "mnt1." + base64.urlsafe_b64encode(b'{"kid": 1}').decode() + ".AA"):
        with pytest.raises(TokenError) as err:
            tokens.decode(bad, key)
        assert err.value.reason == "malformed", bad


def test_scopes_parse_strictly() -> None:
    assert tokens.parse_scopes(["read,write"]) == {"read", "write"}
    assert tokens.parse_scopes(["read", " admin "]) == {"read", "admin"}
    for bad in (["root"], [""], ["read,rw"]):
        with pytest.raises(ValueError):
            tokens.parse_scopes(bad)


# -- a node with --client-auth token -------------------------------------------------------


def test_each_bad_token_is_refused_clearly_counted_and_the_node_keeps_serving(
        secured: NodeHandle, node_factory: Callable[..., NodeHandle], clock: FakeClock) -> None:
    good = issue(secured, clock, "read", "write")
    other = node_factory("other", clock_ms=clock, client_auth="token")
    foreign = issue(other, clock, "admin")
    forged = _with_claims(good, scp=["admin"])
    random_key = bytes(32)
    self_signed = tokens.sign(random_key, Claims(tokens.key_id(TokenStore(
        secured.data_dir).key()), "fake", ALL, clock(), 0))
    cases = [("", "missing", "no token"), ("hello", "malformed", "malformed token"),
             (good[:-3], "bad_signature", "signature"), (forged, "bad_signature", "forged"),
             (self_signed, "bad_signature", "signature"),
             (foreign, "foreign", "another node")]
    for token, reason, words in cases:
        before = refused(secured, reason)
        with Client(secured.addr, token=token, timeout=10) as c, \
                pytest.raises(Unauthenticated, match=words):
            c.status()
        assert refused(secured, reason) == before + 1, reason
    with Client(secured.addr, token=good, timeout=10) as c:
        assert c.status().node_id == secured.node.node_id
    codes = secured.node.metrics.registry.get_sample_value(
        "memnode_requests_total", {"method": "Status", "code": "UNAUTHENTICATED"})
    assert codes == len(cases)


def test_expiry_follows_the_node_clock(secured: NodeHandle, clock: FakeClock) -> None:
    token = issue(secured, clock, "read", ttl=60)
    with Client(secured.addr, token=token, timeout=10) as c:
        c.status()
        clock.advance(59.9)
        c.status()
        clock.advance(0.2)
        with pytest.raises(Unauthenticated, match="expired"):
            c.status()
    assert refused(secured, "expired") == 1


def test_revocation_applies_to_the_very_next_call(secured: NodeHandle,
                                                  clock: FakeClock) -> None:
    store = TokenStore(secured.data_dir)
    token, record = store.issue(frozenset({"write"}), clock())
    kept = issue(secured, clock, "write")
    with Client(secured.addr, token=token, timeout=10) as c, \
            Client(secured.addr, token=kept, timeout=10) as k:
        c.remember("before the revocation")  # its claims are now cached
        store.revoke(record.id, clock())
        with pytest.raises(Unauthenticated, match="revoked"):
            c.remember("after the revocation")
        k.remember("another token still works")
    assert refused(secured, "revoked") == 1
    # the list is the allow-list: without it no token is accepted
    (secured.data_dir / LIST_FILE).unlink()
    with Client(secured.addr, token=kept, timeout=10) as k, \
            pytest.raises(Unauthenticated, match="not on this node's token list"):
        k.remember("no list, no entry")
    assert refused(secured, "unknown") == 1


CALLS: dict[str, tuple[str, Callable[[Client], Any]]] = {
    "Status": ("read", lambda c: c.status()),
    "Recall": ("read", lambda c: c.recall("anything")),
    "Get": ("read", lambda c: c.get("aaaaaaaaaaaaaaaaaaaa/none")),
    "List": ("read", lambda c: list(c.list())),
    "List mesh": ("admin", lambda c: list(c.list(scope="mesh"))),
    "Remember": ("write", lambda c: c.remember("a fact")),
    "RememberBatch": ("write", lambda c: c.remember_batch([NewMemory("one")])),
    "RememberStream": ("write", lambda c: list(c.remember_batches([[NewMemory("two")]]))),
    "Update": ("write", lambda c: c.update("aaaaaaaaaaaaaaaaaaaa/none", {"k": 1})),
    "Forget": ("write", lambda c: c.forget("aaaaaaaaaaaaaaaaaaaa/none")),
}


def _allowed(call: Callable[[Client], Any], client: Client) -> bool:
    try:
        call(client)
    except PermissionDenied:
        return False
    except Exception as exc:  # not found / refused by the node: it was let in
        assert not isinstance(exc, Unauthenticated), exc
    return True


@pytest.mark.parametrize("scopes", [("read",), ("write",), ("read", "write"), ("admin",)])
def test_each_method_needs_its_scope(secured: NodeHandle, clock: FakeClock,
                                     scopes: tuple[str, ...]) -> None:
    token = issue(secured, clock, *scopes)
    expected_denials = 0
    with Client(secured.addr, token=token, timeout=10) as c:
        for name, (needed, call) in CALLS.items():
            want = needed in scopes or "admin" in scopes
            assert _allowed(call, c) is want, (name, scopes)
            expected_denials += not want
    assert refused(secured, "scope") == expected_denials


def test_a_denial_names_the_scope_needed(secured: NodeHandle, clock: FakeClock) -> None:
    with Client(secured.addr, token=issue(secured, clock, "read"), timeout=10) as c, \
            pytest.raises(PermissionDenied, match="Remember needs a token with scope 'write'"):
        c.remember("nope")
    assert secured.node.store.count_local() == 0


def test_health_and_reflection_stay_open(secured: NodeHandle) -> None:
    with grpc.insecure_channel(secured.addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service=""), timeout=10)
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        answers = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=10)
        names = {s.name for a in answers for s in a.list_services_response.service}
        assert "memnode.v1.MemoryService" in names


def test_loopback_nodes_need_no_token_by_default(node: NodeHandle) -> None:
    assert node.node.config.auth_mode == "none"
    assert node.client.status().node_id == node.node.node_id
    assert not (Path(node.data_dir) / "client_tokens.key").exists()
