"""Helpers for collector tests: real collectors on port 0, raw gRPC clients, polling the store."""


from __future__ import annotations

import os
import time
from pathlib import Path

import grpc
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest, ExportTraceServiceResponse

from spanledger.collector.app import Collector, Overrides
from spanledger.collector.config import load_config
from spanledger.collector.ingest.activity_json import set_any_value

EXPORT = "/opentelemetry.proto.collector.trace.v1.TraceService/Export"
FAST_BATCH = "processors:\n  batch:\n    timeout: 100ms\n"


def token_config(*, operators: tuple[str, ...] = (), tenants: dict[str, str] | None = None,
                 batch_timeout: str = "100ms") -> str:
    """A configuration whose gRPC receiver wants a bearer token: each of ``operators`` sees every tenant,
    each token of ``tenants`` (name -> token) is bound to its tenant.  It ends inside ``extensions:``, so
    a test may append more extensions (``  spanledger_api: ...``)."""
    lines = [f"processors: {{batch: {{timeout: {batch_timeout}}}}}",
             "receivers: {otlp: {protocols: {grpc: {auth: {authenticator: bearertokenauth}}}}}",
             "extensions:", "  bearertokenauth:"]
    if operators:
        lines.append("    tokens: [" + ", ".join(f'"{token}"' for token in operators) + "]")
    if tenants:
        lines.append("    tenants: {" + ", ".join(f'{name}: "{token}"' for name, token in tenants.items()) + "}")
    return "\n" + "\n".join(lines) + "\n"


def start_collector(data_dir: Path, config_text: str = FAST_BATCH, *, http: bool = False,
                    grpc_endpoint: str = "127.0.0.1:0") -> Collector:
    """A started collector with every listener on port 0 (``http``: the OTLP/HTTP receiver too)."""
    collector = Collector(load_config(text=config_text),
                          Overrides(grpc_endpoint=grpc_endpoint, api_endpoint="127.0.0.1:0",
                                    http_endpoint="127.0.0.1:0" if http else None, data_dir=str(data_dir)))
    collector.start()
    return collector




class RawClient:
    """Sends pre-serialized bytes, exactly as given, to a collector's Export method."""

    def __init__(self, address: str, metadata: tuple = (), compression=None) -> None:
        self.channel = grpc.insecure_channel(address, options=[("grpc.max_send_message_length", 256 << 20)])
        self.call = self.channel.unary_unary(EXPORT)
        self.metadata = metadata
        self.compression = compression

    def export(self, payload: bytes, timeout: float = 30) -> ExportTraceServiceResponse:
        raw = self.call(payload, timeout=timeout, metadata=self.metadata, compression=self.compression)
        return ExportTraceServiceResponse.FromString(raw)

    def close(self) -> None:
        self.channel.close()




def make_span(scope_spans, name: str = "op", *, trace_id: bytes | None = None, parent: bytes = b"",
              start_ns: int | None = None, duration_ns: int = 1_000_000, attributes: dict | None = None):
    span = scope_spans.spans.add()
    span.trace_id = trace_id or os.urandom(16)
    span.span_id = os.urandom(8)
    span.parent_span_id = parent
    span.name = name
    span.start_time_unix_nano = start_ns or time.time_ns()
    span.end_time_unix_nano = span.start_time_unix_nano + duration_ns
    for key, value in (attributes or {}).items():
        set_any_value(span.attributes.add(key=key).value, value)
    return span


def new_request(service: str = "test-service") -> tuple[ExportTraceServiceRequest, object]:
    request = ExportTraceServiceRequest()
    resource_spans = request.resource_spans.add()
    resource_spans.resource.attributes.add(key="service.name").value.string_value = service
    scope_spans = resource_spans.scope_spans.add()
    scope_spans.scope.name = "tests"
    return request, scope_spans


def wait_stored(collector: Collector, expected: int, table: str = "spanledger.otel_traces", timeout: float = 30) -> int:
    """Poll until ``expected`` rows are in ``table`` (and no WAL bytes are left unstored)."""
    deadline = time.monotonic() + timeout
    count = -1
    while time.monotonic() < deadline:
        store = collector.store()
        if store is not None and collector.wal.unstored_bytes == 0:
            # every span is priced in the one pass that stores it: a count is final once it is reached
            count = store.query(f"SELECT count() FROM {table}").result_rows[0][0]
            if count >= expected:
                return count
        time.sleep(0.05)
    raise AssertionError(f"expected {expected} rows in {table}, found {count} after {timeout}s "
                         f"(stats: {collector.stats_snapshot()})")


def rows(collector: Collector, sql: str, **params) -> list[dict]:
    result = collector.store().query(sql, params)
    return [dict(zip(result.column_names, row)) for row in result.result_rows]
