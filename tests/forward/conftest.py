"""Forwarding tests: real collectors forwarding to real collectors, all on port 0 (or a port reserved and freed)."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "collector"))
