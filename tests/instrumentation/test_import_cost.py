"""``import spanledger`` stays light: what only the first count, price file or version lookup needs waits for it."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys
import tomllib
from pathlib import Path

from spanledger._runtime import VERSION

# Each of these cost ~1-14 ms at import and is needed only later (or never): the
# version lookup, price files, tokenizer vocabularies, genai-prices' snapshot.
_DEFERRED = ("importlib.metadata", "tomllib", "gzip", "hashlib", "tiktoken", "riptoken", "genai_prices")


def test_import_spanledger_defers_heavy_modules() -> None:
    probe = f"import sys, spanledger; print(' '.join(m for m in {_DEFERRED!r} if m in sys.modules))"
    loaded = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout.split()
    assert loaded == [], f"import spanledger loaded {loaded}; import them where they are first used"


def test_scope_version_matches_the_package() -> None:
    pyproject = tomllib.loads((Path(__file__).parents[2] / "pyproject.toml").read_text())
    assert VERSION == pyproject["project"]["version"] == importlib.metadata.version("spanledger")
