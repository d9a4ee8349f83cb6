"""Zeroconf (mDNS / DNS-SD) discovery on a LAN (``--discover zeroconf[:IP[,IP]]``).

Named ``mdns`` so that it never shadows the ``zeroconf`` library it is built on.

- Announces ``NODE_ID._memnode._tcp.local.`` (SRV port = our gossip port, A = our
  addresses) with TXT ``node_id``, ``fed`` (federation id) and ``proto`` (protocol
  version), registered with ``cooperating_responders=True`` (no conflict probing: node
  ids are unique, so peers whose browser runs find us in milliseconds, not ~1.5 s).
- Interfaces: the ones given (IPv4 addresses), else the interface of the announced
  address when it is a specific IPv4 address, else every non-loopback IPv4 interface.
  The A records are the announced address when it is specific, else the interfaces'.
- Browses the same type and proposes, at their SRV port, the IPv4 addresses of every
  service whose TXT has our federation id and protocol version; our own service (same
  instance name or node id) is skipped.
- Timers are python-zeroconf's (RFC 6762): browser queries back off from 1 s to about
  an hour; PTR/TXT records live 4500 s, SRV/A 120 s. ``stop`` unregisters (goodbye
  packets: TTL 0), so peers drop us at once; a service removed by a goodbye stops being
  proposed. A killed process sends no goodbye and its records stay cached up to 75 min:
  detecting that is membership's job, not discovery's.
- Failures: an announcement with a foreign federation id (``federation``), another
  protocol version (``protocol``), a malformed TXT (``malformed``), no IPv4 address
  (``no_address``) or that cannot be resolved in time (``unresolved``) is not proposed,
  counted in ``stats.rejected[reason]`` and logged once per peer and reason; nothing
  from the network raises. Failing to open the multicast sockets at ``start`` (an
  interface address not on this host) raises OSError: that is configuration.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
from collections.abc import Callable, Mapping, Sequence

from zeroconf import IPVersion, ServiceBrowser, ServiceInfo, ServiceStateChange, Zeroconf

from federation.io.discovery._common import (
    DiscoveryStats,
    LocalAddresses,
    ip_literal,
    is_own,
    is_wildcard,
    join_hostport,
    log,
    non_loopback_ipv4,
    notify,
    split_hostport,
    system_local_addresses,
)
from federation.ports import Announcement

SERVICE_TYPE = "_memnode._tcp.local."
DEFAULT_RESOLVE_TIMEOUT_MS = 3000
_MAX_NODE_ID = 63  # one DNS label: the node id is the instance name
_MAX_REMEMBERED = 4096  # peers whose last rejection we remember (to log it once)


def txt_record(me: Announcement) -> dict[str, str]:
    """The TXT we announce."""
    return {"node_id": me.node_id, "fed": me.federation_id,
            "proto": str(me.protocol_version)}


def check_txt(properties: Mapping[bytes, bytes | None], me: Announcement
              ) -> tuple[str, str | None]:
    """``(node_id, reason)``: reason is None when the peer belongs to our federation and
    speaks our protocol version, else ``malformed``, ``federation`` or ``protocol``."""
    values: dict[str, str] = {}
    for key in ("node_id", "fed", "proto"):
        raw = properties.get(key.encode())
        if not raw:
            return "", "malformed"
        try:
            values[key] = raw.decode("utf-8")
        except UnicodeDecodeError:
            return "", "malformed"
    node_id = values["node_id"]
    if len(node_id) > _MAX_NODE_ID or not node_id.isprintable():
        return "", "malformed"
    if not values["proto"].isdigit():
        return node_id, "malformed"
    if values["fed"] != me.federation_id:
        return node_id, "federation"
    if int(values["proto"]) != me.protocol_version:
        return node_id, "protocol"
    return node_id, None


def _ipv4_specific(host: str) -> str | None:
    ip = ip_literal(host)
    if ip is None or is_wildcard(ip) or ipaddress.ip_address(ip).version != 4:
        return None
    return ip


class ZeroconfDiscovery:
    """Announces this node over mDNS and proposes the peers of its federation found so."""

    def __init__(self, interfaces: Sequence[str] | None = None, *,
                 service_type: str = SERVICE_TYPE,
                 resolve_timeout_ms: int = DEFAULT_RESOLVE_TIMEOUT_MS,
                 local_addresses: LocalAddresses = system_local_addresses) -> None:
        pinned = []
        for text in interfaces or ():
            ip = _ipv4_specific(text)
            if ip is None:
                raise ValueError(f"zeroconf interfaces are IPv4 addresses, not {text!r}")
            pinned.append(ip)
        self._pinned = tuple(pinned)
        self.service_type = service_type
        self._resolve_ms = resolve_timeout_ms
        self._local_addresses = local_addresses
        self._lock = threading.Lock()
        self._peers: dict[str, frozenset[str]] = {}  # instance name -> HOST:PORTs
        self._rejected: dict[str, str] = {}  # instance name -> reason last logged
        self._me: Announcement | None = None
        self._on_change: Callable[[], None] | None = None
        self._zc: Zeroconf | None = None
        self._browser: ServiceBrowser | None = None
        self._info: ServiceInfo | None = None
        self._stopped = False
        self.interfaces: tuple[str, ...] = self._pinned  # the ones in use once started
        self.stats = DiscoveryStats()

    @property
    def name(self) -> str:
        return "zeroconf"

    # -- lifecycle ---------------------------------------------------------------------

    def start(self, me: Announcement, on_change: Callable[[], None]) -> None:
        if self._zc is not None or self._stopped:
            raise RuntimeError("zeroconf discovery is started once")
        host, port = split_hostport(me.address)
        own = _ipv4_specific(host)
        interfaces = list(self._pinned) or ([own] if own else non_loopback_ipv4())
        if not interfaces:
            log.warning("discovery zeroconf: no non-loopback IPv4 interface; not announcing")
            return
        self._me, self._on_change = me, on_change
        self.interfaces = tuple(interfaces)
        instance = me.node_id[:_MAX_NODE_ID] or "memnode"
        self._info = ServiceInfo(
            self.service_type, f"{instance}.{self.service_type}", port=port,
            properties=txt_record(me), server=f"{instance}.local.",
            addresses=[socket.inet_aton(a) for a in ([own] if own else interfaces)])
        try:
            self._zc = Zeroconf(interfaces=list(interfaces), ip_version=IPVersion.V4Only)
        except OSError as exc:
            raise OSError(exc.errno, "zeroconf discovery cannot listen for mDNS on "
                          f"{', '.join(interfaces)}: {exc.strerror or exc}") from exc
        try:
            self._browser = ServiceBrowser(self._zc, self.service_type,
                                           handlers=[self._on_service_state_change])
            self._zc.register_service(self._info, cooperating_responders=True)
        except Exception:
            self._close()
            raise
        log.info("discovery zeroconf: announcing %s on %s", me.address, ", ".join(interfaces))

    def candidates(self) -> frozenset[str]:
        with self._lock:
            return frozenset().union(*self._peers.values())

    def stop(self) -> None:
        with self._lock:
            if self._stopped:
                return
            self._stopped = True
        announced = self._zc is not None
        self._close()
        with self._lock:
            self._peers.clear()
        if announced:
            log.info("discovery zeroconf: stopped (goodbye sent)")

    def _close(self) -> None:
        zc, info, browser = self._zc, self._info, self._browser
        if zc is None:
            return
        if info is not None:
            try:
                zc.unregister_service(info)  # goodbye: peers drop us now
            except Exception as exc:
                log.warning("discovery zeroconf: goodbye not sent: %s", exc)
        if browser is not None and browser is not threading.current_thread():
            browser.cancel()
        zc.close()
        self._zc = None

    # -- what the browser reports (its own thread) --------------------------------------

    def _on_service_state_change(self, zeroconf: Zeroconf, service_type: str, name: str,
                                 state_change: ServiceStateChange) -> None:
        try:
            if state_change is ServiceStateChange.Removed:
                self._forget(name)
                return
            self.stats.lookup()
            info = zeroconf.get_service_info(service_type, name, timeout=self._resolve_ms)
            self.consider(name, info)
        except Exception as exc:  # a closing Zeroconf, a malformed record: never raise
            if not self._stopped:
                log.debug("discovery zeroconf: %s %s: %r", state_change, name, exc)

    def consider(self, name: str, info: ServiceInfo | None) -> None:
        """Propose, replace or refuse the service ``name`` as resolved to ``info``."""
        me = self._me
        if me is None or self._stopped:
            return
        if info is None:
            self._refuse(name, "unresolved", "")
            return
        if self._info is not None and name.lower() == self._info.name.lower():
            return
        node_id, reason = check_txt(info.properties, me)
        if node_id == me.node_id and reason is None:
            return
        if reason is not None:
            self._refuse(name, reason, node_id)
            self._forget(name)
            return
        local = self._local_addresses()
        port = info.port or 0
        found = frozenset(join_hostport(a, port) for a in info.parsed_addresses(IPVersion.V4Only)
                          if 0 < port < 65536)
        found = frozenset(a for a in found if not is_own(a, me.address, local))
        if not found:
            self._refuse(name, "no_address", node_id)
            self._forget(name)
            return
        with self._lock:
            self._rejected.pop(name, None)
            if self._peers.get(name) == found:
                return
            self._peers[name] = found
        log.info("discovery zeroconf: peer %s at %s", node_id, ", ".join(sorted(found)))
        self._changed()

    def _refuse(self, name: str, reason: str, node_id: str) -> None:
        with self._lock:
            if self._rejected.get(name) == reason:
                return
            if len(self._rejected) >= _MAX_REMEMBERED:
                self._rejected.pop(next(iter(self._rejected)))
            self._rejected[name] = reason
        self.stats.reject(reason)
        log.warning("discovery zeroconf: ignoring %s (node %s): %s", name,
                    node_id or "?", reason)

    def _forget(self, name: str) -> None:
        with self._lock:
            gone = self._peers.pop(name, None)
        if gone is not None:
            log.info("discovery zeroconf: %s withdrawn", name)
            self._changed()

    def _changed(self) -> None:
        self.stats.changed()
        notify(self._on_change, self.name)

    def __repr__(self) -> str:
        return f"ZeroconfDiscovery({list(self._pinned)!r})"
