"""Serve a FastAPI app made of some of our routers on the product's uvicorn thread (port 0).

Tests that need only a few routers use this instead of the whole API (collector/serve/app.py): the
app carries what collector/serve/deps.py reads (app.state.collector, app.state.auth) and the product's
JSON error handlers, so errors look as they do in production ({"error": ...})."""

from __future__ import annotations

import contextlib

from fastapi import FastAPI

from spanledger.collector.auth import TokenAuth
from spanledger.collector.config import bearer_tokens
from spanledger.collector.serve.errors import install_error_handlers
from spanledger.collector.serve.uvicorn_thread import UvicornThread


def router_app(collector, *routers) -> FastAPI:
    """An app with ``routers``, the collector's tokens and the product's error handlers."""
    app = FastAPI()
    app.state.collector = collector
    app.state.auth = TokenAuth(bearer_tokens(collector.config))
    for router in routers:
        app.include_router(router)
    install_error_handlers(app)
    return app


@contextlib.contextmanager
def serve_routers(collector, *routers):
    """Yield the base URL of ``router_app(collector, *routers)`` served on 127.0.0.1:0."""
    server = UvicornThread(router_app(collector, *routers), "127.0.0.1:0", name="test-api").start()
    try:
        yield server.url
    finally:
        server.stop()
