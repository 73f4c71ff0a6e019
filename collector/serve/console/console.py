"""Serves the web console (``/``, ``/assets/*``) and the browser tracker (``/tracker.js``).

The console is static: plain ES modules that talk to the read API with the
user's bearer token (kept in sessionStorage, sent only in the Authorization
header).  This router adds no query path: it never touches the store.

Every answer carries headers that make injected markup inert even if a view
had a bug: a Content-Security-Policy that allows only this origin (no inline
script, no eval, no framing), ``X-Frame-Options: DENY`` against clickjacking,
``nosniff``, and ``Referrer-Policy: no-referrer`` so no URL leaves the page.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from fastapi import APIRouter
from fastapi.responses import JSONResponse, Response

HERE = Path(__file__).resolve().parent
ASSETS = HERE / "assets"

CONSOLE_CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
               "connect-src 'self'; font-src 'self'; object-src 'none'; base-uri 'none'; "
               "form-action 'self'; frame-ancestors 'none'")
SECURITY_HEADERS = {
    "Content-Security-Policy": CONSOLE_CSP,
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cross-Origin-Opener-Policy": "same-origin",
}
CONTENT_TYPES = {
    ".html": "text/html; charset=utf-8",
    ".js": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".svg": "image/svg+xml",
    ".txt": "text/plain; charset=utf-8",
}

router = APIRouter(include_in_schema=False)


@lru_cache(maxsize=1)
def asset_index() -> dict[str, Path]:
    """Every servable asset by its URL path below /assets/, listed once from the package.

    Requests are looked up in this table, never joined onto a file-system path, so
    no request can name a file outside the assets folder (``..``, encoded slashes,
    absolute paths, symlinks added later)."""
    return {path.relative_to(ASSETS).as_posix(): path for path in sorted(ASSETS.rglob("*"))
            if path.is_file() and path.suffix in CONTENT_TYPES}


@lru_cache(maxsize=64)
def _read(path: Path) -> bytes:
    return path.read_bytes()


def _file_response(path: Path, *, cache: str, extra: dict[str, str] | None = None) -> Response:
    headers = dict(SECURITY_HEADERS, **{"Cache-Control": cache}, **(extra or {}))
    return Response(_read(path), media_type=CONTENT_TYPES[path.suffix], headers=headers)


@router.get("/")
def console_index() -> Response:
    # no-cache: a new release's asset list is picked up at the next load
    return _file_response(HERE / "index.html", cache="no-cache")


@router.get("/assets/{name:path}")
def console_asset(name: str) -> Response:
    path = asset_index().get(name)
    if path is None:
        return JSONResponse({"error": f"no console asset named {name[:200]!r}; the console starts at /"},
                            status_code=404, headers=SECURITY_HEADERS)
    return _file_response(path, cache="no-cache")


@router.get("/tracker.js")
def tracker_script() -> Response:
    # Loaded by other sites' pages with <script src>: allow that cross-origin embedding.
    return _file_response(HERE / "tracker.js", cache="public, max-age=300",
                          extra={"Cross-Origin-Resource-Policy": "cross-origin"})
