"""The messages peers exchange: plain dataclasses the transport adapter maps to protobuf.

- :class:`EventRun` / :class:`EventBatch` match ``federation.v1.EventRun`` /
  ``EventBatch`` field for field, plus two fields the proto needs to grow
  (``EventBatch.rumor_hops`` and ``EventBatch.gc_floors``).
- :class:`Digest` (version vector + membership heartbeats) has no proto message yet;
  its fields map one to one (maps for the vectors, a repeated message for members).

The proto needs, for EventBatch: ``uint32 rumor_hops = 3; map<string, uint64>
watermarks = 4; map<string, uint64> gc_floors = 5;`` (see federation.sizes).

Nothing here trusts its input: :func:`digest_is_well_formed` and the replica's run
checks are applied to everything that arrives from the network.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from federation.events import Event

#: The gossip protocol's version: discovery announces it and proposes only peers that
#: speak the same one.
PROTOCOL_VERSION = 1

_EMPTY: Mapping[str, int] = {}


@dataclass(frozen=True, slots=True)
class EventRun:
    """Events of one origin covering ``(after_seq, through_seq]``, ascending by seq.

    Seqs of the range absent from ``events`` were compacted away by the sender (an
    older event of a memory that has a newer one, or a collected tombstone): the
    sender vouches that nothing live is missing from the range. A rumor is a run of
    consecutive events with no such gap.
    """

    origin: str
    after_seq: int
    through_seq: int
    events: tuple[Event, ...] = ()


@dataclass(frozen=True, slots=True)
class EventBatch:
    """A bounded list of runs, from ``sender``.

    ``rumor_hops`` is 0 for anti-entropy traffic and k >= 1 for a push-on-write
    rumor that has travelled k hops (forwarded while below ``rumor_max_hops``).
    For the origins of its runs, an anti-entropy batch also carries the sender's
    ``watermarks`` (how far it vouches for its log: its watermark, or its own
    reconciliation cursor while it reconciles that origin) and ``gc_floors`` (the
    highest seq of a collected tombstone the sender's log may lack; zeros omitted).
    A receiver that may hold memories forgotten meanwhile reconciles them; a run is
    conclusive for that only if the sender vouched up to the floor.
    """

    sender: str
    runs: tuple[EventRun, ...]
    rumor_hops: int = 0
    watermarks: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    gc_floors: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    rumor_seen: int = 0
    """A rumor's 64-bit mask of the nodes known to have been sent it (the sender and
    the peers it pushed it to, one bit per node id: :func:`federation.rumor.seen_bit`).
    A receiver does not forward to peers whose bit is set: in a small mesh the origin's
    own push reaches everyone and nobody forwards. A false positive only skips a
    forward, which other paths or anti-entropy make up."""

    @property
    def event_count(self) -> int:
        return sum(len(run.events) for run in self.runs)


@dataclass(frozen=True, slots=True)
class MemberHeartbeat:
    """What a digest says about one member: its incarnation (raised at every start of
    its sidecar), its heartbeat counter (raised every tick) and its gossip address."""

    node_id: str
    incarnation: int
    heartbeat: int
    address: str


@dataclass(frozen=True, slots=True)
class Digest:
    """The start (``reply=False``) or the answer (``reply=True``) of an exchange.

    The receiver of a digest sends back what the sender lacks (EventBatches), and
    answers a non-reply digest with its own reply digest, so that the first sender
    can send what it lacks in turn. Size O(origins + max_digest_members).

    ``resync`` lists origins this node is reconciling after learning of collected
    tombstones it may have missed: send runs of these origins from the given seq
    instead of from ``version_vector`` (see ReplicaState).
    """

    sender: str
    incarnation: int
    heartbeat: int
    address: str
    version_vector: Mapping[str, int]
    members: tuple[MemberHeartbeat, ...] = ()
    reply: bool = False
    gc_floors: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    resync: Mapping[str, int] = field(default_factory=lambda: _EMPTY)
    deny_version: int = 0
    """The version of the federation's signed deny list the sender holds (0: none).
    Stamped by the sidecar, not the core: a peer holding a newer list sends it."""
    erasure_version: int = 0
    """The same for the CA-signed erasure orders (federation.io.erasesign)."""


@dataclass(frozen=True, slots=True)
class SignedDenyList:
    """The federation's deny list as its CA signed it, carried verbatim (``payload``).

    Opaque to the core, which never sees one: the sidecar verifies the signature
    against its CA certificate and adopts the list if ``version`` is newer than its
    own (:mod:`federation.io.denysign`)."""

    sender: str
    version: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class SignedErasures:
    """The federation's erasure orders as its CA signed them, carried verbatim like
    :class:`SignedDenyList`; the sidecar verifies them and hands the orders to the core
    (:mod:`federation.io.erasesign`)."""

    sender: str
    version: int
    payload: bytes


Message = Digest | EventBatch | SignedDenyList | SignedErasures


def _is_int(value: object, minimum: int = 0) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= minimum


def _is_seq_map(value: object, max_len: int) -> bool:
    if not isinstance(value, Mapping) or len(value) > max_len:
        return False
    return all(isinstance(k, str) and k and _is_int(v) for k, v in value.items())


def digest_is_well_formed(digest: Digest, *, max_origins: int, max_members: int) -> bool:
    """Shape checks of a digest from the network (types, ranges, sizes)."""
    if not isinstance(digest.sender, str) or not digest.sender:
        return False
    if not (_is_int(digest.incarnation) and _is_int(digest.heartbeat)
            and _is_int(digest.deny_version) and _is_int(digest.erasure_version)):
        return False
    if not isinstance(digest.address, str) or not isinstance(digest.reply, bool):
        return False
    for vector in (digest.version_vector, digest.gc_floors, digest.resync):
        if not _is_seq_map(vector, max_origins):
            return False
    if not isinstance(digest.members, tuple) or len(digest.members) > max_members:
        return False
    for m in digest.members:
        if type(m) is not MemberHeartbeat or type(m.node_id) is not str or not m.node_id:
            return False
        inc, hb = m.incarnation, m.heartbeat
        if type(inc) is not int or type(hb) is not int or inc < 0 or hb < 0:
            return False
        if type(m.address) is not str:
            return False
    return True


def batch_is_well_formed(batch: EventBatch, *, max_events: int) -> bool:
    """Shape checks of a batch from the network; the runs are checked by the replica."""
    if not isinstance(batch.sender, str) or not batch.sender:
        return False
    if not isinstance(batch.runs, tuple) or not _is_int(batch.rumor_hops):
        return False
    if not _is_int(batch.rumor_seen) or batch.rumor_seen >= 1 << 64:
        return False
    if not all(isinstance(r, EventRun) and isinstance(r.events, tuple) for r in batch.runs):
        return False
    for marks in (batch.watermarks, batch.gc_floors):
        if not _is_seq_map(marks, max(len(batch.runs), 1)):
            return False
    return batch.event_count <= max_events
