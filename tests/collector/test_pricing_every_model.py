"""Every model genai-prices knows, through the real collector: stored cost == genai_prices.calc_price.

One span per (model, moment, tier): random usage that reaches each tier, with
cache reads and writes and reasoning tokens, at random moments since 2023 and on
both sides of every price date and off-peak window genai-prices lists.  The
expected figure is genai-prices' own, at the span's timestamp; the SDK's
PriceBook is held to the same figures, so the Python side and the SQL side are
checked against each other through it.
"""

from __future__ import annotations

import sys
from collections import defaultdict
from decimal import Decimal
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
from collector_support import RawClient, make_span, new_request, wait_stored  # noqa: E402
from pricing_cases import DAY_US, coverage, every_model_cases  # noqa: E402

from spanledger.pricing import PriceBook  # noqa: E402

TOLERANCE = Decimal("1e-9")
# ClickHouse refuses one INSERT that touches more than 100 partitions (days); the WAL
# segments of this test are kept under that by sending a bounded number of days per request
DAYS_PER_REQUEST = 90


@pytest.fixture(scope="module")
def cases():
    found, skipped = every_model_cases()
    # genai-prices 0.2.x prices 2,245 models with token usage; the rest need units spans do not carry
    assert len({(c.provider, c.model) for c in found}) >= 2_200, skipped[:5]
    assert len({c.provider for c in found}) >= 40
    # the rules are all exercised (counted with genai-prices alone): dates and off-peak hours,
    # per-request fees, cache writes, reasoning; tiers are reached by construction (every threshold, +1)
    covered = coverage(found)
    assert covered["priced_differently_than_today"] >= 100 and covered["with_request_fee"] >= 1, covered
    assert covered["with_cache_writes"] >= 1_000 and covered["with_reasoning"] >= 1_000, covered
    return found


def _attributes(case) -> dict:
    u = case.usage
    return {"gen_ai.provider.name": case.provider, "gen_ai.request.model": case.model, "gen_ai.operation.name": "chat",
            "gen_ai.usage.input_tokens": u.input_tokens, "gen_ai.usage.output_tokens": u.output_tokens,
            "gen_ai.usage.cache_read.input_tokens": u.cache_read_tokens,
            "gen_ai.usage.cache_creation.input_tokens": u.cache_creation_tokens,
            "gen_ai.usage.reasoning.output_tokens": u.reasoning_tokens}


def test_sdk_price_book_matches_genai_prices_on_every_model(cases) -> None:
    book, wrong = PriceBook(), []
    for case in cases:
        cost = book.cost(case.provider, case.model, case.usage, case.at_ns)
        if cost is None or max(abs(cost.input_usd - case.input_usd), abs(cost.output_usd - case.output_usd),
                               abs(cost.total_usd - case.total_usd)) > TOLERANCE:
            wrong.append((case, cost))
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"


def test_stored_cost_matches_genai_prices_on_every_model(collector, raw_client, cases) -> None:
    by_day = defaultdict(list)
    for i, case in enumerate(cases):
        by_day[case.at_us // DAY_US].append((i, case))
    days = sorted(by_day)
    sent = 0
    for first in range(0, len(days), DAYS_PER_REQUEST):
        request, scope = new_request("every-model")
        for day in days[first:first + DAYS_PER_REQUEST]:
            for i, case in by_day[day]:
                make_span(scope, f"case-{i}", start_ns=case.at_ns, attributes=_attributes(case))
        response = raw_client.export(request.SerializeToString())
        assert response.partial_success.rejected_spans == 0, response.partial_success.error_message
        sent += len(scope.spans)
        wait_stored(collector, sent, timeout=120)  # one request per segment: under the partition limit
    stored = {row[0]: row[1:] for row in collector.store().query(
        "SELECT SpanName, InputCost, OutputCost, TotalCost, CostSource, Timestamp FROM spanledger.otel_traces").result_rows}
    assert len(stored) == len(cases)
    wrong = []
    for i, case in enumerate(cases):
        input_cost, output_cost, total_cost, source, _ = stored[f"case-{i}"]
        if source != "computed" or max(abs(input_cost - case.input_usd), abs(output_cost - case.output_usd),
                                       abs(total_cost - case.total_usd)) > TOLERANCE:
            wrong.append((case, stored[f"case-{i}"]))
    assert not wrong, f"{len(wrong)} of {len(cases)} differ, e.g. {wrong[:3]}"
    # the per-request fees are in the total, as genai-prices counts them (neither input nor output)
    assert any(c.total_usd > c.input_usd + c.output_usd for c in cases)
