"""Collector fixtures (a real collector on port 0, a raw gRPC client), shared by every test folder that needs them."""

from __future__ import annotations

from pathlib import Path

import pytest
from collector_support import FAST_BATCH, RawClient, start_collector

from spanledger.collector.app import Collector


@pytest.fixture
def collector_factory(tmp_path):
    started: list[Collector] = []

    def make(config_text: str = FAST_BATCH, data_dir: Path | None = None, *, http: bool = False) -> Collector:
        collector = start_collector(data_dir or tmp_path / "data", config_text, http=http)
        started.append(collector)
        return collector

    yield make
    for collector in started:
        collector.stop(timeout_s=10)


@pytest.fixture
def collector(collector_factory) -> Collector:
    return collector_factory()


@pytest.fixture
def raw_client(collector):
    client = RawClient(collector.server.address)
    yield client
    client.close()
