"""Run ``spanledger collector`` with a store whose inserts never return (a hung ClickHouse call).

Not a test: tests/collector/test_integrity.py starts it as a subprocess and sends it SIGTERM.
The store call that hangs is the one thing faked; the receiver, WAL, writers and shutdown are real."""

import sys
import threading

from spanledger.collector import cli
from spanledger.collector.store.backend import Store


def _hang(self, path, dedup_token):
    threading.Event().wait()  # like an INSERT the engine never answers


Store.load_segment = _hang

if __name__ == "__main__":
    sys.exit(cli.main(sys.argv[1:]))
