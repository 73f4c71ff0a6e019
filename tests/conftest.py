"""Suite-wide guards.

chDB opens one data path per process.  A test that leaves an embedded store open (a collector it
did not stop) makes every later collector in the run wait for a store it can never open, and the
run then spends its whole time budget on retries.  The first such failure ends the run instead,
naming the test that met it."""

from __future__ import annotations

import os

import pytest

# The memory limiter measures the whole process's RSS, which is right for a collector process.
# Here one pytest process hosts hundreds of collectors, chDB and the test tools, and its RSS
# passes the shipped 1 GiB ceiling part-way through the run; collectors started after that would
# refuse every export.  Tests that exercise the limiter write their own limit_mib in the file,
# which wins over this variable; tests of the shipped default delete it.
os.environ.setdefault("SPANLEDGER_PROCESSORS_MEMORY_LIMITER_LIMIT_MIB", "8192")

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
