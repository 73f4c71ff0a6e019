"""Every spelling in semconv.ACCEPTED_SPELLINGS reaches its column through the real pipeline, first one wins.

This is what keeps the normalization SQL and the one table of spellings from drifting apart:
a spelling the SQL forgets, or an order it changes, fails here."""

from __future__ import annotations

from decimal import Decimal

import pytest
from collector_support import make_span, new_request, rows, wait_stored

from spanledger.semconv import ACCEPTED_SPELLINGS, COST_KEYS, TOKEN_COUNT_KEYS

NUMERIC_TOKENS = {"InputTokens", "OutputTokens", "CacheReadTokens", "CacheWriteTokens", "ReasoningTokens"}
COSTS = {"TotalCost", "InputCost", "OutputCost"}


def _value(column: str, index: int):
    if column in NUMERIC_TOKENS:
        return 1000 + index  # larger than any cache/reasoning part, so totals are not "made whole"
    if column in COSTS:
        return f"0.{index + 1}5"
    return f"{column.lower()}-{index}"


def _expected(column: str, value):
    if column in COSTS:
        return Decimal(value)
    if column == "Provider":
        return value.lower()
    return value


def _attributes(column: str, keys_values: dict) -> dict:
    attributes = dict(keys_values)
    if column in ("InputCost", "OutputCost"):
        attributes.setdefault("spanledger.cost.total_usd", "9")  # parts are kept only with a provided total
    return attributes


CASES = []
for column, spellings in ACCEPTED_SPELLINGS.items():
    for i, key in enumerate(spellings):
        CASES.append((column, f"{column}:{key}", {key: _value(column, i)}, _value(column, i)))
        if i + 1 < len(spellings) and spellings[i + 1] != key:
            both = {spellings[i + 1]: _value(column, i + 1), key: _value(column, i)}
            CASES.append((column, f"{column}:{key}>{spellings[i + 1]}", both, _value(column, i)))


def test_spelling_sets_cover_validation():
    assert "gen_ai.usage.input_tokens" in TOKEN_COUNT_KEYS and "llm.token_count.prompt" in TOKEN_COUNT_KEYS
    assert "spanledger.cost.total_usd" in COST_KEYS and "gen_ai.usage.cost" in COST_KEYS


def test_each_spelling_lands_in_its_column_and_the_first_wins(collector, raw_client):
    request, scope = new_request()
    for column, name, attributes, _ in CASES:
        make_span(scope, name, attributes=_attributes(column, attributes))
    response = raw_client.export(request.SerializeToString())
    assert response.partial_success.rejected_spans == 0, response.partial_success.error_message
    wait_stored(collector, len(CASES))
    stored = {r["SpanName"]: r for r in rows(collector, "SELECT * FROM spanledger.otel_traces")}
    wrong = []
    for column, name, _, value in CASES:
        got = stored[name][column]
        if got != _expected(column, value):
            wrong.append(f"{name}: {column}={got!r}, expected {_expected(column, value)!r}")
    assert not wrong, "\n".join(wrong)
