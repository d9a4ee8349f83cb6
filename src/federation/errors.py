"""The federation core's one exception base.

::

    FederationError
    ├── ConfigError         a FederationConfig that cannot work (raised at start)
    ├── LocalEventError     the adapter handed the core an own event out of order or of
    │                       another origin: a bug in the caller
    ├── SourceError         an EventSource (e.g. the node's SQLite log) failed to read
    │   └── ReplicaPortError  the node's Replica API failed (any call of the port)
    ├── MalformedEvent      bytes or a message from a peer that cannot be understood
    ├── TransportError      a peer could not be reached, or refused us
    ├── CredentialsError    federation credentials missing, unsafe, expired, foreign
    └── MetadataKeyError    metadata key material unreadable or malformed

Bad input from the *network* never raises: it is rejected, counted in
:class:`federation.metrics.Metrics` and dropped.
"""

from __future__ import annotations


class FederationError(Exception):
    """Base of every exception the federation core raises."""


class ConfigError(FederationError, ValueError):
    """A configuration value is out of range or inconsistent with another."""


class LocalEventError(FederationError, ValueError):
    """An own event given to the core is not the next valid event of this node."""


class SourceError(FederationError):
    """An EventSource could not serve a run (storage error). The core skips the run."""


class MetadataKeyError(FederationError, ValueError):
    """Metadata key material that cannot be read or is malformed (never quoted)."""


class CredentialsError(FederationError, ValueError):
    """Credentials that are missing, unreadable, unsafe, expired or not of this federation."""


class TransportError(FederationError):
    """A peer could not be reached, or refused us (the Transport port's one error)."""


class ReplicaPortError(SourceError):
    """A call of the node's Replica API failed (the node is gone or refused it)."""


class MalformedEvent(FederationError, ValueError):
    """An event, or a gossip message, that cannot be understood."""
