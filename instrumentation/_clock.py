"""The one clock spanledger reads, so the test fixture can make time deterministic."""

from __future__ import annotations

import time

time_ns = time.time_ns
