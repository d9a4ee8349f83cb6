"""The values of ``--discover`` (repeatable; env ``MEMNODE_DISCOVER``), parsed into
adapters. Static peers come from ``--peer`` (:class:`StaticDiscovery`), not from here.

=========================== ===========================================================
``zeroconf``                mDNS on every non-loopback IPv4 interface (or the one of
                            the announced address when it is specific)
``zeroconf:IP[,IP...]``     mDNS on the interfaces holding these IPv4 addresses
``dns:NAME``                A/AAAA records of NAME, each at our own gossip port
``dns:NAME:PORT``           the same, at PORT
=========================== ===========================================================
"""

from __future__ import annotations

from federation.io.discovery.dns import DEFAULT_INTERVAL_SECONDS, DnsDiscovery
from federation.io.discovery.mdns import ZeroconfDiscovery
from federation.ports import Discovery

USAGE = "zeroconf, zeroconf:IP[,IP...], dns:NAME or dns:NAME:PORT"


def parse_discover(spec: str, default_port: int, *,
                   dns_interval_seconds: float = DEFAULT_INTERVAL_SECONDS) -> Discovery:
    """The adapter a ``--discover`` value names; ``default_port`` (our gossip port) is
    the port of DNS candidates when the value gives none. Raises ValueError (saying
    what is accepted) on anything else."""
    text = spec.strip()
    kind, sep, rest = text.partition(":")
    try:
        if kind == "zeroconf":
            if not sep:
                return ZeroconfDiscovery()
            ips = [x.strip() for x in rest.split(",")]
            if not all(ips):
                raise ValueError("an empty interface address")
            return ZeroconfDiscovery(ips)
        if kind == "dns" and sep:
            name, sep2, port_text = rest.partition(":")
            port = default_port
            if sep2:
                if not port_text.isdigit():
                    raise ValueError(f"port {port_text!r} is not a number")
                port = int(port_text)
            return DnsDiscovery(name, port, dns_interval_seconds)
    except ValueError as exc:
        raise ValueError(f"--discover {spec!r}: {exc} (expected {USAGE})") from None
    raise ValueError(f"--discover {spec!r}: unknown discovery (expected {USAGE})")
