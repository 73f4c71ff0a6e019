"""The kinds of value a configuration key can hold, and the text forms they are written in.

Each kind is a pydantic ``Annotated`` type whose validator states, in the
message a user reads, what was expected and what was given (``expected true or
false, got 'maybe'``): the loader puts the key's dotted path in front.  Only
the Collector's own spellings are accepted: durations such as ``500ms`` or
``72h``, YAML booleans, whole numbers that are not booleans.
"""

from __future__ import annotations

import math
import os
import re
from typing import Annotated, Any

from pydantic import BeforeValidator
from pydantic_core import PydanticCustomError

from .errors import ConfigError

_ENV = re.compile(r"\$\{env:([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ns|us|µs|ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1, "m": 60, "h": 3600, "d": 86400, None: 1}
# No key means anything near this; a bigger number is a typo, and shifting it into bytes would overflow C code.
_LARGEST = 1 << 53


def env_var(path: str) -> str:
    """The environment variable that gives a key its value when the file does not:
    ``processors.memory_limiter.limit_mib`` -> ``SPANLEDGER_PROCESSORS_MEMORY_LIMITER_LIMIT_MIB``."""
    return "SPANLEDGER_" + re.sub(r"[^A-Za-z0-9]+", "_", path).upper()


def duration_s(value: Any, key: str) -> float:
    """'1s', '200ms', '72h' (the Collector's duration syntax) or a number of seconds."""
    try:
        return _duration(value)
    except PydanticCustomError as exc:
        raise ConfigError(f"{key}: {exc.message()}") from None


def substitute_env(text: str) -> str:
    """Replace ``${env:VAR}`` and ``${env:VAR:-default}`` as the OpenTelemetry Collector does."""
    def repl(match: re.Match[str]) -> str:
        name, default = match.group(1), match.group(2)
        if name in os.environ:
            return os.environ[name]
        if default is not None:
            return default
        raise ConfigError(f"${{env:{name}}} is used in the configuration but {name} is not set "
                          f"(set it, or write ${{env:{name}:-default}})")
    return _ENV.sub(repl, text)


def is_env_reference(text: str) -> bool:
    """The whole value is one ``${env:...}``: it then takes the variable's YAML type."""
    return bool(_ENV.fullmatch(text.strip()))


def _refuse(expected: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError("spanledger_value", "expected {expected}, got {given}",
                               {"expected": expected, "given": shown(value)})


def shown(value: Any) -> str:
    """A given value as a message quotes it: its repr, cut at 80 characters."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _whole(value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _LARGEST:
        raise _refuse("a whole number >= 0", value)
    return value


def _text(value: Any) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        raise _refuse("text", value)
    return str(value)


def _flag(value: Any) -> bool:
    if not isinstance(value, bool):
        raise _refuse("true or false", value)
    return value


def _duration(value: Any) -> float:
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        if not math.isfinite(value) or not 0 <= value <= _LARGEST:
            raise _refuse("a duration >= 0 (e.g. 500ms, 1s, 72h)", value)
        return float(value)
    match = _DURATION.match(value) if isinstance(value, str) else None
    if not match:
        raise PydanticCustomError("spanledger_value", "{given} is not a duration (write e.g. 500ms, 1s, 72h)",
                                  {"given": shown(value)})
    seconds = float(match.group(1)) * _DURATION_UNITS[match.group(2)]
    if not seconds <= _LARGEST:
        raise _refuse("a duration that fits in a lifetime", value)
    return seconds


def _scalars(value: Any) -> list:
    """Lists of names, patterns, origins or tokens: scalars only, so each item can be used as text."""
    if not isinstance(value, list):
        raise _refuse("a list", value)
    for item in value:
        if isinstance(item, (dict, list)) or item is None:
            raise _refuse("a list of single values (names, patterns, tokens)", value)
    return value


def _names(value: Any) -> list:
    if not isinstance(value, list) or not all(isinstance(item, str) for item in value):
        raise _refuse("a list of names", value)
    return value


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
        raise _refuse("a mapping", value)
    if any(isinstance(v, (dict, list)) or v is None for v in value.values()):
        raise _refuse("a mapping of names to single values", value)
    return value


def _records(value: Any) -> list:
    # what each record holds is checked by the part that reads it, naming key[i].field
    if not isinstance(value, list):
        raise _refuse("a list of mappings", value)
    for item in value:
        if not isinstance(item, dict) or not all(isinstance(k, str) for k in item):
            raise _refuse("a list of mappings of keys", value)
    return value


Whole = Annotated[int, BeforeValidator(_whole)]
Text = Annotated[str, BeforeValidator(_text)]
Flag = Annotated[bool, BeforeValidator(_flag)]
Duration = Annotated[float, BeforeValidator(_duration)]
"""Seconds; written as the Collector writes durations (``500ms``, ``1s``, ``72h``) or as a number."""
Scalars = Annotated[list, BeforeValidator(_scalars)]
Names = Annotated[list, BeforeValidator(_names)]
Mapping = Annotated[dict, BeforeValidator(_mapping)]
Records = Annotated[list, BeforeValidator(_records)]

KIND_NAMES = {_whole: "whole number", _text: "text", _flag: "true/false", _duration: "duration",
              _scalars: "list", _names: "list of names", _mapping: "mapping", _records: "list of mappings"}


def kind_of(metadata: list) -> str:
    """The name of a key's kind, for the reference in docs/configuration.md."""
    for item in metadata:
        if isinstance(item, BeforeValidator) and item.func in KIND_NAMES:
            return KIND_NAMES[item.func]
    return "value"


def is_text(metadata: list) -> bool:
    """Text keys take an environment variable's value as written; other kinds read it as YAML."""
    return any(isinstance(item, BeforeValidator) and item.func is _text for item in metadata)
