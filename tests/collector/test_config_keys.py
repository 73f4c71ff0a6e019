"""Every accepted key does what it says: precedence, environment variables, and the keys wired up or refused."""

from __future__ import annotations

import json
import socket
import threading
import time
import urllib.error
import urllib.request

import pytest
from collector_support import FAST_BATCH

from spanledger.collector.config import ConfigError, env_var, load_config

LIMIT = "processors.memory_limiter.limit_mib"


def test_the_file_wins_over_the_environment_which_wins_over_the_default(monkeypatch):
    monkeypatch.delenv(env_var(LIMIT), raising=False)
    monkeypatch.delenv(env_var("exporters.clickhouse.wal.fsync"), raising=False)
    assert load_config(text="{}").get(LIMIT) == 1024
    monkeypatch.setenv(env_var(LIMIT), "300")
    monkeypatch.setenv(env_var("exporters.clickhouse.wal.fsync"), "false")
    from_env = load_config(text="{}")
    assert from_env.get(LIMIT) == 300 and from_env.get("exporters.clickhouse.wal.fsync") is False
    assert load_config(text="processors: {memory_limiter: {limit_mib: 200}}").get(LIMIT) == 200
    # a key written empty in the file is not given: the environment fills it
    assert load_config(text="processors: {memory_limiter: {limit_mib: }}").get(LIMIT) == 300


def test_an_environment_variable_of_a_text_key_is_taken_as_written(monkeypatch):
    monkeypatch.setenv(env_var("exporters.clickhouse.database"), "0123")
    monkeypatch.setenv(env_var("processors.batch.timeout"), "250ms")
    config = load_config(text="{}")
    assert config.get("exporters.clickhouse.database") == "0123" and config.get("processors.batch.timeout") == 0.25


def test_a_bad_environment_value_names_the_variable(monkeypatch):
    monkeypatch.setenv(env_var(LIMIT), "lots")
    with pytest.raises(ConfigError) as err:
        load_config(text="{}")
    assert str(err.value) == (f"{LIMIT} (from ${env_var(LIMIT)}): expected a whole number >= 0, got 'lots'")


@pytest.mark.parametrize("text, message", [
    ("exporters: {clickhouse: {wal: {fsync: maybe}}}", "exporters.clickhouse.wal.fsync: expected true or false, got 'maybe'"),
    ("processors: {batch: {timeout: -1}}", "processors.batch.timeout: expected a duration >= 0"),
    ("extensions: {bearertokenauth: {tenants: {acme: [a, b]}}}", "extensions.bearertokenauth.tenants: expected a mapping"),
    ("service: {pipelines: {traces: {exporters: [{a: 1}]}}}", "service.pipelines.traces.exporters: expected a list of names"),
    ("receivers: {otlp: {protocols: {grpc: {endpoint: [1]}}}}", "grpc.endpoint: expected text, got [1]"),
    ("extensions: {spanledger_budgets: {budgets: [1]}}", "extensions.spanledger_budgets.budgets: expected a list of mappings"),
])
def test_bad_values_name_the_key_and_what_is_expected(text, message):
    with pytest.raises(ConfigError) as err:
        load_config(text=text)
    assert message in str(err.value) and "pydantic" not in str(err.value)


def test_an_unknown_key_says_what_is_known_there():
    with pytest.raises(ConfigError) as err:
        load_config(text="processors: {batch: {send_batch_sise: 10}}")
    assert str(err.value) == ("processors.batch.send_batch_sise: unknown key "
                              "(known here: send_batch_max_size, send_batch_size, timeout)")
    with pytest.raises(ConfigError, match=r"exporters.otlp: unknown key \(known here: clickhouse, otlp/NAME"):
        load_config(text="exporters: {otlp: {endpoint: 'h:1'}}")
    with pytest.raises(ConfigError, match=r"exporters.otlp/x.traces_endpoint: unknown key"):
        load_config(text="exporters: {otlp/x: {traces_endpoint: 'http://h/v1/traces'}}")


@pytest.mark.parametrize("text, message", [
    ("processors: {batch: {send_batch_max_size: 1000}}",
     "processors.batch.send_batch_max_size: not supported"),
    ("service: {pipelines: {traces: {processors: [batch]}}}",
     "service.pipelines.traces.processors: list both memory_limiter and batch"),
    ("service: {pipelines: {traces: {receivers: []}}}", "service.pipelines.traces.receivers: list otlp"),
    ("service: {extensions: [health_check]}\nextensions: {health_check: {endpoint: ''}}",
     "extensions.health_check.endpoint: give host:port"),
    ("service: {extensions: [health_check]}\nextensions: {health_check: {path: health}}",
     "extensions.health_check.path: 'health' must start with /"),
])
def test_values_this_collector_cannot_honour_are_refused(text, message):
    with pytest.raises(ConfigError) as err:
        load_config(text=text)
    assert message in str(err.value)
    assert load_config(text="processors: {batch: {send_batch_max_size: 0}}").get("processors.batch.send_batch_max_size") == 0


def _health(url: str, path: str = "/") -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(url + path, timeout=5) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as err:
        return err.code, json.loads(err.read())


HEALTH = FAST_BATCH + "service: {extensions: [health_check]}\nextensions: {health_check: {endpoint: '127.0.0.1:0'}}\n"


def test_health_check_answers_200_while_the_collector_runs_and_refuses_after_stop(collector_factory):
    collector = collector_factory(HEALTH)
    url = collector.health_check.url
    status, body = _health(url)
    assert status == 200 and body["status"] == "Server available" and "upSince" in body
    assert _health(url, "/elsewhere")[0] == 404
    collector.stop(timeout_s=10)
    with pytest.raises(OSError):
        urllib.request.urlopen(url + "/", timeout=2)


def test_health_check_is_off_unless_service_extensions_lists_it(collector_factory):
    collector = collector_factory(FAST_BATCH + "extensions: {health_check: {endpoint: '127.0.0.1:0'}}\n")
    assert collector.health_check is None


def _refused_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_health_check_answers_503_while_the_store_is_unavailable(collector_factory):
    collector = collector_factory(HEALTH + f"exporters: {{clickhouse: {{endpoint: 'http://127.0.0.1:{_refused_port()}', "
                                           "timeout: 1s, retry_on_failure: {initial_interval: 10s}}}\n")
    assert collector.store() is None
    assert _health(collector.health_check.url) == (503, {"status": "Server not available"})


class SilentServer:
    """Accepts connections and never answers: a ClickHouse server that hangs."""

    def __init__(self) -> None:
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                self.held.append(self.sock.accept()[0])
            except OSError:
                return

    def close(self) -> None:
        self.sock.close()
        for conn in self.held:
            conn.close()


def test_clickhouse_timeout_bounds_each_call_to_a_hung_server(collector_factory):
    server = SilentServer()
    try:
        began = time.monotonic()
        collector = collector_factory(FAST_BATCH + f"exporters: {{clickhouse: {{endpoint: 'http://127.0.0.1:{server.port}', "
                                                   "timeout: 1s, retry_on_failure: {initial_interval: 10s}}}\n")
        took = time.monotonic() - began
        assert collector.store() is None and collector.store_config.timeout_s == 1
        assert 0.9 < took < 10, f"start waited {took:.1f}s on a hung server (timeout: 1s; the default is 30s)"
        assert "read timed out. (read timeout=1)" in collector.store_error.lower()
    finally:
        server.close()
