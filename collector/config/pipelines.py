"""Checks across keys, made once every value has its kind: pipelines, extensions, unsupported values.

A key that is accepted does what it says; a value this collector cannot honour
is refused here with what to write instead, rather than silently ignored.
"""

from __future__ import annotations

import zoneinfo
from typing import TYPE_CHECKING

from .errors import ConfigError
from .schema import Extensions

if TYPE_CHECKING:
    from .loading import CollectorConfig

PROCESSORS = ("memory_limiter", "batch")


def check_pipelines(config: CollectorConfig) -> None:
    """Refuse what would be accepted but not done (or not done as written)."""
    _check_traces_pipeline(config)
    _check_unsupported(config)
    for protocol in ("grpc", "http"):
        authenticator = config.get(f"receivers.otlp.protocols.{protocol}.auth.authenticator")
        if authenticator and authenticator != "bearertokenauth":
            raise ConfigError(f"receivers.otlp.protocols.{protocol}.auth.authenticator: only 'bearertokenauth' "
                              "is available")
    known = sorted(Extensions.model_fields)
    for ext in config.get("service.extensions"):
        if ext not in known:
            raise ConfigError(f"service.extensions: {ext!r} is not available (this collector has: {', '.join(known)})")
    zone = config.get("extensions.spanledger_api.time_zone")
    if zone != "UTC" and zone not in zoneinfo.available_timezones():
        raise ConfigError(f"extensions.spanledger_api.time_zone: {zone!r} is not an IANA time zone "
                          "(write e.g. UTC, Europe/Paris, America/New_York)")
    level = config.get("service.telemetry.logs.level")
    if level.lower() not in ("debug", "info", "warn", "warning", "error"):
        raise ConfigError(f"service.telemetry.logs.level: {level!r} is not a level (debug, info, warn, error)")
    tls = config.get("receivers.otlp.protocols.grpc.tls")
    if bool(tls["cert_file"]) != bool(tls["key_file"]):
        raise ConfigError("receivers.otlp.protocols.grpc.tls: give both cert_file and key_file, or neither")


def _check_traces_pipeline(config: CollectorConfig) -> None:
    traces = config.get("service.pipelines.traces")
    forwarders = {k for k in config.raw["exporters"] if k != "clickhouse"}
    for kind, known in (("receivers", {"otlp"}), ("processors", set(PROCESSORS)),
                        ("exporters", {"clickhouse", *forwarders})):
        for name in traces[kind]:
            if name not in known:
                raise ConfigError(f"service.pipelines.traces.{kind}: {name!r} is not available "
                                  f"(this collector has: {', '.join(sorted(known))})")
    if "otlp" not in traces["receivers"]:
        raise ConfigError("service.pipelines.traces.receivers: list otlp (the only receiver, always running)")
    if set(traces["processors"]) != set(PROCESSORS):
        raise ConfigError("service.pipelines.traces.processors: list both memory_limiter and batch: spanledger "
                          "always applies them (admission control, then WAL segments), so leaving one out would "
                          "not turn it off")
    if "clickhouse" not in traces["exporters"]:
        raise ConfigError("service.pipelines.traces.exporters: list clickhouse (the store); spanledger stores every "
                          "span it accepts and forwards to the otlp/ and otlphttp/ exporters beside it")
    for name in traces["exporters"]:
        if name == "clickhouse":
            continue
        if not config.raw["exporters"][name]["endpoint"]:
            raise ConfigError(f"exporters.{name}.endpoint: set the destination (host:port for otlp/, a URL for otlphttp/)")
        if config.raw["exporters"][name]["compression"] not in ("gzip", "none", ""):
            raise ConfigError(f"exporters.{name}.compression: write gzip or none")


def _check_unsupported(config: CollectorConfig) -> None:
    """Collector keys spanledger declares (so a Collector file loads) but can only honour at their default."""
    if config.get("processors.batch.send_batch_max_size"):
        raise ConfigError("processors.batch.send_batch_max_size: not supported (a request is stored whole in one "
                          "WAL segment, never split): remove it, and lower processors.batch.send_batch_size to "
                          "make segments smaller")
    health = config.get("extensions.health_check")
    if config.extension_enabled("health_check"):
        if not health["endpoint"]:
            raise ConfigError("extensions.health_check.endpoint: give host:port (the Collector's is localhost:13133)")
        if not health["path"].startswith("/"):
            raise ConfigError(f"extensions.health_check.path: {health['path']!r} must start with /")
