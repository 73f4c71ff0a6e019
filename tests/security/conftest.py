"""The attack and fuzz suites: real collectors, real listeners, hostile input.

Shares the collector test helpers (tests/collector/collector_support.py) and fixtures."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

from conftest_collector import collector, collector_factory, raw_client  # noqa: E402,F401


@pytest.fixture(scope="session")
def certificate(tmp_path_factory):
    """A self-signed certificate and key for localhost / 127.0.0.1 (one day), made once for every TLS test."""
    directory = tmp_path_factory.mktemp("tls")
    cert, key = directory / "server.crt", directory / "server.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=localhost",
                    "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key
