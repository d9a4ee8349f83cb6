"""What the discovery adapters share: HOST:PORT handling, this host's own addresses,
and the counters each adapter exposes as ``stats``."""

from __future__ import annotations

import ipaddress
import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field

import ifaddr

log = logging.getLogger("memnode.sidecar.discovery")

#: Returns the IP addresses (text form) of this host's interfaces, loopback included.
LocalAddresses = Callable[[], frozenset[str]]

_WILDCARDS = frozenset({"", "0.0.0.0", "::", "*"})


def split_hostport(address: str) -> tuple[str, int]:
    """``"10.0.0.1:7422"``, ``"[fd00::1]:7422"``, ``"node-0.svc:7422"`` -> (host, port).
    Raises ValueError on anything else."""
    host, sep, port_text = address.rpartition(":")
    if not sep or not port_text.isdigit():
        raise ValueError(f"not HOST:PORT: {address!r}")
    port = int(port_text)
    if not 0 < port < 65536:
        raise ValueError(f"port out of range in {address!r}")
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
        ipaddress.IPv6Address(host)  # raises ValueError
    elif ":" in host:
        raise ValueError(f"an IPv6 host must be in brackets: {address!r}")
    return host, port


def join_hostport(host: str, port: int) -> str:
    """The inverse of :func:`split_hostport` (brackets around IPv6 literals)."""
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def ip_literal(host: str) -> str | None:
    """The canonical text of ``host`` if it is an IP literal, else None."""
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return None


def is_wildcard(host: str) -> bool:
    return host in _WILDCARDS


def system_local_addresses() -> frozenset[str]:
    """Every IP address on this host's interfaces (in this network namespace)."""
    out: set[str] = set()
    for adapter in ifaddr.get_adapters():
        for ip in adapter.ips:
            if isinstance(ip.ip, str):
                out.add(ip.ip)
            else:  # IPv6: (address, flowinfo, scope_id)
                out.add(ip.ip[0].split("%", 1)[0])
    return frozenset(a for a in (ip_literal(x) for x in out) if a is not None)


def non_loopback_ipv4() -> list[str]:
    """This host's IPv4 interface addresses, loopback and link-local left out, sorted."""
    addrs = []
    for text in system_local_addresses():
        ip = ipaddress.ip_address(text)
        if ip.version == 4 and not ip.is_loopback and not ip.is_link_local:
            addrs.append(ip)
    return [str(a) for a in sorted(addrs)]


def is_own(candidate: str, own_address: str, local: Iterable[str]) -> bool:
    """Whether ``candidate`` (HOST:PORT) is this node's gossip address: the announced
    address itself or, when we listen on a wildcard (or announced a name), any address
    of this host's interfaces at our port."""
    if candidate == own_address:
        return True
    try:
        host, port = split_hostport(candidate)
        own_host, own_port = split_hostport(own_address)
    except ValueError:
        return False
    if port != own_port:
        return False
    ip, own_ip = ip_literal(host), ip_literal(own_host)
    if ip is None:
        return host.lower() == own_host.lower()
    if own_ip is not None and not is_wildcard(own_ip):
        return ip == own_ip
    return ip in set(local)


@dataclass
class DiscoveryStats:
    """Plain counters of one adapter, safe to read from any thread with
    :meth:`snapshot`. Suggested Prometheus names (labels ``adapter`` and ``reason``):
    ``memnode_discovery_rejected_total``, ``memnode_discovery_failures_total``,
    ``memnode_discovery_lookups_total``, ``memnode_discovery_changes_total``."""

    rejected: Counter[str] = field(default_factory=Counter)  # announcements refused
    failures: Counter[str] = field(default_factory=Counter)  # lookups that failed
    lookups: int = 0  # lookups attempted (a DNS resolution, an mDNS service resolve)
    changes: int = 0  # times the candidate set changed
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def reject(self, reason: str) -> None:
        with self._lock:
            self.rejected[reason] += 1

    def fail(self, reason: str) -> None:
        with self._lock:
            self.failures[reason] += 1

    def lookup(self) -> None:
        with self._lock:
            self.lookups += 1

    def changed(self) -> None:
        with self._lock:
            self.changes += 1

    def snapshot(self) -> dict[str, object]:
        """A consistent copy: ``{"rejected": {...}, "failures": {...}, "lookups": n,
        "changes": n}``."""
        with self._lock:
            return {"rejected": dict(self.rejected), "failures": dict(self.failures),
                    "lookups": self.lookups, "changes": self.changes}


def notify(on_change: Callable[[], None] | None, adapter: str) -> None:
    """Call the sidecar's callback; an exception in it is logged, never propagated into
    the adapter's thread."""
    if on_change is None:
        return
    try:
        on_change()
    except Exception:
        log.exception("discovery %s: on_change callback failed", adapter)
