"""Every setting of ``spanledger.configure()``, declared once.

Precedence is always: argument > environment variable > default.  A bad
environment value is logged (once) and the default is used: a typo in a
deployment variable must not take the agent down.

Queue sizing (why 65 536): the OTel SDK default of 2 048 lost 58% of spans when
one process produced ~10k spans/s, because encoding + gRPC export runs at about
11k spans/s per process and shares the GIL with the producer.  65 536 spans
absorb a ~6 s burst at 10k spans/s; a span with a dozen attributes holds ~2 KB,
so a full queue costs ~130 MB at worst.  Lower it with
``OTEL_BSP_MAX_QUEUE_SIZE`` on small machines.  What overflows is dropped and
counted (``spanledger.stats().spans_dropped``), never blocking the caller.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import unquote, urlsplit

from spanledger._safe import invalid_input

_T = TypeVar("_T")

DEFAULT_ENDPOINT = "http://localhost:4317"
_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "[::1]", "0.0.0.0"}
_TRUE = {"1", "true", "yes", "on", "span_only", "span_and_event"}
_FALSE = {"0", "false", "no", "off", "no_content", "event_only", ""}


def parse_bool(text: str) -> bool:
    value = text.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ValueError(f"expected true/false, got {text!r}")


def parse_positive_int(text: str) -> int:
    value = int(text.strip())
    if value <= 0:
        raise ValueError(f"expected a positive integer, got {text!r}")
    return value


def parse_seconds(text: str) -> float:
    value = float(text.strip())
    if value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {text!r}")
    return value


def parse_key_values(text: str) -> dict[str, str]:
    """The OTel ``k1=v1,k2=v2`` format (values URL-encoded) of headers and resource attributes."""
    out: dict[str, str] = {}
    for item in text.split(","):
        if not item.strip():
            continue
        key, sep, value = item.partition("=")
        if not sep or not key.strip():
            raise ValueError(f"expected key=value, got {item!r}")
        out[unquote(key.strip())] = unquote(value.strip())
    return out


@dataclass(frozen=True)
class Option(Generic[_T]):
    """One setting: its environment variables (first set wins), default and parser."""

    name: str
    env: tuple[str, ...]
    default: _T
    parse: Callable[[str], _T]
    doc: str

    def resolve(self, argument: _T | None, environ: Mapping[str, str] | None = None) -> _T:
        if argument is not None:
            return argument
        environ = os.environ if environ is None else environ
        for variable in self.env:
            raw = environ.get(variable)
            if raw is None or (raw.strip() == "" and self.parse is not parse_bool):
                continue
            try:
                return self.parse(raw)
            except ValueError as exc:
                invalid_input("env:" + variable, "ignoring %s=%r (%s); using %r", variable, raw, exc, self.default)
                return self.default
        return self.default


SERVICE_NAME = Option[str | None]("service_name", ("OTEL_SERVICE_NAME",), None, str, "service.name of the resource")
ENDPOINT = Option(
    "endpoint",
    ("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "OTEL_EXPORTER_OTLP_ENDPOINT"),
    DEFAULT_ENDPOINT,
    str,
    "OTLP/gRPC endpoint of the collector",
)
INSECURE = Option[bool | None](
    "insecure",
    ("OTEL_EXPORTER_OTLP_TRACES_INSECURE", "OTEL_EXPORTER_OTLP_INSECURE"),
    None,
    parse_bool,
    "plaintext gRPC; by default true for http:// and localhost endpoints, TLS otherwise",
)
HEADERS = Option[dict[str, str]](
    "headers",
    ("OTEL_EXPORTER_OTLP_TRACES_HEADERS", "OTEL_EXPORTER_OTLP_HEADERS"),
    {},
    parse_key_values,
    "gRPC metadata sent with every export (e.g. authorization)",
)
TIMEOUT = Option(
    "timeout",
    ("OTEL_EXPORTER_OTLP_TRACES_TIMEOUT", "OTEL_EXPORTER_OTLP_TIMEOUT"),
    10.0,
    parse_seconds,
    "seconds one export may take, retries included (runs in the background thread)",
)
RESOURCE_ATTRIBUTES = Option[dict[str, str]](
    "resource_attributes", ("OTEL_RESOURCE_ATTRIBUTES",), {}, parse_key_values, "extra resource attributes"
)
CAPTURE_CONTENT = Option(
    "capture_content",
    ("OTEL_INSTRUMENTATION_GENAI_CAPTURE_MESSAGE_CONTENT",),
    False,
    parse_bool,
    "record prompts, outputs and tool arguments/results (off by default: privacy)",
)
MAX_CONTENT_LENGTH = Option(
    "max_content_length",
    ("SPANLEDGER_MAX_CONTENT_LENGTH",),
    4096,
    parse_positive_int,
    "characters kept of each captured content value",
)
MAX_QUEUE_SIZE = Option(
    "max_queue_size", ("OTEL_BSP_MAX_QUEUE_SIZE",), 65536, parse_positive_int, "spans buffered before dropping"
)
MAX_EXPORT_BATCH_SIZE = Option(
    "max_export_batch_size", ("OTEL_BSP_MAX_EXPORT_BATCH_SIZE",), 512, parse_positive_int, "spans per export request"
)
SCHEDULE_DELAY_MILLIS = Option(
    "schedule_delay_millis", ("OTEL_BSP_SCHEDULE_DELAY",), 1000, parse_positive_int, "ms between background exports"
)
SHUTDOWN_TIMEOUT_MILLIS = Option(
    "shutdown_timeout_millis",
    ("SPANLEDGER_SHUTDOWN_TIMEOUT_MS",),
    5000,
    parse_positive_int,
    "longest wait for the last spans to leave at shutdown/exit (a down collector cannot hang the exit)",
)
DISABLED = Option("disabled", ("OTEL_SDK_DISABLED",), False, parse_bool, "configure() does nothing when true")

OPTIONS: tuple[Option[Any], ...] = (
    SERVICE_NAME, ENDPOINT, INSECURE, HEADERS, TIMEOUT, RESOURCE_ATTRIBUTES, CAPTURE_CONTENT,
    MAX_CONTENT_LENGTH, MAX_QUEUE_SIZE, MAX_EXPORT_BATCH_SIZE, SCHEDULE_DELAY_MILLIS,
    SHUTDOWN_TIMEOUT_MILLIS, DISABLED,
)  # fmt: skip


@dataclass(frozen=True)
class Settings:
    """The resolved configuration; ``configure()`` returns it."""

    service_name: str | None
    endpoint: str
    insecure: bool
    headers: Mapping[str, str]
    timeout: float
    resource_attributes: Mapping[str, Any]
    capture_content: bool
    max_content_length: int
    max_queue_size: int
    max_export_batch_size: int
    schedule_delay_millis: int
    shutdown_timeout_millis: int
    disabled: bool


def default_insecure(endpoint: str) -> bool:
    """Plaintext for ``http://`` and for a local collector; TLS for everything else."""
    parts = urlsplit(endpoint if "://" in endpoint else "//" + endpoint)
    if parts.scheme == "http":
        return True
    if parts.scheme == "https":
        return False
    return (parts.hostname or "") in _LOCAL_HOSTS


def resolve_settings(arguments: Mapping[str, Any], environ: Mapping[str, str] | None = None) -> Settings:
    """Apply argument > environment > default to every option."""
    values = {option.name: option.resolve(arguments.get(option.name), environ) for option in OPTIONS}
    if values["insecure"] is None:
        values["insecure"] = default_insecure(values["endpoint"])
    values["headers"] = dict(values["headers"])
    env_resource = RESOURCE_ATTRIBUTES.resolve(None, environ)
    values["resource_attributes"] = {**env_resource, **dict(arguments.get("resource_attributes") or {})}
    return Settings(**values)
