"""memnode.node.rekey: a new current metadata key makes the node re-publish its own live
TEAM memories with metadata (UPDATE events hashed under the new key), and nothing else."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from federation.events import EventKind
from federation.io.keyring import MetadataKeys
from federation.io.metakey import MetadataKey
from memnode.node.rekey import META

from helpers import NodeHandle, wait_for


def test_a_new_current_key_re_publishes_own_team_metadata_only(
        node_factory: Callable[..., NodeHandle], tmp_path: Path) -> None:
    key_file = tmp_path / "metadata.key"
    MetadataKeys.single(MetadataKey.generate()).write(key_file)
    handle = node_factory("n", metadata_key_file=key_file)
    node, c = handle.node, handle.client
    team = [c.remember(f"team fact w{i}", {"owner": f"u{i}"}) for i in range(5)]
    gone = c.remember("team, then forgotten", {"owner": "x"})
    c.forget(gone)
    c.update(team[0], {"owner": "changed"})
    others = [c.remember("team without metadata"),
              c.remember("private", {"owner": "p"}, privacy="private"),
              c.remember("public", {"owner": "q"}, privacy="public")]
    seq = node.log.watermark(node.node_id)
    MetadataKeys.load(key_file, {}).add().use(1).write(key_file)
    wait_for(lambda: node.log.meta(META) == node.metakey.fingerprint()
             and node.metakey.keys().current_id == 1, "the node to re-publish under key 1")
    keys = node.metakey.keys()
    assert node.republisher.republished == len(team)
    events = node.log.run_after(node.node_id, seq, 100, 1 << 30).events
    assert [e.kind for e in events] == [EventKind.UPDATE] * len(team)
    assert {f"{node.node_id}/{e.local_id}" for e in events} == set(team)
    owners = {e.metadata["owner"] for e in events}
    assert owners == {keys.hashes(v)[1] for v in ["changed", "u1", "u2", "u3", "u4"]}
    assert c.get(team[0]).metadata == {"owner": "changed"}  # the memory itself is unchanged
    assert c.get(others[1]).privacy == "private"
    assert node.republisher.step() == 0  # published under the current key: nothing to do
