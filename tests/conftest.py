"""Suite-wide guards.

chDB opens one data path per process.  A test that leaves an embedded store open (a collector it
did not stop) makes every later collector in the run wait for a store it can never open, and the
run then spends its whole time budget on retries.  The first such failure ends the run instead,
naming the test that met it."""

from __future__ import annotations

import pytest

ENGINE_HELD = "already has another embedded store open"


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    text = str(report.longrepr) if report.failed else ""
    if ENGINE_HELD in text:
        start = max(0, text.find(ENGINE_HELD) - 300)
        pytest.exit(f"{item.nodeid}: an earlier test left an embedded store open in this process, so every "
                    f"later collector would fail the same way: ...{text[start:start + 600]}...", returncode=1)
    return report
