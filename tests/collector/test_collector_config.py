"""otel-config.yaml: the Collector's format, env substitution, errors that name the key."""

from __future__ import annotations

from pathlib import Path

import pytest

from spanledger.collector.config import ConfigError, bearer_tokens, load_config

REPO = Path(__file__).resolve().parents[2]


def test_repository_config_loads_with_the_documented_defaults(monkeypatch):
    for var in ("SPANLEDGER_GRPC_ENDPOINT", "SPANLEDGER_CLICKHOUSE_URL", "SPANLEDGER_DATA_DIR"):
        monkeypatch.delenv(var, raising=False)
    config = load_config(REPO / "otel-config.yaml")
    assert config.get("receivers.otlp.protocols.grpc.endpoint") == "localhost:4317"
    assert config.get("exporters.clickhouse.endpoint") == ""
    assert config.get("processors.batch.timeout") == 1.0
    assert config.get("exporters.clickhouse.wal.fsync") is True


def test_env_substitution_with_defaults(monkeypatch):
    monkeypatch.setenv("CH_DB", "telemetry")
    config = load_config(text="exporters:\n  clickhouse:\n    database: ${env:CH_DB}\n    ttl: ${env:NOPE_TTL:-72h}\n")
    assert config.get("exporters.clickhouse.database") == "telemetry"
    assert config.get("exporters.clickhouse.ttl") == 72 * 3600


@pytest.mark.parametrize("text, message", [
    ("exporters:\n  clickhouse:\n    databse: x\n", "exporters.clickhouse.databse: unknown key"),
    ("processors:\n  batch:\n    timeout: soon\n", "processors.batch.timeout: 'soon' is not a duration"),
    ("exporters:\n  clickhouse:\n    wal: {fsync: maybe}\n", "exporters.clickhouse.wal.fsync: expected true or false"),
    ("receivers:\n  otlp:\n    protocols:\n      grpc:\n        max_recv_msg_size_mib: -1\n", "max_recv_msg_size_mib: expected a whole number"),
    ("exporters:\n  clickhouse:\n    database: ${env:SURELY_UNSET_VAR}\n", "SURELY_UNSET_VAR is not set"),
    ("service:\n  pipelines:\n    traces:\n      exporters: [kafka]\n", "'kafka' is not available"),
    ("receivers: [1, 2]\n", "receivers: expected a mapping"),
    ("receivers:\n  otlp:\n    protocols:\n      grpc:\n        auth: {authenticator: bearertokenauth}\n", "no token is configured"),
])
def test_bad_configuration_names_the_key(text, message):
    with pytest.raises(ConfigError, match=None) as err:
        config = load_config(text=text)
        bearer_tokens(config)
    assert message in str(err.value)


def test_tokens_from_config_and_file(tmp_path):
    tokens_file = tmp_path / "tokens"
    tokens_file.write_text("# token tenant\nfile-token-0123456789 globex\n")
    config = load_config(text=f"""
receivers: {{otlp: {{protocols: {{grpc: {{auth: {{authenticator: bearertokenauth}}}}}}}}}}
extensions:
  bearertokenauth:
    tokens: ["plain-token-0123456789"]
    filename: {tokens_file}
    tenants: {{acme: "acme-token-0123456789"}}
""")
    assert bearer_tokens(config) == {"plain-token-0123456789": "", "file-token-0123456789": "globex",
                                     "acme-token-0123456789": "acme"}
