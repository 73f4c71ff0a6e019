"""The HTTP API: one FastAPI app assembled from per-resource routers, served by uvicorn in a thread.

``create_app(collector, auth)`` is all a test or the collector needs: it
includes every router named in ``ROUTER_MODULES`` (modules under
collector/serve/, each exporting ``router``), sets ``app.state.collector``
and ``app.state.auth`` for collector/serve/deps.py, and installs what every
route shares: JSON errors, the body limit, gzip, CORS and local API docs.

``ApiServer`` runs that app on the collector's API endpoint beside the gRPC
receiver: uvicorn in a thread, on a socket bound before start (so port 0
works and ``url`` is known at once), TLS from the configuration, a deadline
on every request head, and a graceful stop.
"""

from __future__ import annotations

import importlib
import ipaddress
import logging
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException
from fastapi.middleware.cors import CORSMiddleware
from fastapi.middleware.gzip import GZipMiddleware
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import FileResponse, JSONResponse

from ..auth import TokenAuth
from .deps import require_caller
from .errors import install_error_handlers
from .limits import RequestLimits, protocol_with_deadline
from .uvicorn_thread import UvicornThread, split_endpoint

log = logging.getLogger(__name__)

# Resource routers, by module name under collector/serve/; each module exports ``router``.
ROUTER_MODULES: list[str] = ["core", "activities", "activity_writes", "reports", "feed", "budgets", "metrics",
                             "export", "console"]

SWAGGER_DIR = Path(__file__).parent / "static" / "swagger-ui"
SWAGGER_ASSETS = {"swagger-ui-bundle.js": "text/javascript", "swagger-ui.css": "text/css",
                  "favicon-32x32.png": "image/png", "oauth2-redirect.html": "text/html",
                  "oauth2-redirect.js": "text/javascript", "LICENSE": "text/plain", "NOTICE": "text/plain"}
MAX_HEAD_BYTES = 16 * 1024  # request line + headers; more is refused (431, or 400 by h11 when it arrives in pieces)


@dataclass(frozen=True)
class ApiSettings:
    """The HTTP side's limits and exposure (extensions.spanledger_api in otel-config.yaml)."""

    max_body_bytes: int = 4 << 20
    body_timeout_s: float = 30.0
    header_timeout_s: float = 10.0
    keep_alive_timeout_s: float = 5.0
    cors_origins: tuple[str, ...] = ()
    ingest_keys: dict[str, str] = field(default_factory=dict)  # key -> tenant, for browser trackers
    ingest_requests_per_minute: int = 600
    ingest_max_items: int = 100
    ingest_max_body_bytes: int = 64 << 10

    @classmethod
    def from_config(cls, api_cfg: dict) -> ApiSettings:
        from ..config import ConfigError

        limits = api_cfg["ingest_key_limits"]
        for key, tenant in api_cfg["ingest_keys"].items():
            if len(str(key)) < 16 or not str(tenant):
                raise ConfigError("extensions.spanledger_api.ingest_keys: each key must be at least 16 characters "
                                  "(a short key is guessable) and name a tenant: {key: tenant}")
        return cls(max_body_bytes=api_cfg["max_request_body_mib"] << 20, body_timeout_s=api_cfg["body_timeout"],
                   header_timeout_s=api_cfg["header_timeout"], keep_alive_timeout_s=api_cfg["keep_alive_timeout"],
                   cors_origins=tuple(str(o) for o in api_cfg["cors"]["allowed_origins"]),
                   ingest_keys={str(k): str(v) for k, v in api_cfg["ingest_keys"].items()},
                   ingest_requests_per_minute=limits["requests_per_minute"],
                   ingest_max_items=limits["max_items"], ingest_max_body_bytes=limits["max_body_kib"] << 10)


def create_app(collector, auth: TokenAuth, settings: ApiSettings | None = None) -> FastAPI:
    """The API app for ``collector`` (anything with ``store()``, ``stats_snapshot()``...) behind ``auth``."""
    settings = settings or ApiSettings()
    app = FastAPI(title="spanledger", version="1", docs_url=None, redoc_url=None, openapi_url=None,
                  description="Activities, traces, costs and read-only SQL over the spans spanledger stores. "
                              "Send `Authorization: Bearer <token>` when the collector has tokens configured.")
    app.state.collector = collector
    app.state.auth = auth
    app.state.settings = settings
    install_error_handlers(app)
    for name in ROUTER_MODULES:
        module = importlib.import_module(f".{name}", __package__)
        app.include_router(module.router)
    _add_docs(app)
    app.add_middleware(GZipMiddleware, minimum_size=1024)
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_credentials=False,
                           allow_methods=["GET", "POST", "PUT", "DELETE"],
                           allow_headers=["Authorization", "Content-Type", "Content-Encoding"])
    app.add_middleware(RequestLimits, max_bytes=settings.max_body_bytes, timeout_s=settings.body_timeout_s,
                       max_head_bytes=MAX_HEAD_BYTES)
    return app


def _add_docs(app: FastAPI) -> None:
    """/openapi.json and /docs, with Swagger UI served from the package (no CDN: works offline), behind auth."""

    @app.get("/openapi.json", include_in_schema=False, dependencies=[Depends(require_caller)])
    def openapi() -> JSONResponse:
        return JSONResponse(app.openapi())

    @app.get("/docs", include_in_schema=False, dependencies=[Depends(require_caller)])
    def docs():
        return get_swagger_ui_html(openapi_url="/openapi.json", title="spanledger API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css",
                                   swagger_favicon_url="/docs/assets/favicon-32x32.png",
                                   oauth2_redirect_url="/docs/assets/oauth2-redirect.html")

    @app.get("/docs/assets/{name}", include_in_schema=False, dependencies=[Depends(require_caller)])
    def docs_asset(name: str):
        if name not in SWAGGER_ASSETS:  # a fixed list: no path from the request reaches the file system
            raise HTTPException(404, f"no docs asset {name!r}; the docs are at /docs")
        return FileResponse(SWAGGER_DIR / name, media_type=SWAGGER_ASSETS[name],
                            headers={"Cache-Control": "max-age=86400"})


# -- serving ---------------------------------------------------------------------------------
class InsecureExposure(ValueError):
    """A non-loopback listener without authentication, not explicitly allowed."""


API_DEFAULT_HOST = "localhost"
"""The API listens on this machine only when its endpoint names no host (``:8080``)."""


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(endpoint: str, auth: TokenAuth, allow_insecure_remote: bool, what: str) -> None:
    """Refuse to listen beyond this machine with no token, unless the operator said so."""
    host, _ = split_endpoint(endpoint, API_DEFAULT_HOST)
    if auth.enabled or is_loopback(host):
        return
    if not allow_insecure_remote:
        raise InsecureExposure(
            f"{what} endpoint {endpoint} is reachable from other machines and no bearer token is configured: "
            "configure extensions.bearertokenauth (and receivers.otlp.protocols.grpc.auth), listen on localhost, "
            "or pass --allow-insecure-remote (extensions.spanledger_api.allow_insecure_remote: true) "
            "if the network is trusted")
    log.warning("%s on %s WITHOUT AUTHENTICATION, reachable from other machines (allow_insecure_remote is on)",
                what, endpoint)


class ApiServer(UvicornThread):
    """The API on its endpoint: the shared uvicorn thread with a deadline on every request head, heads of
    at most MAX_HEAD_BYTES, no Server header, and at most 512 connections at once."""

    def __init__(self, app: FastAPI, endpoint: str, settings: ApiSettings,
                 tls: tuple[str, str] | None = None) -> None:
        super().__init__(
            app, endpoint, name="spanledger-api", default_host=API_DEFAULT_HOST,
            ssl_certfile=tls[0] if tls else None, ssl_keyfile=tls[1] if tls else None, limit_concurrency=512,
            keep_alive_s=max(1, round(settings.keep_alive_timeout_s)),
            http=protocol_with_deadline(settings.header_timeout_s), h11_max_incomplete_event_size=MAX_HEAD_BYTES,
            server_header=False)  # (access log off: access lines would carry ?ingest_key=; the app logs errors)

    def start(self, timeout_s: float = 30.0) -> ApiServer:
        return super().start(timeout_s)
