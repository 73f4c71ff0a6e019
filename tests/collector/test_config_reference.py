"""docs/configuration.md is the schema's own output; every key says what it does; the SDK stays light."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from spanledger.collector.config import env_var
from spanledger.collector.config.reference import _leaves, reference_markdown
from spanledger.collector.config.schema import Configuration, TEMPLATES

REPO = Path(__file__).resolve().parents[2]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "spanledger.collector.cli", *args], capture_output=True, text=True,
                          timeout=60, env=env)


def test_the_committed_reference_is_what_the_schema_says():
    committed = (REPO / "docs" / "configuration.md").read_text(encoding="utf-8")
    assert committed == reference_markdown(), ("docs/configuration.md is out of date: run "
                                               "`python -m spanledger.collector.cli config --schema > docs/configuration.md`")
    result = _cli("config", "--schema")
    assert result.returncode == 0 and result.stdout == committed


def test_every_key_has_a_description_and_a_row():
    leaves = [leaf for name, info in Configuration.model_fields.items() for leaf in _leaves(info.annotation, name)]
    leaves += [leaf for prefix, model in TEMPLATES.items() for leaf in _leaves(model, f"exporters.{prefix}/NAME")]
    undocumented = [path for path, info, _ in leaves if not (info.description or "").strip()]
    assert not undocumented, f"keys without a docstring in collector/config/schema.py: {undocumented}"
    reference = reference_markdown()
    for path, _, _ in leaves:
        assert f"| `{path}` |" in reference, path
    assert "`SPANLEDGER_PROCESSORS_MEMORY_LIMITER_LIMIT_MIB`" in reference
    assert env_var("processors.memory_limiter.limit_mib") == "SPANLEDGER_PROCESSORS_MEMORY_LIMITER_LIMIT_MIB"


def test_print_shows_environment_values_with_secrets_masked():
    env = {**os.environ, env_var("exporters.clickhouse.password"): "env-secret-password-value",
           env_var("exporters.clickhouse.wal.max_size_mib"): "333"}
    result = _cli("config", "--print", "--format", "json", env=env)
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["exporters"]["clickhouse"]["wal"]["max_size_mib"] == 333
    assert shown["exporters"]["clickhouse"]["password"] == "***" and "env-secret-password-value" not in result.stdout
    bad = _cli("config", "--print", env={**os.environ, env_var("exporters.clickhouse.wal.fsync"): "maybe"})
    assert bad.returncode == 2 and "SPANLEDGER_EXPORTERS_CLICKHOUSE_WAL_FSYNC" in bad.stderr
    assert "expected true or false, got 'maybe'" in bad.stderr and "Traceback" not in bad.stderr


def test_the_agent_sdk_imports_neither_pydantic_nor_the_collector_config():
    code = "import sys, spanledger; print(sorted(m for m in sys.modules if m.split('.')[0] == 'pydantic' or m.startswith('spanledger.collector')))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and result.stdout.strip() == "[]", result.stdout + result.stderr
