"""Turn whatever a user hands us into OTel attribute values or JSON text.

OTel attributes accept str/bool/int/float and homogeneous sequences of them.
Users pass dicts, dataclasses, pydantic models, bytes...; rather than reject
them (and lose the data) we serialise them to JSON, falling back to ``str``.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from typing import Any

from opentelemetry.util.types import AttributeValue

from spanledger._safe import safe_str

_PRIMITIVES = (str, bool, int, float)


def _default(value: Any) -> Any:
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return dataclasses.asdict(value)
    dump = getattr(value, "model_dump", None)  # pydantic v2
    if callable(dump):
        return dump()
    if isinstance(value, (bytes, bytearray)):
        return value.decode("utf-8", "replace")
    if isinstance(value, (set, frozenset)):
        return sorted(value, key=safe_str)
    return safe_str(value)


def to_json(value: Any) -> str:
    """Compact JSON; anything JSON cannot encode becomes its ``str``."""
    return json.dumps(value, default=_default, ensure_ascii=False, separators=(",", ":"))


def to_attribute_value(value: Any) -> AttributeValue | None:
    """A value OTel accepts as an attribute, or None to drop it."""
    if value is None:
        return None
    if isinstance(value, _PRIMITIVES):
        return value
    if isinstance(value, Sequence) and not isinstance(value, (bytes, bytearray)):
        items = list(value)
        if items and all(isinstance(item, str) for item in items):
            return items
        if items and all(type(item) is bool for item in items):
            return items
        if items and all(type(item) is int for item in items):
            return items
        if items and all(type(item) in (int, float) for item in items):
            return [float(item) for item in items]
    try:
        return to_json(value)
    except Exception:  # noqa: BLE001 - never fail on odd user values
        return safe_str(value)


def flatten_attributes(prefix: str, values: Mapping[str, Any] | None) -> dict[str, AttributeValue]:
    """``{"a": 1}`` under ``prefix`` -> ``{"prefix.a": 1}``; nested values become JSON."""
    out: dict[str, AttributeValue] = {}
    if not values:
        return out
    try:
        items = list(values.items())
    except Exception:  # noqa: BLE001
        return out
    for key, value in items:
        converted = to_attribute_value(value)
        if converted is not None:
            out[f"{prefix}.{safe_str(key)}" if prefix else safe_str(key)] = converted
    return out
