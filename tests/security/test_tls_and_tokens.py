"""TLS on both listeners, tokens never echoed, and answers lost after commit."""

from __future__ import annotations

import json
import ssl
import time
import urllib.request

import grpc
import pytest
from collector_support import EXPORT, RawClient, make_span, new_request, rows, wait_stored

from spanledger.collector.ingest.sink import WalSink

TOKEN = "operator-token-0123456789"


def test_tls_and_tokens_on_grpc_and_http(collector_factory, certificate):
    cert, key = certificate
    collector = collector_factory(f"""
processors: {{batch: {{timeout: 100ms}}}}
receivers: {{otlp: {{protocols: {{grpc: {{tls: {{cert_file: {cert}, key_file: {key}}}, auth: {{authenticator: bearertokenauth}}}}}}}}}}
extensions:
  bearertokenauth: {{tokens: ["{TOKEN}"]}}
  spanledger_api: {{tls: {{cert_file: {cert}, key_file: {key}}}}}
""")
    request, scope = new_request()
    make_span(scope, "over-tls")
    credentials = grpc.ssl_channel_credentials(root_certificates=cert.read_bytes())
    channel = grpc.secure_channel(collector.server.address, credentials)
    export = channel.unary_unary(EXPORT)
    export(request.SerializeToString(), metadata=(("authorization", f"Bearer {TOKEN}"),), timeout=10)
    with pytest.raises(grpc.RpcError) as err:  # plaintext to a TLS port fails
        RawClient(collector.server.address, metadata=(("authorization", f"Bearer {TOKEN}"),)).export(b"", timeout=3)
    assert err.value.code() == grpc.StatusCode.UNAVAILABLE
    wait_stored(collector, 1)

    assert collector.api.url.startswith("https://")
    context = ssl.create_default_context(cafile=str(cert))
    query = urllib.request.Request(f"{collector.api.url}/v1/sql", data=json.dumps({"query": "SELECT SpanName FROM spanledger.otel_traces"}).encode(),
                                   headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(query, context=context, timeout=10) as response:
        assert json.loads(response.read())["rows"] == [["over-tls"]]
    stats = urllib.request.Request(f"{collector.api.url}/v1/stats", headers={"Authorization": f"Bearer {TOKEN}"})
    with urllib.request.urlopen(stats, context=context, timeout=10) as response:
        assert TOKEN not in response.read().decode()


def test_an_answer_lost_after_commit_is_not_stored_twice_on_retry(collector, raw_client, monkeypatch):
    request, scope = new_request()
    for i in range(200):
        make_span(scope, f"lost-ack-{i}", attributes={"blob": "x" * 500})
    payload = request.SerializeToString()
    durable = WalSink.accept

    def accept_then_stall(self, *args):
        durable(self, *args)
        time.sleep(0.3)  # committed; the answer leaves after the client's deadline, whatever the machine's speed

    monkeypatch.setattr(WalSink, "accept", accept_then_stall)
    with pytest.raises(grpc.RpcError) as err:
        raw_client.export(payload, timeout=0.1)  # the client gives up before the answer comes
    assert err.value.code() == grpc.StatusCode.DEADLINE_EXCEEDED
    monkeypatch.undo()
    for _ in range(3):
        raw_client.export(payload)  # ...and retries, as the SDK exporter does
    wait_stored(collector, 200)
    assert rows(collector, "SELECT count() AS n, uniqExact(TraceId, SpanId) AS u FROM spanledger.otel_traces")[0] == {"n": 200, "u": 200}
