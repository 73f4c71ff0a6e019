"""Helpers for OTLP/HTTP and forwarding tests: collectors with the HTTP receiver on port 0."""

from __future__ import annotations

from pathlib import Path

from collector_support import FAST_BATCH, start_collector

from spanledger.collector.app import Collector


def start_http_collector(data_dir: Path, config_text: str = FAST_BATCH, grpc_endpoint: str = "127.0.0.1:0") -> Collector:
    return start_collector(data_dir, config_text, http=True, grpc_endpoint=grpc_endpoint)


def traces_url(collector: Collector) -> str:
    return collector.http_server.url + "/v1/traces"


OPERATOR_TOKEN = "operator-token-0123456789"
TENANT_TOKENS = {"acme": "acme-token-0123456789ab", "globex": "globex-token-0123456789a"}


def auth_config(tenants: tuple[str, ...] = ("acme",), http: str = "") -> str:
    """Configuration lines turning bearer-token auth on: OPERATOR_TOKEN plus the named tenants' tokens.
    ``http`` (YAML flow mapping body, e.g. ``max_request_body_size: 100``) also configures the HTTP receiver."""
    tenant_map = ", ".join(f'{name}: "{TENANT_TOKENS[name]}"' for name in tenants)
    http_line = f"      http: {{{http}}}\n" if http else ""
    return ("receivers:\n  otlp:\n    protocols:\n      grpc: {auth: {authenticator: bearertokenauth}}\n" + http_line +
            f'extensions:\n  bearertokenauth:\n    tokens: ["{OPERATOR_TOKEN}"]\n    tenants: {{{tenant_map}}}\n')
