"""Prometheus export of the sidecar: the core's counters and gauges, read at scrape time.

| name | type | labels | meaning |
|---|---|---|---|
| memnode_federation_events_sent_total | counter | | events carried in batches sent |
| memnode_federation_events_received_total | counter | | events carried in batches received |
| memnode_federation_events_applied_total | counter | | events that changed the replica |
| memnode_federation_events_duplicate_total | counter | | received events already known |
| memnode_federation_events_rejected_total | counter | reason | refused events, by reason |
| memnode_federation_events_buffered | gauge | | events held above a gap now |
| memnode_federation_messages_sent_total | counter | kind | digest, digest_reply, events, rumor |
| memnode_federation_messages_received_total | counter | kind | same kinds |
| memnode_federation_deny_lists_rejected_total | counter | | lists not signed by our CA |
| memnode_federation_deny_list_version | gauge | | signed deny list in force (0: none) |
| memnode_federation_erasure_orders_rejected_total | counter | | orders not signed by our CA |
| memnode_federation_erasure_orders_version | gauge | | signed erasure orders held (0: none) |
| memnode_federation_messages_malformed_total | counter | | messages dropped as malformed |
| memnode_federation_messages_denied_total | counter | | messages not sent: peer denied |
| memnode_federation_bytes_sent_total | counter | | bytes on the wire (protobuf) |
| memnode_federation_bytes_received_total | counter | | bytes on the wire (protobuf) |
| memnode_federation_anti_entropy_rounds_total | counter | | periodic exchanges started |
| memnode_federation_own_events_skipped_total | counter | | own events refused, never sent |
| memnode_federation_exchanges_total | counter | | all exchanges (periodic, join, retry) |
| memnode_federation_exchange_duration_seconds | summary | | from our digest to the reply digest |
| memnode_federation_peers | gauge | state | peers by state: alive, suspect, dead |
| memnode_federation_peer_lag_events | gauge | peer | our events the peer's last digest lacked |
| memnode_federation_peer_lag_seconds | gauge | peer | age of our oldest event the peer lacks |
| memnode_federation_tick_duration_seconds | gauge | | time the last core step took |
| memnode_federation_stage_cpu_seconds_total | counter | stage | CPU: decode, core, encode |
| memnode_federation_tls_certificate_reloads_total | counter | result | cert files: ok, rejected |
| memnode_federation_tls_certificate_expiry_timestamp_seconds | gauge | | cert in force ends |
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, SummaryMetricFamily
from prometheus_client.registry import Collector

from federation.io.certreload import tls_metrics

if TYPE_CHECKING:
    from federation.io.sidecar import Sidecar

P = "memnode_federation_"


class SidecarCollector(Collector):
    def __init__(self, sidecar: Sidecar) -> None:
        self._sidecar = sidecar

    def collect(self) -> Iterator[Any]:
        core = self._sidecar.core
        if core is None:
            return
        m = core.metrics
        stats = self._sidecar.transport_stats()

        def counter(name: str, doc: str, value: float) -> CounterMetricFamily:
            return CounterMetricFamily(P + name, doc, value=value)

        yield counter("events_sent", "Events carried in batches sent", m.events_sent)
        yield counter("events_received", "Events carried in batches received",
                      m.events_received)
        yield counter("events_applied", "Events that changed the replica", m.events_applied)
        yield counter("events_duplicate", "Received events already known", m.events_duplicate)
        yield _labelled(CounterMetricFamily, "events_rejected", "Invalid events by reason",
                        "reason", dict(m.events_rejected))
        yield GaugeMetricFamily(P + "events_buffered", "Events held above a gap",
                                value=core.buffered_events())
        yield _labelled(CounterMetricFamily, "messages_sent", "Messages sent by kind", "kind",
                        dict(m.messages_sent))
        yield _labelled(CounterMetricFamily, "messages_received", "Messages received by kind",
                        "kind", dict(m.messages_received))
        yield counter("messages_denied", "Messages not sent: the peer is denied",
                      self._sidecar.messages_denied)
        yield counter("deny_lists_rejected",
                      "Signed deny lists refused: bad or no CA signature, malformed",
                      self._sidecar.deny_lists_rejected)
        yield GaugeMetricFamily(P + "deny_list_version",
                                "Version of the CA-signed deny list in force (0: none)",
                                value=self._sidecar.deny_version)
        yield counter("erasure_orders_rejected",
                      "Signed erasure orders refused: bad or no CA signature, malformed",
                      self._sidecar.erasures.rejected)
        yield GaugeMetricFamily(P + "erasure_orders_version",
                                "Version of the CA-signed erasure orders in force (0: none)",
                                value=self._sidecar.erasure_version)
        yield counter("messages_malformed", "Messages dropped as malformed",
                      m.messages_malformed + stats.malformed)
        yield counter("bytes_sent", "Bytes sent to peers (protobuf)", stats.bytes_sent)
        yield counter("bytes_received", "Bytes received from peers (protobuf)",
                      stats.bytes_received)
        yield counter("anti_entropy_rounds", "Periodic exchanges started",
                      m.anti_entropy_rounds)
        yield counter("own_events_skipped", "Own events the mesh would refuse, never sent",
                      m.own_events_skipped)
        yield counter("exchanges", "Exchanges started (periodic, join, retry)",
                      m.exchanges_started)
        yield SummaryMetricFamily(P + "exchange_duration_seconds",
                                  "From our digest to the peer's reply digest",
                                  count_value=self._sidecar.exchange_count,
                                  sum_value=self._sidecar.exchange_seconds_total)
        yield _labelled(GaugeMetricFamily, "peers", "Peers by state", "state",
                        core.peers_by_state())
        lag_events: dict[str, float] = {}
        lag_seconds: dict[str, float] = {}
        for peer in core.peers():
            if peer.events_behind is not None:
                lag_events[peer.node_id] = peer.events_behind
                lag_seconds[peer.node_id] = self._sidecar.lag_seconds(peer.node_id)
        yield _labelled(GaugeMetricFamily, "peer_lag_events", "Our events a peer lacks",
                        "peer", lag_events)
        yield _labelled(GaugeMetricFamily, "peer_lag_seconds",
                        "Age of our oldest event a peer lacks", "peer", lag_seconds)
        yield GaugeMetricFamily(P + "tick_duration_seconds", "Time the last core step took",
                                value=self._sidecar.last_step_seconds)
        yield _labelled(CounterMetricFamily, "stage_cpu_seconds",
                        "CPU seconds by stage: decode, core, encode", "stage",
                        self._sidecar.cpu.seconds())
        if self._sidecar.security.files is not None:
            yield from tls_metrics(P + "tls", self._sidecar.security.files)


def _labelled(kind: Callable[..., Any], name: str, doc: str, label: str,
              values: dict[str, Any]) -> Any:
    family = kind(P + name, doc, labels=[label])
    for key, value in sorted(values.items()):
        family.add_metric([str(key)], value)
    return family
