"""Discovery's proposals followed: who listens at each address it proposes.

Discovery (static peers, zeroconf, DNS: :class:`~federation.ports.Discovery` adapters)
only proposes addresses. :class:`Candidates` keeps one identify loop per proposed
address: it asks who is there (over mTLS when on) until it answers, then again every
``identify_interval_seconds``, and hands each answer to ``identified(reply, address,
found_by)``; the sidecar decides whether to admit it. An address no longer proposed has
its loop stopped. The follower wakes when an adapter says its candidates changed, and
every few seconds.
"""

from __future__ import annotations

import functools
import logging
import threading
from collections.abc import Callable, Sequence

from federation.errors import TransportError
from federation.io.discovery import StaticDiscovery, parse_discover
from federation.io.sidecar_config import SidecarConfig
from federation.ports import Announcement, Discovery, Hello, Transport

__all__ = ["Candidates", "discovery_from_config"]

log = logging.getLogger("memnode.sidecar")

Identified = Callable[[Hello, str, str], None]
"""``identified(reply, address, found_by)``: a proposed address answered Identify."""


class Candidates:
    def __init__(self, discovery: Sequence[Discovery], transport: Transport,
                 identify_interval_seconds: float, identified: Identified,
                 spawn: Callable[[Callable[[], None], str], None]) -> None:
        self.discovery = list(discovery)
        self._transport = transport
        self._interval = identify_interval_seconds
        self._identified = identified
        self._spawn = spawn
        self._stop = threading.Event()
        self._changed = threading.Event()
        self._identifying: dict[str, threading.Event] = {}  # address -> stops its loop
        self._found_by: dict[str, str] = {}  # address -> how it was found

    def start(self, me: Announcement, hello: Callable[[], Hello]) -> None:
        """Announce ``me`` and follow what discovery proposes; ``hello()`` is who we
        say we are in each Identify."""
        for found in self.discovery:
            found.start(me, self._changed.set)
        self._spawn(functools.partial(self._follow, hello), "discovery")

    def stop(self) -> None:
        self._stop.set()
        self._changed.set()
        for found in self.discovery:
            found.stop()
        for stop in list(self._identifying.values()):
            stop.set()

    def _follow(self, hello: Callable[[], Hello]) -> None:
        while not self._stop.is_set():
            self._changed.clear()
            wanted: dict[str, str] = {}
            for found in self.discovery:
                try:
                    for address in found.candidates():
                        wanted.setdefault(address, found.name)
                except Exception:  # an adapter's bug must not stop discovery
                    log.exception("discovery %s failed to list candidates", found.name)
            for address in [a for a in self._identifying if a not in wanted]:
                self._identifying.pop(address).set()
            for address, name in wanted.items():
                self._found_by[address] = name
                if address not in self._identifying:
                    stop = threading.Event()
                    self._identifying[address] = stop
                    self._spawn(functools.partial(self._identify, address, stop, hello),
                                f"identify-{address}")
            self._changed.wait(5.0)

    def _identify(self, address: str, stop: threading.Event,
                  hello: Callable[[], Hello]) -> None:
        """Ask a proposed peer who it is, until it answers; then again now and then."""
        delay = 0.05
        while not self._stop.is_set() and not stop.is_set():
            try:
                reply = self._transport.identify(address, hello(), timeout=5.0)
            except TransportError as exc:
                log.debug("peer %s not reachable yet: %s", address, exc)
                stop.wait(delay)
                delay = min(delay * 2, 2.0)
                continue
            delay = 0.05
            self._identified(reply, address, self._found_by.get(address, ""))
            stop.wait(self._interval)


def discovery_from_config(config: SidecarConfig, own_address: str) -> list[Discovery]:
    """The adapters ``--peer`` and ``--discover`` ask for (DNS at our gossip port unless
    the spec names one)."""
    port = int(own_address.rpartition(":")[2])
    found: list[Discovery] = [StaticDiscovery(config.peer)] if config.peer else []
    found += [parse_discover(spec, port, dns_interval_seconds=config.dns_interval_seconds)
              for spec in config.discover]
    return found
