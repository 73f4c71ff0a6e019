"""The collector's own metrics, for /metrics (Prometheus text format, the official prometheus_client).

Counters the collector already keeps (IngestStats, the WAL, each forwarder)
are read at scrape time by a custom collector, so nothing is counted twice;
only durations, which IngestStats does not keep, are observed here into
histograms.  Each Collector has its own registry (several run in one test
process), with the standard process metrics (process_resident_memory_bytes...).
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, ProcessCollector, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
_EXPORT_BUCKETS = (0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)
_QUERY_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)

# IngestStats field -> (metric name without _total, help); all counters
_INGEST_COUNTERS = {
    "spans_accepted": ("spanledger_receiver_accepted_spans", "Spans accepted (durable in the WAL) over gRPC and HTTP."),
    "requests_accepted": ("spanledger_receiver_accepted_requests", "Export requests accepted."),
    "spans_rejected": ("spanledger_receiver_rejected_spans", "Spans rejected one by one in partial_success."),
    "duplicate_requests": ("spanledger_receiver_duplicate_requests",
                           "Client retries of requests already stored, acknowledged without storing again."),
    "segments_stored": ("spanledger_store_segments_stored", "WAL segments inserted into the store."),
    "store_failures": ("spanledger_store_failures", "Failed attempts to insert a segment (retried)."),
    "segments_quarantined": ("spanledger_store_segments_quarantined", "Segments the store kept refusing, set aside."),
    "models_priced": ("spanledger_pricing_models_priced", "(provider, model) pairs priced before their first segment loaded."),
    "segments_split": ("spanledger_store_segments_split", "Segments the store refused part of, stored piece by piece."),
    "spans_quarantined": ("spanledger_store_quarantined_spans", "Spans the store refused, kept in wal/quarantine/ with a reason."),
}
_REFUSALS = {"refused_memory": "memory", "refused_wal_full": "wal_full", "refused_disk": "disk"}
# ForwardStats field -> (metric name without _total, help)
_FORWARD_COUNTERS = {
    "spans_sent": ("spanledger_forward_sent_spans", "Spans delivered to the destination."),
    "requests_sent": ("spanledger_forward_sent_requests", "Export requests delivered to the destination."),
    "spans_rejected_by_destination": ("spanledger_forward_destination_rejected_spans",
                                      "Spans the destination rejected in its partial_success."),
    "spans_dropped": ("spanledger_forward_dropped_spans",
                      "Spans not forwarded: refused for good, or past the destination's backlog bound."),
    "segments_dropped": ("spanledger_forward_dropped_segments", "WAL segments skipped past the backlog bound."),
    "send_failures": ("spanledger_forward_send_failures", "Send attempts that failed and were retried."),
}


class _CollectorState:
    """A prometheus_client custom collector over one Collector's live counters."""

    def __init__(self, collector) -> None:
        self.collector = collector

    def collect(self):
        c = self.collector
        stats = c.stats
        for field_name, (name, doc) in _INGEST_COUNTERS.items():
            family = CounterMetricFamily(name, doc)
            family.add_metric([], getattr(stats, field_name))
            yield family
        refused = CounterMetricFamily("spanledger_receiver_refused_requests",
                                      "Export requests answered UNAVAILABLE/503 (retry later), by reason.",
                                      labels=["reason"])
        for field_name, reason in _REFUSALS.items():
            refused.add_metric([reason], getattr(stats, field_name))
        yield refused
        ready = GaugeMetricFamily("spanledger_store_ready", "1 when the store is reachable and migrated.")
        ready.add_metric([], 1 if c.store() is not None else 0)
        yield ready
        if c.wal is not None:
            yield _gauge("spanledger_wal_unstored_bytes", "WAL bytes accepted but not yet stored.", c.wal.unstored_bytes)
            yield _gauge("spanledger_wal_pending_segments", "WAL segments not yet stored (the open one included).",
                         c.wal.pending_segments())
            corrupt = CounterMetricFamily("spanledger_wal_corrupt_records", "Damaged WAL records skipped at recovery.")
            corrupt.add_metric([], c.wal.corrupt_records)
            yield corrupt
        yield from self._forwarding(c.forwarders)
        subscribers = getattr(c, "feed_subscriber_count", None)  # the live feed registers this when it runs
        if callable(subscribers):
            yield _gauge("spanledger_feed_subscribers", "Clients connected to the live feed.", subscribers())

    def _forwarding(self, forwarders):
        for field_name, (name, doc) in _FORWARD_COUNTERS.items():
            family = CounterMetricFamily(name, doc, labels=["destination"])
            for f in forwarders:
                family.add_metric([f.destination], getattr(f.stats, field_name))
            yield family
        lag = GaugeMetricFamily("spanledger_forward_lag_segments",
                                "Sealed WAL segments the destination has not fully received.", labels=["destination"])
        for f in forwarders:
            lag.add_metric([f.destination], f.segments_behind)
        yield lag


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    family = GaugeMetricFamily(name, doc)
    family.add_metric([], value)
    return family


class CollectorMetrics:
    """One Collector's registry: live counters, the process collector, and duration histograms."""

    def __init__(self, collector) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.registry.register(_CollectorState(collector))
        ProcessCollector(registry=self.registry)
        self.requests = Counter("spanledger_receiver_requests", "Export requests by transport and outcome "
                                "(ok, partial, invalid, refused, unauthenticated, too_large, busy, ...).",
                                ["transport", "outcome"], registry=self.registry)
        self.export_seconds = Histogram("spanledger_receiver_export_duration_seconds",
                                        "Time from a request's bytes to its durable WAL record.", ["transport"],
                                        buckets=_EXPORT_BUCKETS, registry=self.registry)
        self.query_seconds = Histogram("spanledger_query_duration_seconds", "Read queries through run_query.",
                                       ["outcome"], buckets=_QUERY_BUCKETS, registry=self.registry)

    def observe_export(self, transport: str, outcome: str, seconds: float | None) -> None:
        self.requests.labels(transport, outcome).inc()
        if seconds is not None:
            self.export_seconds.labels(transport).observe(seconds)

    def observe_query(self, seconds: float, outcome: str) -> None:
        self.query_seconds.labels(outcome).observe(seconds)

    def render(self) -> bytes:
        return generate_latest(self.registry)


def observe_query(collector, seconds: float, outcome: str) -> None:
    """The hook run_query calls; a no-op for collectors without metrics (test doubles)."""
    metrics = getattr(collector, "metrics", None)
    if isinstance(metrics, CollectorMetrics):
        metrics.observe_query(seconds, outcome)
