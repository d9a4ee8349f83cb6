"""Watch with scope mesh on a real 2-node mesh (node processes): the other node's
memories arrive as replicas, without text; scope local stays with own memories."""

from __future__ import annotations

from pathlib import Path

from watchkit import Collector

from helpers import NodeProcess, start_mesh, wait_for


def test_mesh_watch_streams_the_other_nodes_memories_without_text(
        tmp_path: Path, procs: list[NodeProcess]) -> None:
    a, b = start_mesh(tmp_path, 2)
    ca, cb = a.client(), b.client()
    a_id, b_id = ca.status().node_id, cb.status().node_id
    mesh = Collector(cb.watch(scope="mesh"))
    local = Collector(cb.watch(scope="local"))
    team = ca.remember("the staging database moved to host db-7", {"team": "data"})
    public = ca.remember("office closed on the 24th", {"topic": "hr"}, privacy="public")
    own = cb.remember("b's own note", {"topic": "b"})
    got = {ch.memory.id: ch for ch in mesh.wait(3, "two replicas and one own memory")}
    assert set(got) == {team, public, own}
    for mid in (team, public):
        ch = got[mid]
        assert (ch.kind, ch.origin, ch.memory.origin, ch.memory.local) == ("put", a_id,
                                                                           a_id, False)
        assert ch.memory.text == "" and ch.seq >= 1
    assert got[public].memory.metadata == {"topic": "hr"} and got[public].memory.privacy == "public"
    hashed = got[team].memory.metadata["team"]
    assert got[team].memory.privacy == "team" and hashed != "data" and isinstance(hashed, str)
    assert got[own].memory.text == "b's own note" and got[own].origin == b_id

    ca.forget(team)
    forget = mesh.wait(4, "the replica's forget")[3]
    assert (forget.kind, forget.memory.id, forget.origin) == ("forget", team, a_id)
    assert set(mesh.watch.version_vector) == {a_id, b_id}
    assert [ch.memory.id for ch in local.wait(1, "the own memory")] == [own]
    assert local.watch.version_vector == {b_id: 1}
    for c in (mesh, local):
        c.watch.close()
    wait_for(lambda: mesh.ended.is_set() and local.ended.is_set(), "both watches to end")
