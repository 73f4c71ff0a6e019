"""The HTTP listener under hostile transports: slow heads, lying or missing lengths, chunked floods, gzip bombs."""

from __future__ import annotations

import gzip
import json
import socket
import time
import zlib

import pytest

LIMITS = """
processors: {batch: {timeout: 100ms}}
extensions:
  spanledger_api: {max_request_body_mib: 1, header_timeout: 1s, body_timeout: 2s}
"""
MIB = 1 << 20


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    from collector_support import start_collector

    collector = start_collector(tmp_path_factory.mktemp("transport") / "data", LIMITS)
    yield collector
    collector.stop(timeout_s=10)


def _connect(collector) -> socket.socket:
    host, port = collector.api.url.rsplit("//", 1)[1].rsplit(":", 1)
    return socket.create_connection((host, int(port)), timeout=10)


def _exchange(collector, raw: bytes, wait_s: float = 10) -> tuple[int, bytes]:
    """Send ``raw`` as is; return the status and body of the answer (0 if the server closed without one)."""
    with _connect(collector) as sock:
        try:
            sock.sendall(raw)
        except (BrokenPipeError, ConnectionResetError):
            pass
        sock.settimeout(wait_s)
        data = b""
        try:
            while b"\r\n\r\n" not in data or len(data.split(b"\r\n\r\n", 1)[1]) < _length(data):
                chunk = sock.recv(65536)
                if not chunk:
                    break
                data += chunk
        except ConnectionResetError:
            pass
    if not data:
        return 0, b""
    return int(data.split(b" ", 2)[1]), data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""


def _length(data: bytes) -> int:
    for line in data.split(b"\r\n\r\n", 1)[0].split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return int(line.split(b":", 1)[1])
    return 0


def _post(path: str, body: bytes, headers: str = "") -> bytes:
    return (f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Length: {len(body)}\r\n{headers}\r\n").encode() + body


def test_a_request_head_not_finished_in_time_is_dropped(api):
    with _connect(api) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Slow: ")
        started = time.monotonic()
        for _ in range(6):  # keep dripping bytes: each one used to reset uvicorn's only timer
            time.sleep(0.3)
            try:
                sock.sendall(b"a")
            except (BrokenPipeError, ConnectionResetError):
                break
        sock.settimeout(10)
        try:
            assert sock.recv(1024) == b""  # closed, nothing answered
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 5
    status, body = _exchange(api, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status == 200  # the listener itself is fine


def test_a_connection_that_sends_nothing_is_dropped(api):
    with _connect(api) as sock:
        started = time.monotonic()
        sock.settimeout(10)
        try:
            assert sock.recv(1024) == b""
        except ConnectionResetError:
            pass
        assert time.monotonic() - started < 5


def test_a_body_sent_too_slowly_is_refused(api):
    with _connect(api) as sock:
        sock.sendall(b"POST /v1/sql HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{\"query\"")
        sock.settimeout(10)
        answer = b""
        while b"body_timeout" not in answer:
            chunk = sock.recv(65536)
            if not chunk:
                break
            answer += chunk
    assert b" 408 " in answer.split(b"\r\n", 1)[0] and b"body_timeout" in answer


@pytest.mark.parametrize("length", ["-1", "abc", "1e9", "18446744073709551617x", " "])
def test_malformed_content_length_is_refused(api, length):
    status, _ = _exchange(api, f"POST /v1/sql HTTP/1.1\r\nHost: x\r\nContent-Length: {length}\r\n\r\n".encode()
                          + b'{"query": "SELECT 1"}')
    assert status == 400


def test_a_declared_length_over_the_limit_is_refused_before_reading(api):
    status, body = _exchange(api, f"POST /v1/activities/batch HTTP/1.1\r\nHost: x\r\nContent-Length: {50 * MIB}\r\n\r\n".encode())
    assert status == 413 and b"max_request_body_mib" in body


def test_a_body_longer_than_its_content_length_is_not_read_past_it(api):
    query = b'{"query": "SELECT 1 AS one"}'
    status, body = _exchange(api, _post("/v1/sql", query) + b"X" * 1024)  # the rest is a (bad) next request
    assert status == 200 and json.loads(body)["rows"] == [[1]]


def test_a_chunked_body_over_the_limit_is_refused(api):
    chunk = b"x" * 65536
    head = b"POST /v1/activities/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(chunk), chunk) for _ in range(20)) + b"0\r\n\r\n"
    status, answer = _exchange(api, head + body)
    assert status == 413 and b"max_request_body_mib" in answer


def test_a_chunked_body_under_the_limit_is_read(api):
    payload = json.dumps([{"type": "tool_call", "name": "chunked"}]).encode()
    head = b"POST /v1/activities/batch HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
    body = b"".join(b"%x\r\n%s\r\n" % (len(p), p) for p in (payload[:5], payload[5:])) + b"0\r\n\r\n"
    status, answer = _exchange(api, head + body)
    assert status == 201 and json.loads(answer)["accepted"] == 1


def test_a_gzip_bomb_is_refused_once_it_inflates_past_the_limit(api):
    bomb = gzip.compress(b"[" + b" " * (200 * MIB) + b"]", compresslevel=9)
    assert len(bomb) < MIB // 2
    status, answer = _exchange(api, _post("/v1/activities/batch", bomb, "Content-Encoding: gzip\r\n"))
    assert status == 413 and b"after decompression" in answer


def test_gzip_request_bodies_are_accepted(api):
    payload = gzip.compress(json.dumps({"query": "SELECT 2 AS two"}).encode())
    status, answer = _exchange(api, _post("/v1/sql", payload, "Content-Encoding: gzip\r\n"))
    assert status == 200 and json.loads(answer)["rows"] == [[2]]


@pytest.mark.parametrize("body, encoding, expected", [
    (b"definitely not gzip", "gzip", 400),
    (gzip.compress(b'{"query": "SELECT 1"}')[:-6], "gzip", 400),  # truncated
    (zlib.compress(b"{}"), "deflate", 415),
    (b"{}", "br", 415),
])
def test_bad_or_unknown_encodings_are_refused(api, body, encoding, expected):
    status, answer = _exchange(api, _post("/v1/sql", body, f"Content-Encoding: {encoding}\r\n"))
    assert status == expected and b"error" in answer


def test_an_oversized_request_head_is_refused(api):
    status, _ = _exchange(api, b"GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * (64 << 10) + b"\r\n\r\n")
    assert status == 431
    status, _ = _exchange(api, b"GET /healthz?where=" + b"a" * (32 << 10) + b" HTTP/1.1\r\nHost: x\r\n\r\n")
    assert status in (400, 431)


def test_responses_are_gzipped_when_asked(api):
    status, body = _exchange(api, b"GET /openapi.json HTTP/1.1\r\nHost: x\r\nAccept-Encoding: gzip\r\n\r\n")
    assert status == 200 and json.loads(gzip.decompress(body))["openapi"].startswith("3.")
