"""The browser fixtures (tests/browser/conftest.py) for the console's attack suite."""

from __future__ import annotations

import importlib.util
from pathlib import Path

_spec = importlib.util.spec_from_file_location("browser_conftest", Path(__file__).resolve().parent.parent / "browser" / "conftest.py")
_module = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(_module)
browser, console, console_factory, page_factory = _module.browser, _module.console, _module.console_factory, _module.page_factory
