"""Static discovery: a fixed list of peers (``--peer HOST:PORT``, repeatable).

Announces nothing and has no timer. The candidates are the given addresses minus this
node's own gossip address (so one list can be given to every node of a mesh): its
announced HOST:PORT, or, when it listens on a wildcard address, any address of this
host's interfaces at its port. Names are not resolved here; the sidecar dials them as
given. A malformed address is refused when the adapter is made (ValueError), never
later. ``on_change`` is never called: the set does not change.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

from federation.io.discovery._common import (
    DiscoveryStats,
    LocalAddresses,
    is_own,
    split_hostport,
    system_local_addresses,
)
from federation.ports import Announcement


class StaticDiscovery:
    """Proposes a fixed list of HOST:PORT addresses."""

    def __init__(self, addresses: Iterable[str], *,
                 local_addresses: LocalAddresses = system_local_addresses) -> None:
        given = tuple(addresses)
        for address in given:
            split_hostport(address)  # raises ValueError with the address in it
        self._given = frozenset(given)
        self._local_addresses = local_addresses
        self._candidates: frozenset[str] = frozenset()
        self.stats = DiscoveryStats()

    @property
    def name(self) -> str:
        return "static"

    @property
    def addresses(self) -> frozenset[str]:
        """The addresses given, our own included."""
        return self._given

    def start(self, me: Announcement, on_change: Callable[[], None]) -> None:
        local = self._local_addresses()
        self._candidates = frozenset(a for a in self._given if not is_own(a, me.address, local))

    def candidates(self) -> frozenset[str]:
        return self._candidates

    def stop(self) -> None:
        self._candidates = frozenset()

    def __repr__(self) -> str:
        return f"StaticDiscovery({sorted(self._given)!r})"
