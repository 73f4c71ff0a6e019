"""The collector's configuration, in the OpenTelemetry Collector's own format.

An ``otel-config.yaml`` has receivers / processors / exporters / extensions /
service.pipelines, with ``${env:VAR}`` (and ``${env:VAR:-default}``)
substitution.  Keys of the ``clickhouse`` exporter follow the Collector
ClickHouse exporter where they mean the same thing; spanledger's own keys sit
beside them.  Every key is declared once below with its type and default;
an unknown key or a bad value stops start-up with a message naming the key.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}


class ConfigError(ValueError):
    """The configuration is wrong; the message names the key and says what is expected."""


def duration_s(value: Any, key: str) -> float:
    """'1s', '200ms', '72h' (the Collector's duration syntax) or a number of seconds."""
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    match = _DURATION.match(str(value))
    if not match:
        raise ConfigError(f"{key}: {value!r} is not a duration (write e.g. 500ms, 1s, 72h)")
    return float(match.group(1)) * _DURATION_UNITS[match.group(2)]


def substitute_env(text: str) -> str:
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"${{env:{name}}} is used in the configuration but {name} is not set "
                          f"(set it, or write ${{env:{name}:-default}})")
    return _ENV.sub(repl, text)


# -- the declared shape: key -> (type, default) or nested dict ------------------
_INT, _STR, _BOOL, _DUR, _LIST, _MAP = "int", "str", "bool", "duration", "list", "map"
_RECORDS = "records"  # a list of mappings; what each holds is checked by the part that reads it, naming key[i].field

# One forwarding exporter (otlp/NAME or otlphttp/NAME), in the Collector's own exporter format.
_FORWARD_EXPORTER: dict[str, Any] = {
    "endpoint": (_STR, ""),
    "headers": (_MAP, {}),
    "compression": (_STR, "gzip"),
    "timeout": (_DUR, 10.0),
    "tls": {"insecure": (_BOOL, False), "ca_file": (_STR, ""), "cert_file": (_STR, ""), "key_file": (_STR, ""),
            "insecure_skip_verify": (_BOOL, False)},
    "retry_on_failure": {"initial_interval": (_DUR, 1.0), "max_interval": (_DUR, 30.0)},
    # WAL segments kept for this destination while it is behind; older ones are dropped (counted)
    "sending_queue": {"queue_size": (_INT, 100)},
    "tenants": (_LIST, []),  # forward only these tenants' spans (empty: all)
}

SCHEMA: dict[str, Any] = {
    "receivers": {"otlp": {"protocols": {"grpc": {
        "endpoint": (_STR, "localhost:4317"),
        "max_recv_msg_size_mib": (_INT, 4),
        "max_concurrent_streams": (_INT, 16),
        "tls": {"cert_file": (_STR, ""), "key_file": (_STR, ""), "client_ca_file": (_STR, "")},
        "auth": {"authenticator": (_STR, "")},
    }, "http": {
        # enabled when this key is in the configuration file (as in the Collector); see http_enabled()
        "endpoint": (_STR, "localhost:4318"),
        "traces_url_path": (_STR, "/v1/traces"),
        "max_request_body_size": (_INT, 4 << 20),  # bytes, checked while reading and after decompression
        "max_concurrent_requests": (_INT, 16),     # beyond: 429 + Retry-After
        "read_timeout": (_DUR, 30.0),              # a body slower than this gets 408
        "tls": {"cert_file": (_STR, ""), "key_file": (_STR, "")},
        "cors": {"allowed_origins": (_LIST, []), "allowed_headers": (_LIST, []), "max_age": (_INT, 0)},
        "auth": {"authenticator": (_STR, "")},
    }}}},
    "processors": {
        "batch": {"timeout": (_DUR, 1.0), "send_batch_size": (_INT, 50_000), "send_batch_max_size": (_INT, 0)},
        "memory_limiter": {"check_interval": (_DUR, 0.1), "limit_mib": (_INT, 1024)},
    },
    "exporters": {"clickhouse": {
        "endpoint": (_STR, ""),
        "username": (_STR, ""),
        "password": (_STR, ""),
        "database": (_STR, "spanledger"),
        "traces_table_name": (_STR, "otel_traces"),
        "ttl": (_DUR, 0.0),
        "create_schema": (_BOOL, True),
        "cluster_name": (_STR, ""),
        "timeout": (_DUR, 30.0),
        # spanledger's own
        "data_dir": (_STR, ".spanledger"),
        "wal": {"max_size_mib": (_INT, 2048), "segment_max_mib": (_INT, 32), "fsync": (_BOOL, True),
                "retain_done_mib": (_INT, 64)},
        "limits": {"max_attributes": (_INT, 128), "max_attribute_length": (_INT, 65536),
                   "max_events": (_INT, 128), "max_links": (_INT, 128)},
        "pricing": {"overrides_file": (_STR, ""), "provided_cost_wins": (_BOOL, True)},
        "content": {"drop_attributes": (_LIST, []), "redact_attributes": (_LIST, [])},
        "retention": {"spans": (_DUR, 0.0), "content": (_DUR, 0.0), "rollups": (_DUR, 0.0)},
        "retry_on_failure": {"initial_interval": (_DUR, 0.2), "max_interval": (_DUR, 30.0)},
        "sending_queue": {"num_consumers": (_INT, 2)},
        # the embedded engine's memory (0: derived from processors.memory_limiter.limit_mib)
        "engine": {"max_server_memory_mib": (_INT, 0), "max_query_memory_mib": (_INT, 0),
                   "max_merge_memory_mib": (_INT, 0), "cache_mib": (_INT, 64)},
    },
        # Forwarding destinations, in the Collector's own exporter format; any number of each,
        # named otlp/NAME (gRPC) or otlphttp/NAME (HTTP).  Templates: resolved only when given.
        "otlp/*": _FORWARD_EXPORTER,
        "otlphttp/*": {**_FORWARD_EXPORTER, "traces_endpoint": (_STR, "")},
    },
    "extensions": {
        "bearertokenauth": {"tokens": (_LIST, []), "filename": (_STR, ""), "tenants": (_MAP, {})},
        "spanledger_api": {"endpoint": (_STR, "localhost:4319"), "time_zone": (_STR, "UTC"),
                           "tls": {"cert_file": (_STR, ""), "key_file": (_STR, "")},
                           "query_limits": {"timeout": (_DUR, 30.0), "max_memory_mib": (_INT, 0),
                                            "max_rows_to_read": (_INT, 2_000_000_000),
                                            "max_result_rows": (_INT, 1_000_000),
                                            "max_result_bytes": (_INT, 256 << 20),
                                            "per_tenant_concurrency": (_INT, 2), "max_concurrency": (_INT, 4)},
                           "allow_insecure_remote": (_BOOL, False),
                           "max_request_body_mib": (_INT, 4),
                           "header_timeout": (_DUR, 10.0),
                           "body_timeout": (_DUR, 30.0),
                           "keep_alive_timeout": (_DUR, 5.0),
                           "cors": {"allowed_origins": (_LIST, [])},
                           "ingest_keys": (_MAP, {}),
                           "ingest_key_limits": {"requests_per_minute": (_INT, 600), "max_items": (_INT, 100),
                                                 "max_body_kib": (_INT, 64)},
                           "feed": {"max_subscribers": (_INT, 1000), "max_subscribers_per_token": (_INT, 100),
                                    "subscriber_buffer": (_INT, 10_000), "replay_buffer": (_INT, 100_000),
                                    "replay_linger": (_DUR, 300.0), "totals_interval": (_DUR, 5.0),
                                    "send_timeout": (_DUR, 10.0)}},
        # budgets evaluated at the collector (collector/alerts/, docs/budgets.md)
        "spanledger_budgets": {"evaluation_interval": (_DUR, 5.0),
                               "webhook": {"url": (_STR, ""), "secret": (_STR, ""), "timeout": (_DUR, 5.0),
                                           "max_attempts": (_INT, 8), "initial_backoff": (_DUR, 0.5),
                                           "max_backoff": (_DUR, 60.0)},
                               "budgets": (_RECORDS, [])},
        "health_check": {"endpoint": (_STR, "")},
    },
    "service": {
        "extensions": (_LIST, []),
        "pipelines": {"traces": {"receivers": (_LIST, ["otlp"]), "processors": (_LIST, ["memory_limiter", "batch"]),
                                 "exporters": (_LIST, ["clickhouse"])}},
        "telemetry": {"logs": {"level": (_STR, "info")}},
    },
}


def _check(value: Any, kind: str, key: str) -> Any:
    if kind == _INT:
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{key}: expected a whole number >= 0, got {value!r}")
    elif kind == _STR:
        if not isinstance(value, (str, int)) or isinstance(value, bool):
            raise ConfigError(f"{key}: expected text, got {value!r}")
        value = str(value)
    elif kind == _BOOL:
        if not isinstance(value, bool):
            raise ConfigError(f"{key}: expected true or false, got {value!r}")
    elif kind == _DUR:
        value = duration_s(value, key)
    elif kind == _LIST:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list, got {value!r}")
    elif kind == _RECORDS:
        if not isinstance(value, list):
            raise ConfigError(f"{key}: expected a list of mappings, got {value!r}")
        for i, item in enumerate(value):
            if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
                raise ConfigError(f"{key}[{i}]: expected a mapping of keys, got {item!r}")
    elif kind == _MAP:
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise ConfigError(f"{key}: expected a mapping, got {value!r}")
    return value


def _resolve(schema: dict[str, Any], given: Any, path: str) -> dict[str, Any]:
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{path or 'the configuration'}: expected a mapping of keys, got {given!r}")
    out: dict[str, Any] = {}
    for key in given:
        if key not in schema:
            where = f"{path}.{key}" if path else key
            template = schema.get(key.split("/", 1)[0] + "/*")
            if template is None or key.endswith("/"):
                raise ConfigError(f"{where}: unknown key (known here: {', '.join(sorted(schema))})")
            out[key] = _resolve(template, given[key], where)
    for key, spec in schema.items():
        if key.endswith("/*"):
            continue
        where = f"{path}.{key}" if path else key
        if isinstance(spec, dict):
            out[key] = _resolve(spec, given.get(key), where)
        else:
            kind, default = spec
            if key in given and given[key] is not None:
                out[key] = _check(given[key], kind, where)
            else:
                out[key] = _from_environment(where, kind, default)
    return out


def env_var(path: str) -> str:
    """The environment variable that gives a key its value when the file does not:
    ``processors.memory_limiter.limit_mib`` -> ``SPANLEDGER_PROCESSORS_MEMORY_LIMITER_LIMIT_MIB``."""
    return "SPANLEDGER_" + re.sub(r"[^A-Za-z0-9]+", "_", path).upper()


def _from_environment(path: str, kind: str, default: Any) -> Any:
    """A value written in the file wins; else the key's environment variable; else its default."""
    name = env_var(path)
    if name not in os.environ:
        return default
    import yaml  # the collector extra ships PyYAML

    text = os.environ[name]
    try:
        value = yaml.safe_load(text) if kind not in (_STR,) else text
    except yaml.YAMLError:
        value = text
    return _check(value, kind, f"{path} (from ${name})")


@dataclass(frozen=True)
class CollectorConfig:
    """The resolved configuration (every key present, every value checked)."""

    raw: dict[str, Any] = field(default_factory=lambda: _resolve(SCHEMA, {}, ""))
    source: str = "defaults"
    given: dict[str, Any] | None = None  # the file as written (None: no file, the shipped defaults)

    def http_enabled(self) -> bool:
        """OTLP/HTTP is on when ``receivers.otlp.protocols.http`` is in the file, as in the Collector.
        With no file at all the shipped otel-config.yaml applies, which has it."""
        if self.given is None:
            return True
        protocols = ((self.given.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
        return "http" in protocols

    def forward_exporters(self) -> dict[str, dict[str, Any]]:
        """The otlp/NAME and otlphttp/NAME exporters the traces pipeline lists, in its order."""
        exporters = self.raw["exporters"]
        return {name: exporters[name] for name in self.get("service.pipelines.traces.exporters")
                if name != "clickhouse"}

    def get(self, dotted: str) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            node = node[part]
        return node


def _expand_env(node: Any, yaml) -> Any:
    """Substitute ${env:...} in values (never in comments or keys), as the Collector does.

    A value that is one whole reference takes the variable's YAML type, so
    ``fsync: ${env:FSYNC}`` with FSYNC=false is a boolean."""
    if isinstance(node, dict):
        return {k: _expand_env(v, yaml) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, yaml) for v in node]
    if isinstance(node, str) and "${env:" in node:
        expanded = substitute_env(node)
        if _ENV.fullmatch(node.strip()):
            try:
                return yaml.safe_load(expanded) if expanded.strip() else ""
            except yaml.YAMLError:
                return expanded
        return expanded
    return node


def load_config(path: Path | None = None, text: str | None = None) -> CollectorConfig:
    """Read, substitute ${env:...}, and check a configuration file (or the defaults)."""
    if path is None and text is None:
        return CollectorConfig()
    import yaml  # the collector extra ships PyYAML

    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from exc
    try:
        data = _expand_env(yaml.safe_load(text) or {}, yaml)
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path or 'configuration'} is not valid YAML: {exc}") from exc
    config = CollectorConfig(_resolve(SCHEMA, data, ""), str(path or "text"), data)
    _check_pipelines(config)
    return config


def _check_pipelines(config: CollectorConfig) -> None:
    traces = config.get("service.pipelines.traces")
    forwarders = {k for k in config.raw["exporters"] if k != "clickhouse" and "/" in k}
    for kind, known in (("receivers", {"otlp"}), ("processors", {"batch", "memory_limiter"}),
                        ("exporters", {"clickhouse", *forwarders})):
        for name in traces[kind]:
            if name not in known:
                raise ConfigError(f"service.pipelines.traces.{kind}: {name!r} is not available "
                                  f"(this collector has: {', '.join(sorted(known))})")
    if "clickhouse" not in traces["exporters"]:
        raise ConfigError("service.pipelines.traces.exporters: list clickhouse (the store); spanledger stores every "
                          "span it accepts and forwards to the otlp/ and otlphttp/ exporters beside it")
    for name in traces["exporters"]:
        if name != "clickhouse" and not config.raw["exporters"][name]["endpoint"]:
            raise ConfigError(f"exporters.{name}.endpoint: set the destination (host:port for otlp/, a URL for otlphttp/)")
        if name != "clickhouse" and config.raw["exporters"][name]["compression"] not in ("gzip", "none", ""):
            raise ConfigError(f"exporters.{name}.compression: write gzip or none")
    for protocol in ("grpc", "http"):
        authenticator = config.get(f"receivers.otlp.protocols.{protocol}.auth.authenticator")
        if authenticator and authenticator != "bearertokenauth":
            raise ConfigError(f"receivers.otlp.protocols.{protocol}.auth.authenticator: only 'bearertokenauth' "
                              "is available")
    for ext in config.get("service.extensions"):
        if ext not in SCHEMA["extensions"]:
            raise ConfigError(f"service.extensions: {ext!r} is not available "
                              f"(this collector has: {', '.join(sorted(SCHEMA['extensions']))})")
    zone = config.get("extensions.spanledger_api.time_zone")
    import zoneinfo

    if zone != "UTC" and zone not in zoneinfo.available_timezones():
        raise ConfigError(f"extensions.spanledger_api.time_zone: {zone!r} is not an IANA time zone "
                          "(write e.g. UTC, Europe/Paris, America/New_York)")
    level = config.get("service.telemetry.logs.level")
    if level.lower() not in ("debug", "info", "warn", "warning", "error"):
        raise ConfigError(f"service.telemetry.logs.level: {level!r} is not a level (debug, info, warn, error)")
    tls = config.get("receivers.otlp.protocols.grpc.tls")
    if bool(tls["cert_file"]) != bool(tls["key_file"]):
        raise ConfigError("receivers.otlp.protocols.grpc.tls: give both cert_file and key_file, or neither")


def bearer_tokens(config: CollectorConfig) -> dict[str, str]:
    """token -> tenant ('' for a token without a tenant), from the bearertokenauth extension."""
    # One set of tokens for every listener: naming the authenticator on either protocol turns it on for all.
    if "bearertokenauth" not in (config.get("receivers.otlp.protocols.grpc.auth.authenticator"),
                                 config.get("receivers.otlp.protocols.http.auth.authenticator")):
        return {}
    ext = config.get("extensions.bearertokenauth")
    tokens: dict[str, str] = {str(t): "" for t in ext["tokens"]}
    if ext["filename"]:
        try:
            lines = Path(ext["filename"]).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"extensions.bearertokenauth.filename: cannot read {ext['filename']}: {exc.strerror}") from exc
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                token, _, tenant = line.partition(" ")
                tokens[token] = tenant.strip()
    for tenant, token in ext["tenants"].items():
        tokens[str(token)] = tenant
    if not tokens:
        raise ConfigError("receivers.otlp.protocols.grpc.auth uses bearertokenauth but no token is configured "
                          "(set extensions.bearertokenauth.tokens, .tenants or .filename)")
    if any(len(t) < 16 for t in tokens):
        raise ConfigError("extensions.bearertokenauth: every token must be at least 16 characters long")
    return tokens
