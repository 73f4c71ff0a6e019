"""A local webhook receiver (real HTTP server on port 0) that verifies every signature it gets."""

from __future__ import annotations

import json
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serve"))

from spanledger.collector.alerts.webhook import verify  # noqa: E402

SECRET = "webhook-secret-0123456789"


class WebhookReceiver:
    """Answers ``fail_first`` requests with 500, then 200; keeps what it got and whether it verified."""

    def __init__(self, secret: str = SECRET, fail_first: int = 0, always_fail: bool = False) -> None:
        self.secret = secret
        self.fail_first = fail_first
        self.always_fail = always_fail
        self.attempts: list[dict] = []
        self.delivered: list[dict] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):
                pass

            def do_POST(self):  # noqa: N802
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                ok = verify(receiver.secret, self.headers, body)
                receiver.attempts.append({"verified": ok, "headers": dict(self.headers)})
                failing = receiver.always_fail or len(receiver.attempts) <= receiver.fail_first
                if ok and not failing:
                    receiver.delivered.append(json.loads(body))
                self.send_response(500 if failing else (200 if ok else 401))
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hook"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
