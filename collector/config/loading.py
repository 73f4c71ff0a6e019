"""From YAML text to a checked ``CollectorConfig``: substitution, environment fallback, validation.

Precedence for every key: the file > its ``SPANLEDGER_*`` environment variable
(``values.env_var``) > the schema's default.  The file is walked alongside the
schema first, so an unknown key is named with what is known beside it and an
environment variable fills only what the file leaves out; pydantic then checks
every value, and its errors are turned into one human sentence per key.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError

from .errors import ConfigError
from .pipelines import check_pipelines
from .schema import Configuration, Section, TEMPLATES
from .values import env_var, is_env_reference, is_text, shown, substitute_env


def _resolve(given: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """The nested dict of resolved values (durations as float seconds) for a file's parsed YAML,
    and which keys took their value from an environment variable (key -> variable)."""
    from_env: dict[str, str] = {}
    prepared = _prepare(Configuration, given, "", from_env)
    try:
        model = Configuration.model_validate(prepared)
    except ValidationError as exc:
        raise ConfigError(_sentence(exc, from_env)) from None
    raw = model.model_dump()
    for name, exporter in raw["exporters"].items():
        if name.startswith("otlp/"):
            exporter.pop("traces_endpoint", None)  # an otlphttp/ key: otlp/ entries are checked without it
    return raw, from_env


def _prepare(model: type[Section], given: Any, path: str, from_env: dict[str, str]) -> Any:
    """``given`` with every None dropped (it means "not set"), unknown keys refused with what is known,
    and the environment variable of every key the file leaves out filled in."""
    if given is None:
        given = {}
    if not isinstance(given, dict):
        raise ConfigError(f"{path or 'the configuration'}: expected a mapping of keys, got {shown(given)}")
    out: dict[str, Any] = {}
    for key, value in given.items():
        where = f"{path}.{key}" if path else str(key)
        if key in model.model_fields:
            continue
        named = isinstance(key, str) and _allows_extra(model)
        template = TEMPLATES.get(key.split("/", 1)[0]) if named and "/" in key else None
        if template is None or key.endswith("/"):
            known = sorted(model.model_fields) + ([f"{t}/NAME" for t in TEMPLATES] if _allows_extra(model) else [])
            raise ConfigError(f"{where}: unknown key (known here: {', '.join(known)})")
        out[key] = _prepare(template, value, where, from_env)
    for key, info in model.model_fields.items():
        where = f"{path}.{key}" if path else key
        section = _section(info.annotation)
        if section is not None:
            out[key] = _prepare(section, given.get(key), where, from_env)
        elif given.get(key) is not None:
            out[key] = given[key]
        elif env_var(where) in os.environ:
            out[key] = _env_value(os.environ[env_var(where)], is_text(info.metadata))
            from_env[where] = env_var(where)
    return out


def _allows_extra(model: type[BaseModel]) -> bool:
    """Only ``exporters`` takes named instances (``otlp/NAME``, ``otlphttp/NAME``)."""
    return model.model_config.get("extra") == "allow"


def _section(annotation: Any) -> type[Section] | None:
    return annotation if isinstance(annotation, type) and issubclass(annotation, Section) else None


def _env_value(text: str, as_text: bool) -> Any:
    """A text key takes the variable as written; any other reads it as YAML (``false``, ``30s``, ``[a, b]``)."""
    if as_text:
        return text
    import yaml  # the collector extra ships PyYAML

    try:
        return yaml.safe_load(text)
    except (yaml.YAMLError, ValueError):
        return text


def _sentence(exc: ValidationError, from_env: dict[str, str]) -> str:
    """pydantic's errors as ``key.path: expected ..., got ...``, one clause per key."""
    clauses = []
    for error in exc.errors(include_url=False):
        where = "".join(f"[{part}]" if isinstance(part, int) else f".{part}" for part in error["loc"]).lstrip(".")
        if where in from_env:
            where = f"{where} (from ${from_env[where]})"
        if error["type"] == "spanledger_value":
            what = error["msg"]
        elif error["type"] in ("model_type", "model_attributes_type", "dict_type"):
            what = f"expected a mapping of keys, got {shown(error.get('input'))}"
        elif error["type"] == "extra_forbidden":
            what = "unknown key"
        else:
            what = f"{error['msg'][0].lower()}{error['msg'][1:]}, got {shown(error.get('input'))}"
        clauses.append(f"{where or 'the configuration'}: {what}")
    return "; ".join(clauses)


@dataclass(frozen=True)
class CollectorConfig:
    """The resolved configuration (every key present, every value checked)."""

    raw: dict[str, Any] = field(default_factory=lambda: _resolve({})[0])
    source: str = "defaults"
    given: dict[str, Any] | None = None  # the file as written (None: no file, the shipped defaults)
    from_env: dict[str, str] = field(default_factory=dict)  # key -> the SPANLEDGER_* variable that set it

    def http_enabled(self) -> bool:
        """OTLP/HTTP is on when ``receivers.otlp.protocols.http`` is in the file, as in the Collector.
        With no file at all the shipped otel-config.yaml applies, which has it."""
        if self.given is None:
            return True
        protocols = ((self.given.get("receivers") or {}).get("otlp") or {}).get("protocols") or {}
        return "http" in protocols

    def forward_exporters(self) -> dict[str, dict[str, Any]]:
        """The otlp/NAME and otlphttp/NAME exporters the traces pipeline lists, in its order."""
        exporters = self.raw["exporters"]
        return {name: exporters[name] for name in self.get("service.pipelines.traces.exporters")
                if name != "clickhouse"}

    def extension_enabled(self, name: str) -> bool:
        """An extension that runs only when ``service.extensions`` lists it (health_check)."""
        return name in self.get("service.extensions")

    def get(self, dotted: str) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            node = node[part]
        return node


def _expand_env(node: Any, yaml) -> Any:
    """Substitute ${env:...} in values (never in comments or keys), as the Collector does.

    A value that is one whole reference takes the variable's YAML type, so
    ``fsync: ${env:FSYNC}`` with FSYNC=false is a boolean."""
    if isinstance(node, dict):
        return {k: _expand_env(v, yaml) for k, v in node.items()}
    if isinstance(node, list):
        return [_expand_env(v, yaml) for v in node]
    if isinstance(node, str) and "${env:" in node:
        expanded = substitute_env(node)
        if is_env_reference(node):
            try:
                return yaml.safe_load(expanded) if expanded.strip() else ""
            except (yaml.YAMLError, ValueError):
                return expanded
        return expanded
    return node


def load_config(path: Path | None = None, text: str | None = None) -> CollectorConfig:
    """Read, substitute ${env:...}, and check a configuration file (or the defaults)."""
    if path is None and text is None:
        return CollectorConfig()
    import yaml  # the collector extra ships PyYAML

    if text is None:
        try:
            text = Path(path).read_text(encoding="utf-8")
        except OSError as exc:
            raise ConfigError(f"cannot read the configuration file {path}: {exc.strerror}") from exc
        except UnicodeDecodeError as exc:
            raise ConfigError(f"the configuration file {path} is not UTF-8 text: {exc.reason}") from exc
    try:
        data = _expand_env(yaml.safe_load(text) or {}, yaml)
    except (yaml.YAMLError, ValueError, RecursionError) as exc:
        if isinstance(exc, ConfigError):
            raise
        raise ConfigError(f"{path or 'configuration'} is not valid YAML: {exc}") from exc
    raw, from_env = _resolve(data)
    config = CollectorConfig(raw, str(path or "text"), data, from_env)
    try:
        check_pipelines(config)
    except ConfigError as exc:
        raise ConfigError(_with_sources(str(exc), from_env)) from None
    return config


def _with_sources(message: str, from_env: dict[str, str]) -> str:
    """A check across keys names the key; say so when its value came from an environment variable."""
    key = message.split(":", 1)[0]
    names = [name for path, name in from_env.items() if path == key or path.startswith(key + ".")]
    return f"{message} (set from ${', $'.join(names)})" if names else message
