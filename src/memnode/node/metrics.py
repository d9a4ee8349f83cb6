"""Prometheus metrics of a node. Each node has its own registry (several nodes may share a
process in tests and in the embedded demo).

| name | type | labels | meaning |
|---|---|---|---|
| memnode_requests_total | counter | method, code | gRPC requests by method and status code |
| memnode_request_duration_seconds | histogram | method | gRPC request latency |
| memnode_memories | gauge | collection | memories held: local, replicas, ephemeral |
| memnode_redactions_total | counter | kind | PII spans redacted from text before storage |
| memnode_errors_total | counter | kind | requests refused or failed, by error kind |
| memnode_events_appended_total | counter | kind | own signed events appended (put, update...) |
| memnode_embed_duration_seconds | histogram | | time to embed one request's texts |
| memnode_journal_replayed_total | counter | | journal entries re-applied to Chroma at start |
| memnode_writes_refused_total | counter | reason | writes refused: the mesh would refuse them |
| memnode_own_events_unreplicable_total | counter | reason | old own events dropped at start |
| memnode_writable | gauge | | 1 while the log and the store can write, else 0 |
| memnode_write_failures_total | counter | kind | failed writes of the durable path: disk_full, io |
| memnode_restore_lost_texts_total | counter | | own memories taken back, text lost |
| memnode_auth_refused_total | counter | reason | client calls refused (memnode.node.tokens) |
| memnode_index_tail | gauge | collection | changes durable and visible, not yet in Chroma |
| memnode_index_lag_seconds | gauge | | age of the oldest change not yet in Chroma (0: none) |
| memnode_index_batch_size | histogram | | changes the indexer moved into Chroma per batch |
| memnode_index_batch_seconds | histogram | | time to index one batch into Chroma |
| memnode_stage_cpu_seconds_total | counter | stage | CPU: ingest, write, persist, index |
| memnode_watchers | gauge | | Watch streams open (memnode.node.watch) |
| memnode_watch_changes_total | counter | kind | changes sent to Watch streams, by kind |
| memnode_audit_entries_total | counter | | entries written to the audit trail |
| memnode_audit_write_failures_total | counter | kind | failed audit writes: disk_full, io |
| memnode_audit_dropped_total | counter | | audit entries lost (buffer full while unwritable) |
| memnode_metadata_key_current | gauge | fingerprint | id of the key hashing new TEAM metadata |
| memnode_metadata_keys_held | gauge | | metadata keys held (all matched by --where) |
| memnode_metadata_key_reloads_total | counter | result | key file versions: ok, rejected |
| memnode_metadata_republished_total | counter | | own TEAM memories re-published (new key) |
| memnode_metadata_republish_pending | gauge | | own memories left to re-publish (-1: due) |
| memnode_client_tls_certificate_reloads_total | counter | result | --tls-cert files: ok, rejected |
| memnode_client_tls_certificate_expiry_timestamp_seconds | gauge | | its cert's end |

The metadata key ones: :mod:`memnode.node.rekey`; the TLS ones:
:mod:`federation.io.certreload`.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily
from prometheus_client.registry import Collector

from federation.io.cpu import StageCpu

if TYPE_CHECKING:
    from memnode.storage.tail import IndexTail

_LATENCY_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0)


class NodeMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry()
        r = self.registry
        self.requests = Counter(
            "memnode_requests", "gRPC requests by method and status code",
            ["method", "code"], registry=r,
        )
        self.request_seconds = Histogram(
            "memnode_request_duration_seconds", "gRPC request latency",
            ["method"], buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.memories = Gauge(
            "memnode_memories", "Memories held, by collection", ["collection"], registry=r
        )
        self.redactions = Counter(
            "memnode_redactions", "PII spans redacted before storage", ["kind"], registry=r
        )
        self.errors = Counter(
            "memnode_errors", "Requests refused or failed, by error kind", ["kind"], registry=r
        )
        self.events_appended = Counter(
            "memnode_events_appended", "Own signed events appended to the log", ["kind"],
            registry=r,
        )
        self.embed_seconds = Histogram(
            "memnode_embed_duration_seconds", "Time to embed one request's texts",
            buckets=_LATENCY_BUCKETS, registry=r,
        )
        self.journal_replayed = Counter(
            "memnode_journal_replayed", "Journal entries re-applied to Chroma at start",
            registry=r,
        )

        self.writes_refused = Counter(
            "memnode_writes_refused", "Writes refused because the mesh would refuse their "
            "event", ["reason"], registry=r,
        )
        self.own_events_unreplicable = Counter(
            "memnode_own_events_unreplicable", "Own events of an old log the mesh would "
            "refuse, dropped from the log at start", ["reason"], registry=r,
        )
        self.auth_refused = Counter(
            "memnode_auth_refused", "Client calls refused by token authentication, by "
            "reason", ["reason"], registry=r,
        )

        self.index_tail = Gauge(
            "memnode_index_tail", "Changes durable and visible but not yet in Chroma, by "
            "collection", ["collection"], registry=r,
        )
        self.index_lag_seconds = Gauge(
            "memnode_index_lag_seconds", "Age of the oldest change not yet in Chroma",
            registry=r,
        )
        self.index_batch_size = Histogram(
            "memnode_index_batch_size", "Changes moved into Chroma per indexer batch",
            buckets=(1, 10, 50, 100, 250, 500, 1000, 5000), registry=r,
        )
        self.index_batch_seconds = Histogram(
            "memnode_index_batch_seconds", "Time to index one batch into Chroma",
            buckets=_LATENCY_BUCKETS, registry=r,
        )

        self.writable = Gauge(
            "memnode_writable", "1 while the log and the store can write, else 0", registry=r)
        self.write_failures = Counter(
            "memnode_write_failures", "Failed writes of the durable path (log or store)",
            ["kind"], registry=r,
        )
        self.restore_lost_texts = Counter(
            "memnode_restore_lost_texts", "Own memories taken back from peers after a "
            "restore whose text is lost (written after the backup)", registry=r,
        )

        self.watchers = Gauge("memnode_watchers", "Watch streams open", registry=r)
        self.watch_changes = Counter(
            "memnode_watch_changes", "Changes sent to Watch streams", ["kind"], registry=r)
        self.audit_entries = Counter(
            "memnode_audit_entries", "Entries written to the audit trail", registry=r)
        self.audit_write_failures = Counter(
            "memnode_audit_write_failures", "Failed writes of the audit trail, by kind "
            "(disk_full, io); the entries wait in memory and are retried", ["kind"],
            registry=r)
        self.audit_dropped = Counter(
            "memnode_audit_dropped", "Audit entries lost: the trail could not be written "
            "and its buffer was full (an audit.gap entry counts them)", registry=r)

    def track_stages(self, cpu: StageCpu) -> None:
        self.registry.register(_StageCollector(cpu))

    def track_tail(self, tail: IndexTail) -> None:
        for collection in ("local", "replicas"):
            self.index_tail.labels(collection=collection).set_function(
                lambda c=collection: tail.count(c))  # type: ignore[misc]
        self.index_lag_seconds.set_function(tail.lag_seconds)

    def observe_index_batch(self, size: int, seconds: float) -> None:
        self.index_batch_size.observe(size)
        self.index_batch_seconds.observe(seconds)

    def track_memories(self, collection: str, count: Callable[[], float]) -> None:
        self.memories.labels(collection=collection).set_function(count)


class _StageCollector(Collector):
    def __init__(self, cpu: StageCpu) -> None:
        self._cpu = cpu

    def collect(self) -> Iterator[CounterMetricFamily]:
        family = CounterMetricFamily("memnode_stage_cpu_seconds", "CPU seconds by stage: "
                                     "ingest, write, persist, index", labels=["stage"])
        for stage, seconds in sorted(self._cpu.seconds().items()):
            family.add_metric([stage], seconds)
        yield family
