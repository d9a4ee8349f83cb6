"""Counters of the federation core, as plain ints for the adapter to export.

Each field, its meaning, and the suggested Prometheus name (``memnode_federation_``
prefix; ``{label}`` for the dict fields):

- ``events_sent`` / ``events_received``: events carried in batches we sent / got
  (``events_sent_total``, ``events_received_total``)
- ``events_applied``: events that changed our replica state (``events_applied_total``)
- ``events_duplicate``: received events we already had (``events_duplicate_total``)
- ``events_buffered``: events held above a gap, ever (``events_buffered_total``)
- ``buffer_overflow_dropped``: buffered events dropped on overflow
  (``buffer_dropped_total``)
- ``events_rejected[reason]``: invalid events by RejectReason value
  (``events_rejected_total{reason}``)
- ``events_ignored_forgotten``: PUT/UPDATE of a memory with a tombstone
  (``events_ignored_total``)
- ``replicas_reconciled``: replicas deleted by reconciliation (``reconciled_total``)
- ``resyncs_started``: reconciliations started (``resyncs_total``)
- ``messages_sent[kind]`` / ``messages_received[kind]``: kind is digest, digest_reply,
  events or rumor (``messages_{sent,received}_total{kind}``)
- ``messages_malformed``: messages dropped as malformed (``messages_malformed_total``)
- ``bytes_sent`` / ``bytes_received``: size model of federation.sizes
  (``bytes_{sent,received}_total``; the transport can count real wire bytes instead)
- ``anti_entropy_rounds``: periodic rounds (``anti_entropy_rounds_total``)
- ``exchanges_started``: all exchanges we started: periodic, join, retry
  (``exchanges_total``)
- ``rumors_pushed`` / ``rumors_forwarded``: rumor batches pushed for local events /
  forwarded (``rumors_{pushed,forwarded}_total``)
- ``tombstones_collected``: tombstones dropped by GC (``tombstones_collected_total``)
- ``own_events_skipped``: own events the mesh would refuse, skipped and never sent
  (``own_events_skipped_total``; only a log written before admission control has them)
- ``joins`` / ``rejoins``: members that joined / came back (``member_{joins,rejoins}_total``)

Gauges are read from the core: ``FederationCore.buffered_events()``,
``peers_by_state()``, ``peer_lag(peer)``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from federation.outcome import ApplyResult


@dataclass
class Metrics:
    events_sent: int = 0
    events_received: int = 0
    events_applied: int = 0
    events_duplicate: int = 0
    events_buffered: int = 0
    buffer_overflow_dropped: int = 0
    events_rejected: dict[str, int] = field(default_factory=dict)
    events_ignored_forgotten: int = 0
    replicas_reconciled: int = 0
    resyncs_started: int = 0
    messages_sent: dict[str, int] = field(default_factory=dict)
    messages_received: dict[str, int] = field(default_factory=dict)
    messages_malformed: int = 0
    bytes_sent: int = 0
    bytes_received: int = 0
    anti_entropy_rounds: int = 0
    own_events_skipped: int = 0
    exchanges_started: int = 0
    rumors_pushed: int = 0
    rumors_forwarded: int = 0
    tombstones_collected: int = 0
    joins: int = 0
    rejoins: int = 0

    def add_result(self, result: ApplyResult) -> None:
        self.events_applied += result.applied
        self.events_duplicate += result.duplicates
        self.events_buffered += result.buffered
        self.buffer_overflow_dropped += result.overflow_dropped
        self.events_ignored_forgotten += result.ignored_forgotten
        self.replicas_reconciled += result.reconciled
        self.resyncs_started += result.resyncs_started
        for reason, count in result.rejected.items():
            self.events_rejected[reason.value] = self.events_rejected.get(reason.value, 0) + count

    @property
    def events_rejected_total(self) -> int:
        return sum(self.events_rejected.values())

    def sent(self, kind: str, size: int) -> None:
        self.messages_sent[kind] = self.messages_sent.get(kind, 0) + 1
        self.bytes_sent += size

    def received(self, kind: str, size: int) -> None:
        self.messages_received[kind] = self.messages_received.get(kind, 0) + 1
        self.bytes_received += size
