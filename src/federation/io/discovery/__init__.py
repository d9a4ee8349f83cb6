"""Discovery adapters: they propose candidate peer addresses (never admit a peer; the
sidecar's handshake does that). Each satisfies :class:`federation.ports.Discovery`,
takes plain constructor arguments, holds no global state, and exposes its counters as
``stats`` (:class:`DiscoveryStats`).

- :class:`StaticDiscovery` -- ``--peer HOST:PORT`` (module ``static``)
- :class:`ZeroconfDiscovery` -- ``--discover zeroconf[:IP,...]`` (module ``mdns``)
- :class:`DnsDiscovery` -- ``--discover dns:NAME[:PORT]`` (module ``dns``)
- :func:`parse_discover` -- a ``--discover`` value to its adapter (module ``spec``)
"""

from federation.io.discovery._common import DiscoveryStats
from federation.io.discovery.dns import DnsDiscovery, Resolver, system_resolver
from federation.io.discovery.mdns import SERVICE_TYPE, ZeroconfDiscovery
from federation.io.discovery.spec import parse_discover
from federation.io.discovery.static import StaticDiscovery

__all__ = [
    "SERVICE_TYPE",
    "DiscoveryStats",
    "DnsDiscovery",
    "Resolver",
    "StaticDiscovery",
    "ZeroconfDiscovery",
    "parse_discover",
    "system_resolver",
]
