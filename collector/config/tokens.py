"""Bearer tokens from the bearertokenauth extension: the configuration, a file, and per-tenant tokens."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from .errors import ConfigError

if TYPE_CHECKING:
    from .loading import CollectorConfig


def bearer_tokens(config: CollectorConfig) -> dict[str, str]:
    """token -> tenant ('' for a token without a tenant), from the bearertokenauth extension."""
    # One set of tokens for every listener: naming the authenticator on either protocol turns it on for all.
    if "bearertokenauth" not in (config.get("receivers.otlp.protocols.grpc.auth.authenticator"),
                                 config.get("receivers.otlp.protocols.http.auth.authenticator")):
        return {}
    ext = config.get("extensions.bearertokenauth")
    tokens: dict[str, str] = {str(t): "" for t in ext["tokens"]}
    if ext["filename"]:
        try:
            lines = Path(ext["filename"]).read_text(encoding="utf-8").splitlines()
        except OSError as exc:
            raise ConfigError(f"extensions.bearertokenauth.filename: cannot read {ext['filename']}: {exc.strerror}") from exc
        for line in lines:
            line = line.strip()
            if line and not line.startswith("#"):
                token, _, tenant = line.partition(" ")
                tokens[token] = tenant.strip()
    for tenant, token in ext["tenants"].items():
        tokens[str(token)] = tenant
    if not tokens:
        raise ConfigError("receivers.otlp.protocols.grpc.auth uses bearertokenauth but no token is configured "
                          "(set extensions.bearertokenauth.tokens, .tenants or .filename)")
    if any(len(t) < 16 for t in tokens):
        raise ConfigError("extensions.bearertokenauth: every token must be at least 16 characters long")
    return tokens
