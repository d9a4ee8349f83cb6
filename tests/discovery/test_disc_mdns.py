"""ZeroconfDiscovery's bookkeeping without a network: what the browser reports (a
resolved ServiceInfo, a removal) turned into candidates, refusals counted and logged
once per peer. The real thing, across namespaces, is test_zeroconf_netns.py."""

from __future__ import annotations

import logging
import socket

import pytest
from zeroconf import ServiceInfo, ServiceStateChange, Zeroconf

from federation.io.discovery import SERVICE_TYPE, ZeroconfDiscovery
from federation.io.discovery.mdns import check_txt, txt_record
from federation.ports import Announcement, Discovery

ME = Announcement("node-me", "10.0.0.1:7422", "f" * 64, 3)
LOGGER = "memnode.sidecar.discovery"


def info(instance: str, properties: dict[bytes, bytes | None] | dict[str, str],
         addresses: list[str], port: int = 7422) -> ServiceInfo:
    return ServiceInfo(SERVICE_TYPE, f"{instance}.{SERVICE_TYPE}", port=port,
                       properties=properties, server=f"{instance}.local.",
                       addresses=[socket.inet_aton(a) for a in addresses])


def peer(node_id: str, *addresses: str, fed: str = ME.federation_id, proto: int = 3,
         port: int = 7422) -> ServiceInfo:
    return info(node_id, txt_record(Announcement(node_id, "x:1", fed, proto)),
                list(addresses), port)


class Bound:
    """An adapter as start() leaves it, without opening sockets."""

    def __init__(self) -> None:
        self.disc = ZeroconfDiscovery(local_addresses=lambda: frozenset({"10.0.0.1"}))
        self.changes = 0
        self.disc._me = ME
        self.disc._on_change = self.on_change

    def on_change(self) -> None:
        self.changes += 1


def name(instance: str) -> str:
    return f"{instance}.{SERVICE_TYPE}"


def test_peers_of_our_federation_are_proposed_updated_and_withdrawn() -> None:
    b = Bound()
    d: Discovery = b.disc
    assert d.name == "zeroconf"
    b.disc.consider(name("n2"), peer("n2", "10.0.0.2"))
    b.disc.consider(name("n3"), peer("n3", "10.0.0.3", "10.0.1.3", port=9000))
    assert d.candidates() == {"10.0.0.2:7422", "10.0.0.3:9000", "10.0.1.3:9000"}
    assert b.changes == 2
    b.disc.consider(name("n2"), peer("n2", "10.0.0.2"))  # the same again
    assert b.changes == 2
    b.disc.consider(name("n2"), peer("n2", "10.0.0.22"))  # moved
    assert "10.0.0.22:7422" in d.candidates() and "10.0.0.2:7422" not in d.candidates()
    b.disc._on_service_state_change(Zeroconf.__new__(Zeroconf), SERVICE_TYPE, name("n3"),
                                    ServiceStateChange.Removed)  # a goodbye
    assert d.candidates() == {"10.0.0.22:7422"} and b.changes == 4
    assert b.disc.stats.snapshot()["rejected"] == {}


def test_self_is_skipped_by_node_id_and_own_address() -> None:
    b = Bound()
    b.disc.consider(name("node-me"), peer("node-me", "10.0.0.1"))
    b.disc.consider(name("other"), peer("other", "10.0.0.1", "10.0.0.5"))
    assert b.disc.candidates() == {"10.0.0.5:7422"}  # our own HOST:PORT never listed
    assert b.disc.stats.snapshot()["rejected"] == {}


@pytest.mark.parametrize(("properties", "reason"), [
    ({b"node_id": b"n9", b"fed": b"other", b"proto": b"3"}, "federation"),
    ({b"node_id": b"n9", b"fed": b"f" * 64, b"proto": b"4"}, "protocol"),
    ({b"node_id": b"n9", b"fed": b"f" * 64}, "malformed"),
    ({b"node_id": b"n9", b"fed": b"f" * 64, b"proto": None}, "malformed"),
    ({b"node_id": b"n9", b"fed": b"f" * 64, b"proto": b"three"}, "malformed"),
    ({b"node_id": b"\xff\xfe", b"fed": b"f" * 64, b"proto": b"3"}, "malformed"),
    ({b"node_id": b"x" * 64, b"fed": b"f" * 64, b"proto": b"3"}, "malformed"),
    ({b"node_id": b"a\nb", b"fed": b"f" * 64, b"proto": b"3"}, "malformed"),
    ({}, "malformed"),
])
def test_foreign_or_malformed_txt_is_refused_counted_and_logged_once(
        properties: dict[bytes, bytes | None], reason: str,
        caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger=LOGGER)
    assert check_txt(properties, ME)[1] == reason
    b = Bound()
    for _ in range(5):  # the browser reports updates of the same service
        b.disc.consider(name("n9"), info("n9", properties, ["10.0.0.9"]))
    assert b.disc.candidates() == frozenset() and b.changes == 0
    assert b.disc.stats.snapshot()["rejected"] == {reason: 1}
    refused = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert len(refused) == 1 and reason in refused[0].getMessage()


def test_a_peer_that_turns_foreign_is_withdrawn_and_can_come_back() -> None:
    b = Bound()
    b.disc.consider(name("n2"), peer("n2", "10.0.0.2"))
    assert b.disc.candidates() == {"10.0.0.2:7422"}
    b.disc.consider(name("n2"), peer("n2", "10.0.0.2", proto=4))
    assert b.disc.candidates() == frozenset()
    b.disc.consider(name("n2"), peer("n2", "10.0.0.2"))
    assert b.disc.candidates() == {"10.0.0.2:7422"}
    b.disc.consider(name("n2"), peer("n2", "10.0.0.2", proto=4))  # a new episode: counted
    assert b.disc.stats.snapshot()["rejected"] == {"protocol": 2}


def test_unresolved_and_addressless_services() -> None:
    b = Bound()
    b.disc.consider(name("n4"), None)
    b.disc.consider(name("n5"), peer("n5"))
    b.disc.consider(name("n6"), peer("n6", "10.0.0.1"))  # only our own address
    assert b.disc.candidates() == frozenset()
    assert b.disc.stats.snapshot()["rejected"] == {"unresolved": 1, "no_address": 2}


def test_a_resolve_that_raises_is_swallowed() -> None:
    class Broken:
        def get_service_info(self, *args: object, **kwargs: object) -> ServiceInfo:
            raise RuntimeError("zeroconf is closing")

    b = Bound()
    b.disc._on_service_state_change(Broken(), SERVICE_TYPE,  # type: ignore[arg-type]
                                    name("n7"), ServiceStateChange.Added)
    assert b.disc.candidates() == frozenset()


def test_interfaces_must_be_ipv4_addresses() -> None:
    for bad in (["eth0"], ["fd00::1"], ["0.0.0.0"], ["10.0.0.1", "x"]):
        with pytest.raises(ValueError, match="IPv4"):
            ZeroconfDiscovery(bad)
    assert ZeroconfDiscovery(["10.0.0.1"]).interfaces == ("10.0.0.1",)


def test_stop_before_start_is_harmless() -> None:
    disc = ZeroconfDiscovery()
    disc.stop()
    disc.stop()
    assert disc.candidates() == frozenset()
