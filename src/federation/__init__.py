"""memnode's mesh: signed per-origin event logs replicated between peers.

The pure replication core (no I/O; driven by ticks and messages):

- :mod:`federation.events` - signed events, canonical encoding, node ids
- :mod:`federation.versions` - version vectors
- :mod:`federation.validate` - validation of events from the network
- :mod:`federation.origin`, :mod:`federation.replica` - per-origin state, the apply
  rule, compaction, tombstone GC and reconciliation
- :mod:`federation.eventsource` - the EventSource port and its in-memory twin
- :mod:`federation.antientropy`, :mod:`federation.rumor` - digests and deltas,
  push-on-write
- :mod:`federation.membership` - heartbeats, suspect/dead/reaped
- :mod:`federation.engine` - FederationCore, Ready/advance
- :mod:`federation.messages`, :mod:`federation.effects`, :mod:`federation.sizes`,
  :mod:`federation.metrics`, :mod:`federation.config`, :mod:`federation.errors`
- :mod:`federation.sim.simulation`, :mod:`federation.sim.network` - the deterministic simulator

Adapters (gRPC transport, sidecar, Replica API client, wire conversion) live in the
other modules of this package and are not imported here.
"""

from federation.config import FederationConfig
from federation.effects import (
    DeleteReplica,
    DropTombstone,
    Effect,
    KeepErasures,
    OriginMarks,
    OwnSeqLearned,
    UpsertReplica,
)
from federation.engine import FederationCore
from federation.erasure import ErasureOrder, Erasures
from federation.errors import ConfigError, FederationError, LocalEventError, SourceError
from federation.eventsource import EventSource, MemoryEventSource
from federation.membership import MemberState
from federation.messages import (
    Digest,
    EventBatch,
    EventRun,
    MemberHeartbeat,
    Message,
    SignedDenyList,
    SignedErasures,
)
from federation.metrics import Metrics
from federation.ready import Outgoing, PeerStatus, Ready
from federation.replica import RestartState
from federation.validate import RejectReason
from federation.versions import VersionVector

__all__ = [
    "ConfigError",
    "DeleteReplica",
    "Digest",
    "DropTombstone",
    "Effect",
    "ErasureOrder",
    "Erasures",
    "EventBatch",
    "EventRun",
    "EventSource",
    "FederationConfig",
    "FederationCore",
    "FederationError",
    "KeepErasures",
    "LocalEventError",
    "MemberHeartbeat",
    "MemberState",
    "MemoryEventSource",
    "Message",
    "Metrics",
    "OriginMarks",
    "OwnSeqLearned",
    "Outgoing",
    "PeerStatus",
    "Ready",
    "RejectReason",
    "RestartState",
    "SignedDenyList",
    "SignedErasures",
    "SourceError",
    "UpsertReplica",
    "VersionVector",
]
