"""Serve a FastAPI app made of our routers on a real uvicorn server (port 0), the way collector/serve/app.py will."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from spanledger.collector.auth import TokenAuth
from spanledger.collector.config import bearer_tokens
from spanledger.collector.serve.uvicorn_thread import UvicornThread


@contextlib.contextmanager
def serve_routers(collector, *routers):
    """Yield the base URL of an app with ``routers``, app.state.collector and app.state.auth set (deps.py)."""
    app = FastAPI()
    app.state.collector = collector
    app.state.auth = TokenAuth(bearer_tokens(collector.config))
    for router in routers:
        app.include_router(router)
    server = UvicornThread(app, "127.0.0.1:0", name="test-api")
    server.start()
    try:
        yield server.url
    finally:
        server.stop()
