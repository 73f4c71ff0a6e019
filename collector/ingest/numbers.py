"""The numeric attributes the ingest pipeline reads, and the ranges the store can take.

The flatten view (schema/900_ingest_pipeline.sql) reads token counts with
``toUInt64OrNull`` and costs with ``toDecimal64OrNull(.., 12)`` on each
attribute's *text*, so an int, a double and a numeric string are all the same
number to it.  Pricing then multiplies token counts by per-token rates into
``Decimal(18, 12)`` (at most 999,999.999999999999 USD), and a product beyond
that fails the whole INSERT with DECIMAL_OVERFLOW on every retry.  So every
spelling is held here to what the store can take:

* token counts: whole or fractional numbers in ``0 .. MAX_TOKENS``.  With every
  count at most 10**8 (a hundred million tokens: ten times the largest context
  window of any model), a span's computed cost stays below 10**6 USD for any
  rate up to $2,000 per million tokens, however the counts combine.
* costs: numbers in ``0 <= cost < MAX_COST_USD`` (10**6, the Decimal(18, 12) limit).
* the value must be an int, a double or a numeric string (at most
  ``MAX_NUMBER_TEXT`` characters); a bool, bytes, array or kvlist is refused.

``may_hold_bad_numbers`` is the fast path: one scan of the encoded request tells whether every such attribute is a plain in-range value; only
when it cannot tell are the spans' attributes walked (``attribute_problem``).
It relies on the request being in canonical encoding (``wire.canonical``
guarantees that before it is called).
"""

from __future__ import annotations

import math
import re
import struct

MAX_TOKENS = 10**8
MAX_COST_USD = 10**6
MAX_NUMBER_TEXT = 64

TOKEN_KEYS = frozenset({
    "gen_ai.usage.input_tokens", "gen_ai.usage.prompt_tokens", "llm.token_count.prompt", "llm.usage.prompt_tokens",
    "gen_ai.usage.output_tokens", "gen_ai.usage.completion_tokens", "llm.token_count.completion",
    "llm.usage.completion_tokens",
    "gen_ai.usage.cache_read.input_tokens", "gen_ai.usage.cache_read_input_tokens",
    "llm.token_count.prompt_details.cache_read",
    "gen_ai.usage.cache_creation.input_tokens", "gen_ai.usage.cache_creation_input_tokens",
    "llm.token_count.prompt_details.cache_write",
    "gen_ai.usage.reasoning.output_tokens", "llm.token_count.completion_details.reasoning",
    "llm.usage.reasoning_tokens", "llm.token_count.total",
})
COST_KEYS = frozenset({
    "spanledger.cost.total_usd", "llm.cost.total", "gen_ai.usage.cost", "operation.cost",
    "spanledger.cost.input_usd", "llm.cost.prompt", "spanledger.cost.output_usd", "llm.cost.completion",
})
NUMERIC_KEYS = TOKEN_KEYS | COST_KEYS

_PLAIN_TOKENS = re.compile(rb"(?:0|[1-9][0-9]{0,8})")  # then compared with MAX_TOKENS
_PLAIN_COST = re.compile(rb"(?:0|[1-9][0-9]{0,5})(?:\.[0-9]{1,20})?")  # < 10**6 by its shape

# Every KeyValue whose key could be one of NUMERIC_KEYS, as canonically encoded:
# tag 0x0a, the key's length (one byte), the key, the value's tag 0x12.  One
# regex pass (its leading literal makes the engine skip ahead by memchr).
_NUMERIC_KEY_VALUE = re.compile(
    rb"\x0a([\x01-\x7f])(gen_ai\.usage\.[a-z_.]+|llm\.(?:token_count|usage|cost)\.[a-z_.]+"
    rb"|spanledger\.cost\.[a-z_]+|operation\.cost)\x12")
_COST_BYTES = frozenset(k.encode() for k in COST_KEYS)
_TOKEN_BYTES = frozenset(k.encode() for k in TOKEN_KEYS)


def may_hold_bad_numbers(data: bytes) -> bool:
    """False only if every numeric attribute in ``data`` (canonically encoded) is a plain, in-range value."""
    for match in _NUMERIC_KEY_VALUE.finditer(data):
        key = match.group(2)
        if key in _TOKEN_BYTES:
            is_cost = False
        elif key in _COST_BYTES:
            is_cost = True
        else:
            continue  # e.g. gen_ai.usage.details: not read as a number
        if match.group(1)[0] != len(key) or not _plain_value(data, match.end(), is_cost):
            return True
    return False


def _plain_value(data: bytes, pos: int, is_cost: bool) -> bool:
    """Is the AnyValue encoded at ``pos`` (its length byte) one whose number is plainly in range?"""
    if pos >= len(data):
        return False
    length = data[pos]
    if length == 0:
        return True  # no value: stored as "", read as no number
    if length > 0x7F or pos + 1 + length > len(data):
        return False
    body = data[pos + 1:pos + 1 + length]
    tag = body[0]
    if tag == 0x18:  # int_value varint
        value, shift = 0, 0
        for i, b in enumerate(body[1:], 1):
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return i == length - 1 and value < (MAX_COST_USD if is_cost else MAX_TOKENS + 1)
        return False
    if tag == 0x21 and length == 9:  # double_value
        (value,) = struct.unpack_from("<d", body, 1)
        return 0 <= value < MAX_COST_USD if is_cost else 0 <= value <= MAX_TOKENS  # NaN fails both
    if tag == 0x0A and length >= 2 and body[1] == length - 2:  # string_value
        text = body[2:]
        if is_cost:
            return _PLAIN_COST.fullmatch(text) is not None
        return _PLAIN_TOKENS.fullmatch(text) is not None and int(text) <= MAX_TOKENS
    return False


def attribute_problem(key: str, value) -> str | None:
    """What is wrong with numeric attribute ``key`` = ``value`` (an AnyValue), or None."""
    is_cost = key in COST_KEYS
    kind = value.WhichOneof("value")
    if kind is None:
        return None
    if kind == "int_value":
        number = float(value.int_value) if abs(value.int_value) < 2**53 else value.int_value
    elif kind == "double_value":
        number = value.double_value
    elif kind == "string_value":
        text = value.string_value.strip()
        if len(text) > MAX_NUMBER_TEXT:
            return f"is a number written in more than {MAX_NUMBER_TEXT} characters"
        try:
            number = float(text)
        except ValueError:
            return f"is not a number ({text[:40]!r})"
    else:
        return f"must be a number (an int, a double or a numeric string), not a {kind.removesuffix('_value')}"
    if isinstance(number, float) and (math.isnan(number) or math.isinf(number)):
        return "is not a finite number"
    if number < 0:
        return "is negative"
    if is_cost and number >= MAX_COST_USD:
        return f"is {number:g} USD, at or above the {MAX_COST_USD:,} USD a span's cost may be"
    if not is_cost and number > MAX_TOKENS:
        return f"is {number:g} tokens, above the {MAX_TOKENS:,} a span may count (split the usage across spans)"
    return None
