"""``spanledger config --print``: the effective configuration, every default filled in, secrets masked.

``--schema`` prints the reference of every key instead (docs/configuration.md).

What the collector will run with is the file, its ``${env:...}`` substitutions
and the defaults together; printing the result answers "which value won"
without starting anything.  Secrets (passwords, tokens, webhook and ingest
keys, URL credentials) are shown as ``***`` so the output can be pasted into
an issue.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

NAME = "config"

SECRET_KEY = re.compile(r"(password|secret|token|tokens|tenants|ingest_keys|key|headers|authorization)$", re.IGNORECASE)
MASK = "***"


def add_parser(sub) -> None:
    p = sub.add_parser(NAME, help="show the effective configuration (defaults filled in, secrets masked)")
    p.add_argument("--config", type=Path, help="an otel-config.yaml (OpenTelemetry Collector format)")
    p.add_argument("--print", action="store_true", dest="print_config", help="print it (the default action)")
    p.add_argument("--format", choices=("yaml", "json"), default="yaml")
    p.add_argument("--schema", action="store_true",
                   help="print every key with its kind, default, environment variable and meaning "
                        "(Markdown; docs/configuration.md is this output)")


def masked(node: Any, key: str = "") -> Any:
    """A copy of ``node`` with every secret value replaced by ``***`` (the keys stay visible)."""
    if isinstance(node, dict):
        if SECRET_KEY.search(key) and key not in ("key_file",):
            return {k: MASK for k in node} if key != "tenants" else {k: MASK for k in node}
        return {k: masked(v, k) for k, v in node.items()}
    if isinstance(node, list):
        if SECRET_KEY.search(key):
            return [MASK for _ in node]
        return [masked(v, key) for v in node]
    if isinstance(node, str):
        if node and SECRET_KEY.search(key) and not key.endswith("_file"):
            return MASK
        if "://" in node and "@" in node:
            return _mask_url(node)
    return node


def _mask_url(text: str) -> str:
    parts = urlsplit(text)
    if parts.password is None and parts.username is None:
        return text
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, f"{MASK}@{host}", parts.path, parts.query, parts.fragment))


def run(args) -> int:
    from ..config import load_config

    if getattr(args, "schema", False):
        from ..config.reference import reference_markdown

        print(reference_markdown(), end="")
        return 0

    config = load_config(args.config)
    shown = masked(config.raw)
    if args.format == "json":
        print(json.dumps(shown, indent=2, default=str))
    else:
        import yaml

        print(f"# effective configuration from {config.source}; secrets shown as {MASK}")
        print(yaml.safe_dump(shown, sort_keys=False, default_flow_style=False).rstrip())
    return 0
