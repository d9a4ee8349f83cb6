"""Metadata updates travel: a replica's metadata follows its origin's, keys removed too."""

from __future__ import annotations

from helpers import NodeHandle, wait_for


def test_update_reaches_the_replica_and_removed_keys_leave_it(node_factory) -> None:  # type: ignore[no-untyped-def]
    a: NodeHandle = node_factory("a", peers=[])
    assert a.sidecar is not None
    b: NodeHandle = node_factory("b", peers=[a.sidecar.address])
    mid = a.client.remember("an evolving memory", {"stage": "draft", "owner": "ana"},
                           privacy="public")
    wait_for(lambda: b.client.get(mid).metadata == {"stage": "draft", "owner": "ana"},
             "the memory to replicate")
    a.client.update(mid, {"stage": "final"}, remove_keys=["owner"])
    wait_for(lambda: b.client.get(mid).metadata == {"stage": "final"},
             "the update (and the removed key) to reach the replica")
    assert b.client.get(mid).text == "" and not b.client.get(mid).local
