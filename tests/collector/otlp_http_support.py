"""Helpers for OTLP/HTTP and forwarding tests: collectors with the HTTP receiver on port 0."""

from __future__ import annotations

from pathlib import Path

from collector_support import FAST_BATCH

from spanledger.collector.app import Collector, Overrides
from spanledger.collector.config import load_config


def start_http_collector(data_dir: Path, config_text: str = FAST_BATCH, grpc_endpoint: str = "127.0.0.1:0") -> Collector:
    collector = Collector(load_config(text=config_text),
                          Overrides(grpc_endpoint=grpc_endpoint, api_endpoint="127.0.0.1:0",
                                    http_endpoint="127.0.0.1:0", data_dir=str(data_dir)))
    collector.start()
    return collector


def traces_url(collector: Collector) -> str:
    return collector.http_server.url + "/v1/traces"
