"""extensions.health_check: an unauthenticated port, often open to the network for probes.

It must answer only up or down, refuse everything but GET/HEAD on its path, and
stay answering when clients send garbage, huge request lines or nothing at all.
"""

from __future__ import annotations

import http.client
import json
import socket
import time

from collector_support import FAST_BATCH

HEALTH = FAST_BATCH + "service: {extensions: [health_check]}\nextensions: {health_check: {endpoint: '127.0.0.1:0', path: /health}}\n"


def _request(address: tuple[str, int], method: str, path: str) -> tuple[int, dict, bytes]:
    conn = http.client.HTTPConnection(*address, timeout=5)
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


def _raw(address: tuple[str, int], data: bytes) -> bytes:
    with socket.create_connection(address, timeout=5) as s:
        s.sendall(data)
        answer = b""
        while chunk := s.recv(4096):
            answer += chunk
        return answer


def test_only_get_and_head_on_the_path_are_answered(collector_factory):
    collector = collector_factory(HEALTH)
    address = collector.health_check._server.server_address[:2]
    assert _request(address, "GET", "/health")[0] == 200
    status, headers, body = _request(address, "HEAD", "/health")
    assert status == 200 and body == b""
    assert _request(address, "GET", "/health?verbose=1")[0] == 200
    for method in ("POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
        status, headers, _ = _request(address, method, "/health")
        assert status == 405 and headers["Allow"] == "GET, HEAD", method
    for path in ("/", "/health/", "/../health", "/health/../../etc/passwd", "/HEALTH", "/health%00"):
        assert _request(address, "GET", path)[0] == 404, path
    assert _request(address, "TRACE", "/health")[0] == 501


def test_garbage_huge_and_silent_clients_do_not_stop_it(collector_factory):
    collector = collector_factory(HEALTH)
    address = collector.health_check._server.server_address[:2]
    garbage = _raw(address, b"\x16\x03\x01\x02\x00garbage\r\n\r\n")
    assert garbage.startswith(b"HTTP/1.0 400") and garbage.endswith(b'{"status": "400 Bad Request"}')
    assert _raw(address, b"GET /" + b"a" * 70_000 + b" HTTP/1.1\r\n\r\n").startswith(b"HTTP/1.0 414")
    silent = [socket.create_connection(address, timeout=5) for _ in range(20)]  # hold connections, send nothing
    try:
        began = time.monotonic()
        assert _request(address, "GET", "/health")[0] == 200
        assert time.monotonic() - began < 2
    finally:
        for s in silent:
            s.close()


def test_down_says_only_down(collector_factory):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    collector = collector_factory(HEALTH + f"exporters: {{clickhouse: {{endpoint: 'http://127.0.0.1:{port}', timeout: 1s, "
                                           "retry_on_failure: {initial_interval: 10s}}}\n")
    status, headers, body = _request(collector.health_check._server.server_address[:2], "GET", "/health")
    assert status == 503 and json.loads(body) == {"status": "Server not available"}
    assert str(port) not in body.decode() and collector.store_error  # the reason stays behind the API's auth
    assert headers["Server"].strip() == "spanledger"  # no Python version
