"""The collector's configuration, in the OpenTelemetry Collector's own format.

An ``otel-config.yaml`` has receivers / processors / exporters / extensions /
service.pipelines, with ``${env:VAR}`` (and ``${env:VAR:-default}``)
substitution.  Keys of the ``clickhouse`` exporter follow the Collector
ClickHouse exporter where they mean the same thing; spanledger's own keys sit
beside them.  Every key is declared once, with its kind, default and
documentation, in ``schema.py`` (pydantic models); a key the file leaves out
takes its ``SPANLEDGER_*`` environment variable, else its default.  An unknown
key or a bad value stops start-up with a ``ConfigError`` naming the key.

The rest of the collector reads configuration only through ``CollectorConfig``
(``raw`` is a plain nested dict of resolved values, durations in seconds).
"""

from __future__ import annotations

from .errors import ConfigError
from .loading import CollectorConfig, load_config
from .tokens import bearer_tokens
from .values import duration_s, env_var, substitute_env

__all__ = ["CollectorConfig", "ConfigError", "bearer_tokens", "duration_s", "env_var", "load_config",
           "substitute_env"]
