"""StaticDiscovery: the given peers minus this node."""

from __future__ import annotations

import pytest

from federation.io.discovery import StaticDiscovery
from federation.ports import Announcement, Discovery

LOCAL = frozenset({"127.0.0.1", "::1", "10.0.0.1"})


def me(address: str) -> Announcement:
    return Announcement("node-a", address, "fed", 1)


def local() -> frozenset[str]:
    return LOCAL


def test_candidates_are_the_list_minus_our_announced_address() -> None:
    calls: list[None] = []
    disc: Discovery = StaticDiscovery(["10.0.0.1:7422", "10.0.0.2:7422", "peer-c:7422"],
                                      local_addresses=local)
    assert disc.name == "static"
    assert disc.candidates() == frozenset()  # nothing before start
    disc.start(me("10.0.0.1:7422"), lambda: calls.append(None))
    assert disc.candidates() == {"10.0.0.2:7422", "peer-c:7422"}
    disc.stop()
    disc.stop()  # idempotent
    assert disc.candidates() == frozenset()
    assert calls == []  # a fixed set never changes


def test_a_wildcard_listener_skips_every_local_address_at_its_port() -> None:
    disc = StaticDiscovery(["10.0.0.1:7422", "127.0.0.1:7422", "[::1]:7422",
                            "10.0.0.1:7423", "10.0.0.9:7422"], local_addresses=local)
    disc.start(me("0.0.0.0:7422"), lambda: None)
    # another port on this host may be another node; 10.0.0.9 is not ours
    assert disc.candidates() == {"10.0.0.1:7423", "10.0.0.9:7422"}


def test_a_specific_listener_skips_only_itself() -> None:
    disc = StaticDiscovery(["10.0.0.1:7422", "127.0.0.1:7422"], local_addresses=local)
    disc.start(me("10.0.0.1:7422"), lambda: None)
    assert disc.candidates() == {"127.0.0.1:7422"}  # not us: we listen on 10.0.0.1 only


def test_a_name_equal_to_ours_is_skipped() -> None:
    disc = StaticDiscovery(["node-0.memnode:7422", "node-1.memnode:7422"],
                           local_addresses=local)
    disc.start(me("NODE-0.memnode:7422"), lambda: None)
    assert disc.candidates() == {"node-1.memnode:7422"}


@pytest.mark.parametrize("bad", ["10.0.0.1", "10.0.0.1:", "10.0.0.1:x", "h:0", "h:70000",
                                 "fd00::1:7422", "[nope]:7422"])
def test_malformed_addresses_are_refused_when_made(bad: str) -> None:
    with pytest.raises(ValueError, match="7422|HOST:PORT|port|IPv6|nope"):
        StaticDiscovery(["10.0.0.2:7422", bad])
