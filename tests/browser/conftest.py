"""Browser tests: Debian's chromium (never Playwright's download) against a real collector.

Screenshots of each view go to tests/browser/artifacts/ (ignored by git); their paths are printed."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent / "collector"))
sys.path.insert(0, str(HERE))

from conftest_collector import collector, collector_factory, raw_client  # noqa: E402,F401
from console_support import CONSOLE_CONFIG, OffOriginGuard, build_console_app, chromium, http_server  # noqa: E402

@pytest.fixture(scope="module")
def browser():
    with chromium() as browser:
        yield browser

@pytest.fixture
def console_factory(collector_factory):
    """console_factory(config_text=None) -> (collector, server): a real collector and its API app (the
    console included) over HTTP.  The default configuration has auth off and the tracker page's ingest keys."""
    servers: list = []  # UvicornThread

    def make(config_text: str | None = None):
        collector = collector_factory(config_text or CONSOLE_CONFIG)
        server = http_server(build_console_app(collector))
        servers.append(server)
        return collector, server

    yield make
    for server in servers:
        server.stop()

@pytest.fixture
def console(console_factory):
    return console_factory()

@pytest.fixture
def page_factory(browser):
    """page_factory(origin) -> (page, guard): a fresh context whose requests off the origin fail."""
    contexts = []

    def make(origin: str, **context_options):
        context = browser.new_context(viewport={"width": 1400, "height": 900}, **context_options)
        contexts.append(context)
        guard = OffOriginGuard(origin)
        context.route("**/*", guard.handle)
        page = context.new_page()
        page.errors = []
        page.on("pageerror", lambda exc: page.errors.append(str(exc)))
        return page, guard

    yield make
    for context in contexts:
        context.close()
