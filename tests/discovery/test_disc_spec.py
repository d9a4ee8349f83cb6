"""parse_discover: the values of --discover."""

from __future__ import annotations

import pytest

from federation.io.discovery import DnsDiscovery, ZeroconfDiscovery, parse_discover


def test_zeroconf_default_and_pinned_interfaces() -> None:
    plain = parse_discover("zeroconf", 7422)
    assert isinstance(plain, ZeroconfDiscovery) and plain.name == "zeroconf"
    assert plain.interfaces == ()
    pinned = parse_discover("zeroconf:10.77.0.1, 10.78.0.1", 7422)
    assert isinstance(pinned, ZeroconfDiscovery)
    assert pinned.interfaces == ("10.77.0.1", "10.78.0.1")


def test_dns_with_and_without_a_port() -> None:
    default = parse_discover("dns:memnode-peers.default.svc.cluster.local", 7422,
                             dns_interval_seconds=2.5)
    assert isinstance(default, DnsDiscovery)
    assert default.name == "dns:memnode-peers.default.svc.cluster.local"
    assert (default.port, default.interval_seconds) == (7422, 2.5)
    given = parse_discover("dns:peers.example.:9000", 7422)
    assert isinstance(given, DnsDiscovery)
    assert (given.name, given.port) == ("dns:peers.example", 9000)


@pytest.mark.parametrize("spec", ["", "static", "mdns", "zeroconf:", "zeroconf:eth0",
                                  "zeroconf:10.0.0.1,", "zeroconf:fd00::1", "dns",
                                  "dns:", "dns:a..b", "dns:-a.b", "dns:a:", "dns:a:x",
                                  "dns:a:0", "dns:a:65536", "dns:a:1:2", "dns:a b",
                                  "DNS:a"])
def test_anything_else_is_a_clear_error(spec: str) -> None:
    with pytest.raises(ValueError) as err:
        parse_discover(spec, 7422)
    assert repr(spec) in str(err.value)
    assert "expected zeroconf, zeroconf:IP[,IP...], dns:NAME or dns:NAME:PORT" in str(err.value)
