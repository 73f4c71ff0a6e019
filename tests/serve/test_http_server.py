"""The HTTP stack itself: exposure at start, JSON errors everywhere, CORS, local docs, a graceful stop."""

from __future__ import annotations

import json
import logging
import re
import threading
import time
import urllib.request

import pytest
from api_support import OPERATOR, TENANTS_CONFIG, call, get
from collector_support import FAST_BATCH

from spanledger.collector.app import Collector, Overrides
from spanledger.collector.auth import TokenAuth
from spanledger.collector.config import ConfigError, load_config
from spanledger.collector.serve.app import ApiServer, ApiSettings, create_app


def _collector(tmp_path, config=FAST_BATCH, **overrides) -> Collector:
    given = {"grpc_endpoint": "127.0.0.1:0", "api_endpoint": "127.0.0.1:0", "data_dir": str(tmp_path / "data"),
             **overrides}
    return Collector(load_config(text=config), Overrides(**given))


def test_a_remote_listener_without_tokens_is_refused_unless_allowed(tmp_path, caplog):
    remote = _collector(tmp_path, api_endpoint="0.0.0.0:0")
    with pytest.raises(ConfigError) as err:
        remote.start()
    assert "--allow-insecure-remote" in str(err.value) and "0.0.0.0:0" in str(err.value)
    with pytest.raises(ConfigError):
        _collector(tmp_path, grpc_endpoint="0.0.0.0:0").start()
    allowed = _collector(tmp_path, api_endpoint="0.0.0.0:0", allow_insecure_remote=True)
    with caplog.at_level(logging.WARNING):
        allowed.start()
    try:
        assert "AUTHENTICATION IS OFF" in caplog.text and "WITHOUT AUTHENTICATION" in caplog.text
        assert get(allowed.api.url.replace("0.0.0.0", "127.0.0.1"), "/healthz")[0] == 200
    finally:
        allowed.stop(5)
    secured = _collector(tmp_path, TENANTS_CONFIG, api_endpoint="0.0.0.0:0", grpc_endpoint="0.0.0.0:0")
    secured.start()  # tokens configured: remote is fine
    secured.stop(5)


def test_the_cli_says_loudly_that_auth_is_off(tmp_path):
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-m", "spanledger.collector.cli", "--log-level", "error", "collector",
                             "--data-dir", str(tmp_path / "d"), "--grpc-endpoint", "127.0.0.1:0",
                             "--api-endpoint", "127.0.0.1:0"], stderr=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stderr.readline()
        assert "AUTHENTICATION IS OFF" in line
    finally:
        proc.terminate()
        proc.wait(30)
    refused = subprocess.run([sys.executable, "-m", "spanledger.collector.cli", "collector", "--data-dir",
                              str(tmp_path / "e"), "--api-endpoint", "0.0.0.0:0"], capture_output=True, text=True,
                             timeout=60)
    assert refused.returncode == 2 and "--allow-insecure-remote" in refused.stderr


def _served(app) -> ApiServer:
    server = ApiServer(app, "127.0.0.1:0", ApiSettings())
    server.start()
    return server


class _NoStore:
    data_dir = None

    def store(self):
        return None

    def stats_snapshot(self):
        return {}


def test_every_error_is_json_with_what_to_do_and_500s_hide_internals():
    app = create_app(_NoStore(), TokenAuth())

    def boom():
        raise RuntimeError("secret internal detail /etc/passwd")
    app.add_api_route("/boom", boom)
    server = _served(app)
    try:
        api = server.url
        cases = [("GET", "/nowhere", 404, "no such endpoint /nowhere"), ("DELETE", "/healthz", 405, "use GET"),
                 ("GET", "/v1/activities?limit=x", 422, "limit"), ("GET", "/boom", 500, "internal error"),
                 ("GET", "/v1/activities", 503, "not reachable"), ("POST", "/v1/sql", 400, '"query"')]
        for method, path, status, words in cases:
            got, body = call(api, method, path)
            assert got == status and words in body["error"], (method, path, got, body)
        assert "secret" not in json.dumps(call(api, "GET", "/boom")[1])
    finally:
        server.stop()


def test_cors_is_off_by_default_and_on_for_configured_origins(tmp_path):
    def preflight(api, origin):
        request = urllib.request.Request(f"{api}/v1/activities", method="OPTIONS", headers={
            "Origin": origin, "Access-Control-Request-Method": "GET"})
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                return response.status, response.headers.get("access-control-allow-origin")
        except urllib.error.HTTPError as err:
            return err.code, err.headers.get("access-control-allow-origin")

    closed = _served(create_app(_NoStore(), TokenAuth()))
    opened = _served(create_app(_NoStore(), TokenAuth(), ApiSettings(cors_origins=("https://console.example",))))
    try:
        assert preflight(closed.url, "https://console.example")[1] is None
        assert preflight(opened.url, "https://console.example") == (200, "https://console.example")
        assert preflight(opened.url, "https://evil.example")[1] is None
    finally:
        closed.stop()
        opened.stop()


def test_docs_are_served_from_the_package_not_a_cdn(collector):
    api = collector.api.url
    with urllib.request.urlopen(f"{api}/docs", timeout=10) as response:
        html = response.read().decode()
    assets = re.findall(r"""(?:src|href)=['"]([^'"]+)['"]""", html)
    assert assets and all(a.startswith("/docs/assets/") for a in assets), assets
    for asset in assets:
        with urllib.request.urlopen(api + asset, timeout=10) as response:
            assert response.status == 200 and len(response.read()) > 100
    status, doc = get(api, "/openapi.json")
    assert status == 200 and "/v1/activities" in doc["paths"] and "bearer" in json.dumps(doc).lower()
    assert get(api, "/docs/assets/..%2F..%2Fapp.py")[0] == 404


def test_stop_lets_a_request_in_flight_finish(tmp_path):
    app = create_app(_NoStore(), TokenAuth())

    def slow():
        time.sleep(1.0)
        return {"done": True}
    app.add_api_route("/slow", slow)
    server = _served(app)
    result = {}
    worker = threading.Thread(target=lambda: result.update(answer=get(server.url, "/slow")))
    worker.start()
    time.sleep(0.3)
    server.stop()
    worker.join(10)
    assert result["answer"] == (200, {"done": True})
    with pytest.raises(OSError):
        urllib.request.urlopen(f"{server.url}/healthz", timeout=2)


def test_stats_need_an_operator_and_never_show_tokens(collector_factory):
    collector = collector_factory(TENANTS_CONFIG)
    status, stats = get(collector.api.url, "/v1/stats", OPERATOR)
    assert status == 200 and "spans_accepted" in stats and OPERATOR not in json.dumps(stats)


def test_a_streaming_answer_outlives_the_body_timeout():
    """The body deadline bounds reading the body only: a live feed (SSE) keeps streaming after it."""
    import asyncio

    from fastapi.responses import StreamingResponse

    app = create_app(_NoStore(), TokenAuth(), ApiSettings(body_timeout_s=0.5))

    async def ticks():
        for i in range(4):
            yield f"data: {i}\n\n"
            await asyncio.sleep(0.5)
    app.add_api_route("/ticks", lambda: StreamingResponse(ticks(), media_type="text/event-stream"))
    server = ApiServer(app, "127.0.0.1:0", ApiSettings(body_timeout_s=0.5))
    server.start()
    try:
        with urllib.request.urlopen(f"{server.url}/ticks", timeout=10) as response:
            assert response.read().decode().count("data:") == 4
    finally:
        server.stop()


@pytest.mark.parametrize("keys", ['{"short": acme}', '{"long-enough-key-0123456789": ""}'])
def test_weak_ingest_keys_stop_start_up(tmp_path, keys):
    collector = _collector(tmp_path, FAST_BATCH + f"extensions:\n  spanledger_api:\n    ingest_keys: {keys}\n")
    with pytest.raises(ConfigError) as err:
        collector.start()
    collector.stop(5)
    assert "ingest_keys" in str(err.value)
