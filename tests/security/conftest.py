"""The attack and fuzz suites: real collectors, real listeners, hostile input.

Shares the collector test helpers (tests/collector/collector_support.py) and fixtures."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))

from conftest_collector import collector, collector_factory, raw_client  # noqa: E402,F401
