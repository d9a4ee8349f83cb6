"""DNS discovery: the A/AAAA records of one name, re-resolved on a timer
(``--discover dns:NAME[:PORT]``; in Kubernetes, the headless Service of the
StatefulSet, whose records are the ready pods' IPs).

- Announces nothing: the records are the announcement (Kubernetes makes them).
- Timer: one daemon thread resolves NAME at start and then every ``interval_seconds``
  (waiting on an Event, so :meth:`DnsDiscovery.stop` ends it at once, or as soon as a
  resolution in flight returns; ``stop`` waits ``join_timeout_seconds`` at most).
- Candidates: each address at PORT (``[v6]:PORT`` for IPv6), minus this node's own
  (the announced host and every address of this host's interfaces) when PORT is our
  own gossip port (at another port, an address of this host is another node). ``on_change`` is
  called only when the set changes.
- Resolver: the system's (``socket.getaddrinfo``), so ``/etc/resolv.conf`` (timeouts,
  search domains; a per-namespace one under ``ip netns exec``) and ``/etc/hosts``
  apply. Any callable ``name -> addresses`` raising ``OSError`` can replace it.
- Failures: NXDOMAIN / no data is an answer ("no such peers"): the candidates become
  empty. A timeout or any other error keeps the last known set (membership, not DNS,
  decides whether those peers are alive). Each failed resolution is counted in
  ``stats.failures[reason]`` (``nxdomain``, ``timeout``, ``error``); a log line is
  written only when the state changes (ok -> failing, one reason -> another, failing
  -> ok), not at every interval. The next attempt waits a full interval: no tight loop.
"""

from __future__ import annotations

import re
import socket
import threading
from collections.abc import Callable, Iterable

from federation.io.discovery._common import (
    DiscoveryStats,
    LocalAddresses,
    ip_literal,
    join_hostport,
    log,
    notify,
    split_hostport,
    system_local_addresses,
)
from federation.ports import Announcement

#: name -> the IP addresses it resolves to now; raises OSError (socket.gaierror) when the
#: name cannot be resolved.
Resolver = Callable[[str], Iterable[str]]

DEFAULT_INTERVAL_SECONDS = 5.0
_LABEL = re.compile(r"^(?!-)[A-Za-z0-9_-]{1,63}(?<!-)$")


def system_resolver(name: str) -> list[str]:
    """A and AAAA records of ``name`` through the C library (``getaddrinfo``)."""
    infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


def check_dns_name(name: str) -> str:
    """``name`` without a trailing dot if it is a valid DNS name; else ValueError."""
    bare = name[:-1] if name.endswith(".") else name
    if not bare or len(bare) > 253 or not all(_LABEL.match(x) for x in bare.split(".")):
        raise ValueError(f"not a DNS name: {name!r}")
    return bare


def failure_reason(exc: BaseException) -> str:
    """``nxdomain`` (no such name, or no address records), ``timeout`` (no answer in
    time, SERVFAIL) or ``error``."""
    if isinstance(exc, socket.gaierror):
        if exc.errno in (socket.EAI_NONAME, getattr(socket, "EAI_NODATA", socket.EAI_NONAME)):
            return "nxdomain"
        if exc.errno == socket.EAI_AGAIN:
            return "timeout"
    if isinstance(exc, TimeoutError):
        return "timeout"
    return "error"


class DnsDiscovery:
    """Proposes the addresses NAME resolves to, at PORT, re-resolved every interval."""

    def __init__(self, name: str, port: int,
                 interval_seconds: float = DEFAULT_INTERVAL_SECONDS, *,
                 resolver: Resolver = system_resolver,
                 local_addresses: LocalAddresses = system_local_addresses,
                 join_timeout_seconds: float = 1.0) -> None:
        self._host = check_dns_name(name)
        if not 0 < port < 65536:
            raise ValueError(f"port out of range: {port}")
        if not interval_seconds > 0:
            raise ValueError(f"interval_seconds must be > 0, not {interval_seconds}")
        self.port = port
        self.interval_seconds = float(interval_seconds)
        self._resolver = resolver
        self._local_addresses = local_addresses
        self._join_timeout = join_timeout_seconds
        self._lock = threading.Lock()
        self._candidates: frozenset[str] = frozenset()
        self._state = "new"  # "ok" or the reason of the last failure
        self._stopping = threading.Event()
        self._thread: threading.Thread | None = None
        self._me: Announcement | None = None
        self._on_change: Callable[[], None] | None = None
        self.stats = DiscoveryStats()

    @property
    def name(self) -> str:
        return f"dns:{self._host}"

    @property
    def state(self) -> str:
        """``new`` before the first resolution, then ``ok`` or the failure's reason."""
        return self._state

    def start(self, me: Announcement, on_change: Callable[[], None]) -> None:
        if self._thread is not None:
            raise RuntimeError(f"{self.name} already started")
        self._me, self._on_change = me, on_change
        self._thread = threading.Thread(target=self._run, name=f"discovery-{self.name}",
                                        daemon=True)
        self._thread.start()

    def candidates(self) -> frozenset[str]:
        with self._lock:
            return self._candidates

    def stop(self) -> None:
        self._stopping.set()
        thread = self._thread
        if thread is not None and thread is not threading.current_thread():
            thread.join(self._join_timeout)
        with self._lock:
            self._candidates = frozenset()

    def resolve_once(self) -> None:
        """One round: resolve, filter, publish (the thread's body; callable by tests)."""
        self.stats.lookup()
        try:
            found = list(self._resolver(self._host))
        except Exception as exc:  # a resolver's failure is data, never a crash
            self._failed(failure_reason(exc), exc)
            return
        self._set_state("ok", None)
        self._publish(self._filter(found))

    # -- inside ----------------------------------------------------------------------

    def _run(self) -> None:
        while not self._stopping.is_set():
            self.resolve_once()
            self._stopping.wait(self.interval_seconds)

    def _filter(self, found: Iterable[str]) -> frozenset[str]:
        own: set[str] = set()
        if self._me is not None:
            try:
                own_host, own_port = split_hostport(self._me.address)
            except ValueError:
                own_host, own_port = "", -1
            if own_port == self.port:  # another port on this host is another node
                own = set(self._local_addresses())
                literal = ip_literal(own_host)
                if literal is not None:
                    own.add(literal)
        out = set()
        for text in found:
            ip = ip_literal(str(text).split("%", 1)[0])
            if ip is not None and ip not in own:
                out.add(join_hostport(ip, self.port))
        return frozenset(out)

    def _failed(self, reason: str, exc: BaseException) -> None:
        self.stats.fail(reason)
        self._set_state(reason, exc)
        if reason == "nxdomain":
            self._publish(frozenset())

    def _set_state(self, state: str, exc: BaseException | None) -> None:
        previous, self._state = self._state, state
        if state == previous:
            return
        if exc is not None:
            log.warning("discovery %s: resolution failed (%s: %s); retrying every %.3gs",
                        self.name, state, exc, self.interval_seconds)
        elif previous != "new":
            log.info("discovery %s: resolving again after %s", self.name, previous)

    def _publish(self, new: frozenset[str]) -> None:
        with self._lock:
            if new == self._candidates or self._stopping.is_set():
                return
            self._candidates = new
        self.stats.changed()
        log.info("discovery %s: %d candidate(s): %s", self.name, len(new),
                 ", ".join(sorted(new)) or "none")
        notify(self._on_change, self.name)

    def __repr__(self) -> str:
        return (f"DnsDiscovery({self._host!r}, {self.port}, "
                f"interval_seconds={self.interval_seconds})")
