"""Every report against a store the real SDK filled, checked against numbers computed from what was sent."""

from __future__ import annotations

import datetime as dt
import statistics
import zoneinfo
from decimal import Decimal

import pytest

from reports_support import expected_spend, fill
from spanledger.collector.errors import ReportError
from spanledger.collector.query import run_query
from spanledger.collector.query.filters import FilterError
from spanledger.collector.query.reports import REPORTS, run_report


@pytest.fixture(scope="module")
def filled(tmp_path_factory):
    collector, sent = fill(tmp_path_factory.mktemp("reports"))
    yield collector, sent
    collector.stop()


def report(filled, name, as_tenant="acme", **params):
    """Run ``name`` for tenant ``as_tenant`` (None: the operator); ``params`` as a query string has them."""
    collector, _ = filled

    def execute(sql, parameters):
        result = run_query(collector, sql, parameters, tenant=as_tenant)
        return list(result.column_names), [list(r) for r in result.result_rows]

    raw = {k: v if isinstance(v, list) else [str(v)] for k, v in params.items()}
    return run_report(name, raw, execute=execute, price_book=collector.price_book, operator=as_tenant is None,
                      time_zone="UTC")


def objects(out):
    return [dict(zip(out["columns"], row)) for row in out["rows"]]


def calls_of(sent, tenant):
    return [c for c in sent.calls if c.tenant == tenant]


def check_spend_row(row, want):
    for key in ("llm_calls", "unpriced_calls", "unpriced_tokens", "input_tokens", "output_tokens",
                "cache_read_tokens", "reasoning_tokens"):
        assert row[key] == want[key], key
    assert Decimal(row["usd"]) == want["usd"]
    assert Decimal(row["cache_savings_usd"]) == want["cache_savings_usd"]
    assert row["cache_hit_ratio"] == pytest.approx(want["cache_read_tokens"] / want["input_tokens"], abs=1e-6)
    assert row["reasoning_share"] == pytest.approx(want["reasoning_tokens"] / want["output_tokens"], abs=1e-6)


@pytest.mark.parametrize("source", ["auto", "raw"])
def test_spend_by_model_matches_what_was_sent(filled, source):
    _, sent = filled
    out = report(filled, "spend", group_by="model", bucket="none", source=source)
    assert out["source"] == ("spanledger.spanledger_usage_hourly" if source == "auto" else "spanledger.otel_traces")
    want = expected_spend(calls_of(sent, "acme"), lambda c: c.model)
    got = {r["model"]: r for r in objects(out)}
    assert set(got) == set(want)
    for model, row in got.items():
        check_spend_row(row, want[model])
    unpriced = got["acme-private-llm-7"]
    assert unpriced["unpriced_calls"] > 0 and Decimal(got["gpt-4o"]["cache_savings_usd"]) > 0


def test_spend_by_user_and_session_per_day_reads_raw_spans(filled):
    _, sent = filled
    out = report(filled, "spend", group_by="user,session", bucket="day")
    assert out["source"] == "spanledger.otel_traces"
    assert any("SessionId" in note for note in out["notes"])
    want = expected_spend(calls_of(sent, "acme"), lambda c: (c.at.date().isoformat(), c.user, c.session))
    got = {(r["bucket"], r["user"], r["session"]): r for r in objects(out)}
    assert set(got) == set(want)
    for key, row in got.items():
        check_spend_row(row, want[key])


@pytest.mark.parametrize("zone,tier", [("Asia/Tokyo", "spanledger.spanledger_usage_hourly"),
                                       ("America/New_York", "spanledger.spanledger_usage_hourly"),
                                       ("Asia/Kolkata", "spanledger.otel_traces")])
def test_spend_buckets_follow_the_time_zone(filled, zone, tier):
    _, sent = filled
    tz = zoneinfo.ZoneInfo(zone)
    for bucket, fmt in (("day", "%Y-%m-%d"), ("hour", "%Y-%m-%d %H:00"), ("month", "%Y-%m")):
        out = report(filled, "spend", group_by="provider", bucket=bucket, time_zone=zone)
        assert out["time_zone"] == zone and out["source"] == tier
        want = expected_spend(calls_of(sent, "acme"), lambda c: (c.at.astimezone(tz).strftime(fmt), c.provider))
        got = {(r["bucket"], r["provider"]): r for r in objects(out)}
        assert set(got) == set(want)
        for key, row in got.items():
            check_spend_row(row, want[key])


def test_spend_range_on_whole_hours_uses_the_rollup_and_else_raw(filled):
    _, sent = filled
    since = sent.start + dt.timedelta(days=2)
    until = sent.start + dt.timedelta(days=5)
    calls = [c for c in calls_of(sent, "acme") if since <= c.at < until]
    for since_text, tier in ((since.isoformat(), "spanledger.spanledger_usage_hourly"),
                             ((since + dt.timedelta(seconds=1)).isoformat(), "spanledger.otel_traces")):
        out = report(filled, "spend", group_by="agent", bucket="none", since=since_text, until=until.isoformat())
        assert out["source"] == tier
        assert out["range"]["until"] == until.isoformat()
        want = expected_spend([c for c in calls if c.at >= dt.datetime.fromisoformat(since_text)], lambda c: c.agent)
        assert {r["agent"]: r["llm_calls"] for r in objects(out)} == {k: v["llm_calls"] for k, v in want.items()}


def test_source_rollup_refuses_what_the_rollup_cannot_answer(filled):
    with pytest.raises(ReportError, match="source=rollup cannot answer this: the hourly rollup has no SessionId"):
        report(filled, "spend", group_by="session", source="rollup")
    with pytest.raises(ReportError, match="rollup"):
        report(filled, "spend", group_by="model", source="rollup", where="status:error")


def test_spend_filters_narrow_both_tiers_alike(filled):
    _, sent = filled
    want = expected_spend([c for c in calls_of(sent, "acme") if c.agent == "coder" and c.model != "gpt-4o"],
                          lambda c: c.model)
    for source in ("auto", "raw"):
        out = report(filled, "spend", group_by="model", bucket="none", source=source,
                     where="agent:coder AND NOT model:gpt-4o")
        got = {r["model"]: r for r in objects(out)}
        assert set(got) == set(want)
        for key, row in got.items():
            check_spend_row(row, want[key])


@pytest.mark.parametrize("key,by", [("user", "cost"), ("session", "tokens"), ("ticket", "cost"), ("trace", "tokens")])
def test_top_pages_through_every_key_in_order(filled, key, by):
    _, sent = filled
    full = objects(report(filled, "top", key=key, by=by, limit=1000))
    paged, cursor, pages = [], None, 0
    while True:
        params = {"key": key, "by": by, "limit": 2} | ({"cursor": cursor} if cursor else {})
        out = report(filled, "top", **params)
        paged += objects(out)
        cursor, pages = out["next_cursor"], pages + 1
        if not cursor:
            break
    assert paged == full and pages == (len(full) + 1) // 2
    values = [Decimal(r["value"]) if by == "cost" else r["value"] for r in full]
    assert values == sorted(values, reverse=True)
    if key in ("user", "session", "ticket"):
        attr = {"user": "user", "session": "session", "ticket": "ticket"}[key]
        want = expected_spend(calls_of(sent, "acme"), lambda c: getattr(c, attr))
        if by == "cost":
            assert {r[key]: Decimal(r["usd"]) for r in full} == {k: v["usd"] for k, v in want.items()}
        else:
            llm_tokens = {k: v["input_tokens"] + v["output_tokens"] for k, v in want.items()}
            assert {r[key]: r["tokens"] for r in full if r[key] in llm_tokens} == llm_tokens


def test_top_cursor_of_another_ordering_is_refused(filled):
    out = report(filled, "top", key="user", by="cost", limit=1)
    with pytest.raises(ReportError, match="cursor"):
        report(filled, "top", key="user", by="tokens", limit=1, cursor=out["next_cursor"])


def test_conversation_is_in_sequence_order_not_time_order(filled):
    _, sent = filled
    rows = objects(report(filled, "conversation", id="conv-1"))
    assert [r["step"] for r in rows] == sent.conversation["acme"]
    assert [r["sequence"] for r in rows] == [1, 2, 3, 4]
    assert rows[2]["timestamp"] < rows[1]["timestamp"]  # the back-dated tool response
    assert rows[1]["tool"] == "get_job_status" and rows[1]["mcp_server"] == "informatica_mcp"


def test_project_timeline_ticket_history_and_session_events(filled):
    _, sent = filled
    rows = objects(report(filled, "project_timeline", id="p0", type="project_action"))
    assert [(r["action"], r["status"]) for r in rows] == [(a, s) for _, a, s in sent.project_actions["acme"]]
    rows = objects(report(filled, "ticket_history", id="T-1", type="ticket_operation"))
    assert [r["operation"] for r in rows] == sent.ticket_ops["acme"]
    rows = objects(report(filled, "session_events", id="s-web-1"))
    assert [r["event_type"] for r in rows] == [e for _, e, _, _, s in sent.product_events["acme"] if s == "s-web-1"]


def test_timeline_pages_cover_every_row_once(filled):
    full = objects(report(filled, "project_timeline", id="p0", limit=1000))
    seen, cursor = [], None
    while True:
        out = report(filled, "project_timeline", id="p0", limit=7, **({"cursor": cursor} if cursor else {}))
        seen += objects(out)
        cursor = out["next_cursor"]
        if not cursor:
            break
    assert seen == full and len({r["span_id"] for r in seen}) == len(full) > 7


def test_agent_stats_success_rate_and_exact_quantiles(filled):
    _, sent = filled
    got = {r["agent"]: r for r in objects(report(filled, "agent_stats"))}
    for agent in ("planner", "coder", "reviewer"):
        mine = [c for c in calls_of(sent, "acme") if c.agent == agent]
        row = got[agent]
        completed = sum(c.run_status == "completed" for c in mine)
        assert (row["runs"], row["completed"]) == (len(mine), completed)
        assert row["failed"] == sum(c.run_status == "failed" for c in mine)
        assert row["conflicts"] == sum(c.run_status == "conflict" for c in mine)
        assert row["pauses"] == sum(c.run_status == "paused" for c in mine)
        assert row["success_rate"] == pytest.approx(completed / len(mine), abs=1e-6)
        q = statistics.quantiles([c.run_ms for c in mine], n=100, method="inclusive")
        for column, want in (("run_p50_ms", q[49]), ("run_p95_ms", q[94]), ("run_p99_ms", q[98])):
            assert row[column] == pytest.approx(want, abs=0.5)  # the simulated clock ticks 20 µs per read
        assert Decimal(row["usd"]) == sum((c.usd for c in mine if c.usd is not None), Decimal(0))


def test_activity_durations_and_events_by_type(filled):
    _, sent = filled
    rows = objects(report(filled, "activity_durations", type="conversation"))
    assert rows[0]["events"] == 4 and rows[0]["max_ms"] == pytest.approx(120.0, abs=0.01)
    runs = {(r["agent"], r["severity"]): r["events"]
            for r in objects(report(filled, "events_by_type", per_agent="yes", type="agent_run"))}
    for agent in ("planner", "coder", "reviewer"):
        mine = [c for c in calls_of(sent, "acme") if c.agent == agent]
        assert runs.get((agent, "success"), 0) == sum(c.run_status == "completed" for c in mine)
        assert runs.get((agent, "warning"), 0) == sum(c.run_status in ("conflict", "paused") for c in mine)
        assert runs.get((agent, "error"), 0) == sum(c.run_status == "failed" for c in mine)


def test_problems_lists_errors_conflicts_and_pauses_newest_first(filled):
    _, sent = filled
    out = report(filled, "problems", limit=1000)
    rows = objects(out)
    assert len(rows) == sent.problems["acme"]
    assert [r["timestamp"] for r in rows] == sorted((r["timestamp"] for r in rows), reverse=True)
    assert {r["status"] for r in rows} == {"failed", "conflict", "paused"}


@pytest.mark.parametrize("zone", ["UTC", "Asia/Tokyo"])
def test_analytics_summary(filled, zone):
    _, sent = filled
    events = sent.product_events["acme"]
    tz = zoneinfo.ZoneInfo(zone)
    (row,) = objects(report(filled, "analytics_summary", time_zone=zone))
    days: dict[str, int] = {}
    for at, *_ in events:
        days[at.astimezone(tz).date().isoformat()] = days.get(at.astimezone(tz).date().isoformat(), 0) + 1
    assert row["total_events"] == len(events)
    assert row["events_by_day"] == days
    assert row["most_active_day"] == min(days.items(), key=lambda kv: (-kv[1], kv[0]))[0]
    assert row["events_by_category"] == {"email": 3, "project": 2}
    assert row["events_by_type"]["email_opened"] == 2
    assert row["most_common_action"] == "opened"


def test_sessions_list(filled):
    _, sent = filled
    rows = {r["session"]: r for r in objects(report(filled, "sessions", limit=1000))}
    for session in ("s-web-1", "s-web-2"):
        assert rows[session]["product_events"] == sum(s == session for *_, s in sent.product_events["acme"])
    assert rows["s1"]["conversations"] == 1


# -- tenancy: every report, two tenants ------------------------------------------------------
DEFAULTS = {"project_timeline": {"id": "p0"}, "conversation": {"id": "conv-1"}, "ticket_history": {"id": "T-1"},
            "session_events": {"id": "s1"}, "spend": {"group_by": "model,user,project", "bucket": "day"},
            "top": {"key": "user"}}


@pytest.mark.parametrize("name", list(REPORTS))
def test_every_report_sees_only_the_callers_tenant(filled, name):
    params = DEFAULTS.get(name, {})
    by_tenant = {}
    for tenant in ("acme", "globex"):
        mine = report(filled, name, tenant, **params)
        as_operator = report(filled, name, None, tenant=tenant, **params)
        strip = lambda out: [[v for c, v in zip(out["columns"], row) if c != "trace_id"] for row in out["rows"]]  # noqa: E731
        assert strip(mine) == strip(as_operator)
        by_tenant[tenant] = mine["rows"]
    assert by_tenant["acme"] != by_tenant["globex"]


def test_tenant_totals_are_their_own(filled):
    _, sent = filled
    for tenant in ("acme", "globex"):
        (row,) = objects(report(filled, "spend", tenant, group_by="none", bucket="none"))
        want = expected_spend(calls_of(sent, tenant), lambda c: "all")["all"]
        check_spend_row(row, want)


def test_a_tenant_cannot_filter_by_tenant(filled):
    with pytest.raises(FilterError, match="operator token"):
        report(filled, "spend", "acme", tenant="globex")


def test_a_filter_the_rollup_lacks_switches_to_raw_spans_and_says_so(filled):
    _, sent = filled
    out = report(filled, "spend", group_by="model", bucket="none", type="llm_call")
    assert out["source"] == "spanledger.otel_traces"
    assert out["notes"] and "'type' is not available here" in out["notes"][0]
    want = expected_spend(calls_of(sent, "acme"), lambda c: c.model)
    got = {r["model"]: r for r in objects(out)}
    assert set(got) == set(want)
    for model, row in got.items():
        check_spend_row(row, want[model])
    top = report(filled, "top", key="user", type="agent_run")
    assert top["source"] == "spanledger.otel_traces" and all(Decimal(r["usd"]) == 0 for r in objects(top))


def test_an_empty_answer_still_names_its_columns(filled):
    out = report(filled, "conversation", id="no-such-conversation")
    assert out["rows"] == [] and out["next_cursor"] is None
    assert out["columns"][:2] == ["sequence", "step"]


def test_spend_says_when_it_cut_rows(filled):
    out = report(filled, "spend", group_by="user", bucket="day", limit=3)
    assert len(out["rows"]) == 3 and out["truncated"] is True
    assert any("more than 3 rows" in note for note in out["notes"])
