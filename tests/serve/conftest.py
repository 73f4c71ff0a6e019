"""API tests: real collectors (uvicorn on port 0), spans sent by the real instrumentation in a child process."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from conftest_collector import collector, collector_factory, raw_client  # noqa: E402,F401
