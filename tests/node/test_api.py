"""The client API end to end: real server on port 0, real Chroma, the test embedder."""

from __future__ import annotations

import pytest

from federation.events import EventKind, verify_signature
from memnode import Client, FailedPrecondition, NewMemory, NotFound

from helpers import FakeClock, NodeHandle


def test_remember_get_recall_forget(node: NodeHandle) -> None:
    c = node.client
    mid = c.remember("the build server lives in rack seven", {"team": "infra", "n": 3})
    assert mid.startswith(node.node.node_id + "/")
    got = c.get(mid)
    assert got.text == "the build server lives in rack seven"
    assert got.metadata == {"team": "infra", "n": 3}
    assert got.privacy == "team" and got.local
    c.remember("lunch is at noon on fridays")
    hits = c.recall("which rack holds the build server", k=2)
    assert hits[0].id == mid and hits[0].text.startswith("the build server")
    assert hits[0].score > hits[1].score
    c.forget(mid)
    with pytest.raises(NotFound):
        c.get(mid)
    assert all(h.id != mid for h in c.recall("build server rack", k=5))


def test_metadata_types_round_trip_and_where(node: NodeHandle) -> None:
    c = node.client
    a = c.remember("alpha note", {"s": "x", "i": -5, "f": 2.5, "b": True})
    c.remember("alpha other", {"s": "y"})
    assert c.get(a).metadata == {"s": "x", "i": -5, "f": 2.5, "b": True}
    hits = c.recall("alpha", where={"s": "x"})
    assert [h.id for h in hits] == [a]
    assert [h.id for h in c.recall("alpha", where={"b": True, "i": -5})] == [a]


def test_batch_is_durable_in_order_and_listed(node: NodeHandle) -> None:
    c = node.client
    ids = c.remember_batch([NewMemory(f"memo number {i}", {"i": i}) for i in range(50)])
    assert len(ids) == len(set(ids)) == 50
    assert [c.get(m).metadata["i"] for m in ids[:3]] == [0, 1, 2]
    listed = list(c.list(page_size=7))
    assert sorted(m.id for m in listed) == sorted(ids)


def test_stream_acknowledges_each_batch(node: NodeHandle) -> None:
    batches = [[NewMemory(f"streamed {b}-{i}") for i in range(10)] for b in range(5)]
    acked = list(node.client.remember_batches(iter(batches)))
    assert [len(ids) for ids in acked] == [10] * 5
    assert node.client.status().memories["local"] == 50


def test_update_changes_metadata_and_signs_an_update_event(node: NodeHandle) -> None:
    c = node.client
    mid = c.remember("rotating keys", {"owner": "ana", "tmp": 1})
    updated = c.update(mid, {"owner": "bo"}, remove_keys=["tmp"])
    assert updated.metadata == {"owner": "bo"}
    assert c.get(mid).metadata == {"owner": "bo"}
    event = node.node.log.latest_event(mid)
    assert event is not None and event.kind == EventKind.UPDATE and verify_signature(event)
    assert event.metadata["owner"] != "bo"  # TEAM: a keyed hash, not the value


def test_privacy_levels_and_events(node: NodeHandle) -> None:
    c = node.client
    team = c.remember("team fact", {"k": "v"})
    public = c.remember("public fact", {"k": "v"}, privacy="public")
    private = c.remember("private fact", {"k": "v"}, privacy="private")
    log = node.node.log
    assert log.latest_event(private) is None  # never replicated
    team_event, public_event = log.latest_event(team), log.latest_event(public)
    assert team_event is not None and public_event is not None
    assert public_event.metadata == {"k": "v"}
    assert team_event.metadata["k"] == node.node.metakey.hash_value("v")
    assert verify_signature(team_event) and verify_signature(public_event)
    assert len(team_event.embedding) == 4 * node.node.model.dim
    vv = c.status().version_vector
    assert vv == {node.node.node_id: 2}
    c.forget(team)
    forget_event = log.latest_event(team)
    assert forget_event is not None and forget_event.kind == EventKind.FORGET
    assert forget_event.embedding == b"" and forget_event.metadata == {}
    assert c.status().version_vector == {node.node.node_id: 3}


def test_pii_is_redacted_unless_opted_out(node: NodeHandle) -> None:
    c = node.client
    mid = c.remember("mail ana@example.com or call +1 (415) 555-0132")
    text = c.get(mid).text
    assert "ana@example.com" not in text and "555-0132" not in text
    kept = c.remember("mail ana@example.com", keep_pii=True)
    assert c.get(kept).text == "mail ana@example.com"
    registry = node.node.metrics.registry
    assert (registry.get_sample_value("memnode_redactions_total", {"kind": "email"}) or 0) >= 1


def test_pii_in_public_metadata_is_redacted_as_it_travels_in_clear(node: NodeHandle) -> None:
    c = node.client
    meta = {"owner": "ana@example.com", "n": 3}
    public = c.get(c.remember("a public note", meta, privacy="public")).metadata
    assert "ana@example.com" not in str(public["owner"]) and public["n"] == 3
    # TEAM values leave the node as keyed hashes: kept as given, like PRIVATE ones
    assert c.get(c.remember("a team note", meta, privacy="team")).metadata == meta
    kept = c.get(c.remember("opted out", meta, privacy="public", keep_pii=True)).metadata
    assert kept == meta


def test_ephemeral_lives_in_memory_until_its_ttl(node_factory, hash_embedder) -> None:  # type: ignore[no-untyped-def]
    clock = FakeClock()
    handle: NodeHandle = node_factory("eph", clock_ms=clock)
    c = handle.client
    mid = c.remember("short lived thought", privacy="ephemeral", ttl_seconds=60)
    assert c.get(mid).expires_at_ms == clock.now_ms + 60_000
    assert c.recall("short lived thought", k=1)[0].id == mid
    assert handle.node.log.pending_journal() == [] and handle.node.log.latest_event(mid) is None
    assert c.status().memories == {"local": 0, "replicated": 0, "ephemeral": 1}
    clock.advance(61)
    with pytest.raises(NotFound):
        c.get(mid)
    assert c.status().memories["ephemeral"] == 0


def test_forget_of_another_nodes_memory_is_refused(node: NodeHandle) -> None:
    with pytest.raises(NotFound):
        node.client.forget("someoneelse0000000000/abc")
    # a replica of another node's memory can be read but not forgotten here
    from memnode.node.domain import Privacy, ReplicaRecord

    vec = node.node.embedder.embed(["remote thing"])[0]
    rid = "remoteorigin00000000/xyz"
    node.node.store.upsert_replicas(
        [ReplicaRecord(rid, "remoteorigin00000000", vec, {"k": "h"}, Privacy.TEAM, 1, 1)])
    assert node.client.get(rid).text == ""
    with pytest.raises(FailedPrecondition):
        node.client.forget(rid)
    hits = node.client.recall("remote thing", scope="mesh")
    assert hits[0].id == rid and hits[0].text == "" and not hits[0].local
    assert all(h.id != rid for h in node.client.recall("remote thing", scope="local"))


def test_status_reports_identity_and_model(node: NodeHandle) -> None:
    s = node.client.status()
    assert s.node_id == node.node.node_id and len(s.node_id) == 20
    assert s.model["dim"] == 384 and s.model["name"] and s.model["fingerprint"]
    assert s.peers == [] and s.memories == {"local": 0, "replicated": 0, "ephemeral": 0}


def test_restart_keeps_identity_and_memories(node_factory) -> None:  # type: ignore[no-untyped-def]
    first: NodeHandle = node_factory("same")
    mid = first.client.remember("persist me", privacy="private")
    node_id = first.node.node_id
    first.stop()
    second: NodeHandle = node_factory("same")
    assert second.node.node_id == node_id
    assert second.client.get(mid).text == "persist me"


def test_health_and_reflection(node: NodeHandle) -> None:
    import grpc
    from grpc_health.v1 import health_pb2, health_pb2_grpc
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    with grpc.insecure_channel(node.addr) as channel:
        health = health_pb2_grpc.HealthStub(channel)
        reply = health.Check(health_pb2.HealthCheckRequest(service="memnode.v1.MemoryService"))
        assert reply.status == health_pb2.HealthCheckResponse.SERVING
        stub = reflection_pb2_grpc.ServerReflectionStub(channel)
        responses = stub.ServerReflectionInfo(
            iter([reflection_pb2.ServerReflectionRequest(list_services="")]))
        names = {s.name for r in responses for s in r.list_services_response.service}
        assert "memnode.v1.MemoryService" in names


def test_request_metrics_are_counted(node: NodeHandle) -> None:
    node.client.remember("count me")
    with pytest.raises(NotFound):
        node.client.get(f"{node.node.node_id}/nope")
    reg = node.node.metrics.registry
    assert reg.get_sample_value("memnode_requests_total",
                                {"method": "Remember", "code": "OK"}) == 1
    assert reg.get_sample_value("memnode_requests_total",
                                {"method": "Get", "code": "NOT_FOUND"}) == 1
    assert reg.get_sample_value("memnode_errors_total", {"kind": "not_found"}) == 1
    assert reg.get_sample_value("memnode_memories", {"collection": "local"}) == 1


def test_client_reports_unreachable_node() -> None:
    from memnode import Unavailable

    with Client("127.0.0.1:1", timeout=2) as c, pytest.raises(Unavailable, match="cannot reach"):
        c.status()
