"""TLS on the OTLP/HTTP receiver, and the forwarding transports' TLS checks against it."""

from __future__ import annotations

import ssl

import httpx
import pytest
from collector_support import FAST_BATCH, make_span, new_request, rows, wait_stored
from otlp_http_support import start_http_collector, traces_url

from spanledger.collector.forward.transport import HttpTransport, SendFailed


def _transport_config(url: str, **tls) -> dict:
    return {"endpoint": url, "traces_endpoint": "", "headers": {}, "compression": "gzip", "timeout": 10.0,
            "tls": {"insecure": False, "ca_file": "", "cert_file": "", "key_file": "", "insecure_skip_verify": False,
                    **tls}}


def test_https_receiver_and_the_forwarders_certificate_checks(tmp_path, certificate):
    cert, key = certificate
    config = FAST_BATCH + f"receivers:\n  otlp:\n    protocols:\n      http:\n        tls: {{cert_file: {cert}, key_file: {key}}}\n"
    collector = start_http_collector(tmp_path / "data", config)
    try:
        assert collector.http_server.url.startswith("https://")
        request, scope = new_request("tls")
        make_span(scope, "over-https")
        body = request.SerializeToString()
        response = httpx.post(traces_url(collector), content=body, headers={"Content-Type": "application/x-protobuf"},
                              verify=ssl.create_default_context(cafile=str(cert)))
        assert response.status_code == 200
        with pytest.raises(httpx.ConnectError):  # an unknown certificate is refused by a verifying client
            httpx.post(traces_url(collector), content=body, headers={"Content-Type": "application/x-protobuf"})
        plain = collector.http_server.url.replace("https://", "http://")
        with pytest.raises(httpx.HTTPError):  # plaintext to the TLS port
            httpx.post(plain + "/v1/traces", content=body, headers={"Content-Type": "application/x-protobuf"})
        # the otlphttp forwarder verifies the destination like any client
        unverified = HttpTransport(_transport_config(collector.http_server.url))
        with pytest.raises(SendFailed) as failed:
            unverified.send(body)
        assert failed.value.retryable and "CERTIFICATE_VERIFY_FAILED" in str(failed.value)
        unverified.close()
        trusted = HttpTransport(_transport_config(collector.http_server.url, ca_file=str(cert)))
        assert trusted.send(body).rejected_spans == 0  # the same bytes again: recognised as a retry, not stored twice
        trusted.close()
        wait_stored(collector, 1)
        assert rows(collector, "SELECT SpanName FROM spanledger.otel_traces") == [{"SpanName": "over-https"}]
        assert collector.stats.duplicate_requests == 1
    finally:
        collector.stop(timeout_s=10)
