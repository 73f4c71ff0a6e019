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

``may_hold_bad_numbers`` is the fast path: one regex pass over the encoded request tells whether every such attribute is a plain in-range value; only
when it cannot tell are the spans' attributes walked (``attribute_problem``).
It relies on the request being in canonical encoding (``wire.canonical``
guarantees that before it is called).
"""

from __future__ import annotations

import math
import re

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

def _keys_pattern(keys) -> bytes:
    """Canonically encoded KeyValue keys: tag 0x0a, the key's length (one byte), the key, the value tag 0x12."""
    return b"(?:" + b"|".join(re.escape(bytes([0x0A, len(k)]) + k.encode()) for k in sorted(keys)) + b")\\x12"


def _varints(max_bytes: int, last_below: int) -> bytes:
    """AnyValue{int_value} whose varint has at most ``max_bytes`` bytes, the last of those below ``last_below``."""
    shapes = [re.escape(bytes([n + 1, 0x18])) + (rb"[\x80-\xff]{%d}" % (n - 1) if n > 1 else b"") + rb"[\x00-\x7f]"
              for n in range(1, max_bytes)]
    last = re.escape(bytes([last_below - 1]))
    shapes.append(re.escape(bytes([max_bytes + 1, 0x18])) + rb"[\x80-\xff]{%d}" % (max_bytes - 1) + rb"[\x00-" + last + b"]")
    return b"|".join(shapes)


def _doubles_below(top: int, second: int) -> bytes:
    """AnyValue{double_value} >= +0 and below the double whose two high bytes are ``top``, ``second``:
    sign clear, and the (little-endian) high bytes under the limit.  NaN and infinities are above it."""
    return (rb"\x09\x21.{7}[\x00-" + re.escape(bytes([top - 1])) + rb"]|\x09\x21.{6}[\x00-"
            + re.escape(bytes([second - 1])) + rb"]" + re.escape(bytes([top])))


def _digit_strings(max_digits: int) -> bytes:
    """AnyValue{string_value} of 1..max_digits ASCII digits (lengths consistent with the framing)."""
    return b"|".join(re.escape(bytes([n + 2, 0x0A, n])) + b"[0-9]{%d}" % n for n in range(1, max_digits + 1))


def _decimal_strings(int_digits: int, frac_digits: int) -> bytes:
    """AnyValue{string_value} 'ddd' or 'ddd.fff' with 1..int_digits and 0..frac_digits digits."""
    out = []
    for i in range(1, int_digits + 1):
        for f in range(frac_digits + 1):
            n = i + (f + 1 if f else 0)
            out.append(re.escape(bytes([n + 2, 0x0A, n])) + b"[0-9]{%d}" % i + (rb"\.[0-9]{%d}" % f if f else b""))
    return b"|".join(out)


# 10**8 = 0x5F5E100: a four-byte varint below it ends in a byte < 0x2f (47 * 2**21 < 10**8);
# 10**6: a three-byte varint ending in a byte < 0x3d is below it (61 * 2**14 < 10**6);
# as a double 10**8 is 0x4197D784..., 10**6 is 0x412E8480...; a cost below 10**6 has at most 6 integer digits.
_NOT_PLAIN = re.compile(
    _keys_pattern(TOKEN_KEYS) + b"(?!\\x00|" + _varints(4, 0x2F) + b"|" + _doubles_below(0x41, 0x97) + b"|"
    + _digit_strings(8) + b")"
    + b"|" + _keys_pattern(COST_KEYS) + b"(?!\\x00|" + _varints(3, 0x3D) + b"|" + _doubles_below(0x41, 0x2E)
    + b"|" + _decimal_strings(6, 20) + b")",
    re.DOTALL)


def may_hold_bad_numbers(data: bytes) -> bool:
    """False only if every numeric attribute in ``data`` (canonically encoded) is a plain, in-range value.

    One regex pass finds a numeric key whose value does not have a shape that proves it in range
    (a short varint, a small non-negative double, a few digits); anything it finds, rarer
    encodings included, goes to the full check."""
    return _NOT_PLAIN.search(data) is not None


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
