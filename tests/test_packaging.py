"""What ships: every Python package folder and every console file is in the built distribution.

setuptools is given an explicit package list (the repository maps instrumentation/, collector/,
schema/ and demo/ onto one ``spanledger`` import package), so a new folder that is not added
there works in an editable checkout and is silently missing from ``pip install spanledger``.
"""

from __future__ import annotations

import fnmatch
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]


def _import_name(folder: Path) -> str:
    """instrumentation/activities -> spanledger.activities, collector/feed -> spanledger.collector.feed"""
    for import_name, source in PYPROJECT["package-dir"].items():
        base = ROOT / source
        if folder == base or base in folder.parents:
            rest = folder.relative_to(base).parts
            return ".".join((import_name, *rest))
    raise AssertionError(f"{folder} is outside every package-dir of pyproject.toml")


def test_every_package_folder_is_listed():
    folders = {init.parent for source in PYPROJECT["package-dir"].values()
               for init in (ROOT / source).rglob("__init__.py")}
    missing = sorted(_import_name(f) for f in folders if _import_name(f) not in PYPROJECT["packages"])
    assert not missing, f"add these to [tool.setuptools] packages in pyproject.toml: {missing}"


def _owning_package(path: Path) -> tuple[str, Path]:
    """The nearest listed package above a data file, and the file's path relative to it."""
    for folder in path.parents:
        if (folder / "__init__.py").exists():
            return _import_name(folder), folder
    raise AssertionError(f"{path} is in no package")


def test_every_data_file_is_package_data():
    """SQL, protos, the console's HTML/JS/CSS and the offline API docs' assets all ship."""
    shipped, unshipped = [], []
    for source in PYPROJECT["package-dir"].values():
        for path in (ROOT / source).rglob("*"):
            if not path.is_file() or path.suffix in (".py", ".pyc") or "__pycache__" in path.parts:
                continue
            package, folder = _owning_package(path)
            relative = path.relative_to(folder).as_posix()
            patterns = PYPROJECT.get("package-data", {}).get(package, [])
            if any(fnmatch.fnmatchcase(relative, pattern) and relative.count("/") == pattern.count("/")
                   for pattern in patterns):
                shipped.append(f"{package}: {relative}")
            else:
                unshipped.append(f"{package}: {relative}")
    for expected in ("spanledger.collector.serve.console: tracker.js", "spanledger.collector.serve.console: assets/views/trace.js",
                     "spanledger.schema: 001_spans.sql", "spanledger.collector.serve: static/swagger-ui/swagger-ui-bundle.js"):
        assert expected in shipped, f"{expected} is not found or not shipped: did the layout move?"
    assert not unshipped, f"add package-data patterns in pyproject.toml for: {unshipped}"
