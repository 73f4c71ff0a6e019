"""docs/configuration.md, generated from the schema so the documentation cannot drift from the code.

``spanledger config --schema`` prints it; tests/collector/test_config_reference.py
fails when the committed file differs from what the schema says.
"""

from __future__ import annotations

import json
from typing import Any, Iterator

from .schema import Configuration, Exporters, Section, TEMPLATES
from .values import env_var, kind_of

HEADER = """# Configuration reference

<!-- Generated from collector/config/schema.py by `spanledger config --schema`; do not edit by hand. -->

Every key of `otel-config.yaml` (the OpenTelemetry Collector's format). Each key
is optional. Precedence: the value in the file, else the key's environment
variable, else the default. Durations are written as the Collector writes them
(`500ms`, `1s`, `72h`) or as seconds. `${env:VAR}` and `${env:VAR:-default}` are
substituted in values. An unknown key or a bad value stops start-up with a
message naming the key (and the environment variable, when the value came from
one). `spanledger config --print` shows the effective configuration, secrets
masked.

`otlp/NAME` and `otlphttp/NAME` exporters may appear any number of times; their
variables carry the name, e.g. `SPANLEDGER_EXPORTERS_OTLP_TEMPO_ENDPOINT` for
`exporters.otlp/tempo.endpoint`.
"""


def reference_markdown() -> str:
    """The whole reference: one table per top-level section."""
    parts = [HEADER]
    for section, info in Configuration.model_fields.items():
        parts.append(f"\n## {section}\n\n| key | kind | default | environment variable | what it does |\n"
                     "|---|---|---|---|---|")
        model = info.annotation
        parts.extend(_row(*leaf) for leaf in _leaves(model, section))
        if model is Exporters:
            for prefix, template in TEMPLATES.items():
                parts.extend(_row(*leaf) for leaf in _leaves(template, f"exporters.{prefix}/NAME"))
    return "\n".join(parts) + "\n"


def _leaves(model: type[Section], path: str) -> Iterator[tuple[str, Any, str]]:
    for name, info in model.model_fields.items():
        where = f"{path}.{name}"
        if isinstance(info.annotation, type) and issubclass(info.annotation, Section):
            yield from _leaves(info.annotation, where)
        else:
            yield where, info, kind_of(info.metadata)


def _row(path: str, info, kind: str) -> str:
    default = info.get_default(call_default_factory=True)
    if kind == "duration":
        shown = f"`{default:g}s`"
    elif isinstance(default, str):
        shown = f"`{default}`" if default else '""'
    else:
        shown = f"`{json.dumps(default)}`"
    variable = env_var(path).replace("_NAME_", "_<NAME>_")
    text = " ".join((info.description or "").split()).replace("|", "\\|")
    return f"| `{path}` | {kind} | {shown} | `{variable}` | {text} |"
