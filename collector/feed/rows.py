"""One activity as the API shows it (the same JSON shape as GET /v1/activities), and the SQL that reads it.

The engine writes the JSON (``activity_json_sql``): the
cost is the Decimal's own text (``toString``), never a float, token counts are
plain integers, and the start time is ISO 8601 in UTC with microseconds.
"""

from __future__ import annotations

from ..query.filters import FIELDS

# (JSON name, column expression of the spans table), in the order the JSON has them
ACTIVITY_COLUMNS: tuple[tuple[str, str], ...] = (
    ("trace_id", "TraceId"),
    ("span_id", "SpanId"),
    ("parent_span_id", "ParentSpanId"),
    ("name", "SpanName"),
    ("type", "ActivityType"),
    ("agent", "AgentName"),
    ("service", "ServiceName"),
    ("model", "Model"),
    ("provider", "Provider"),
    ("start_time", "formatDateTime(Timestamp, '%Y-%m-%dT%H:%i:%S.%fZ', 'UTC')"),
    ("duration_ms", "Duration / 1e6"),
    ("status", FIELDS["status"].column),
    ("severity", "Severity"),
    ("input_tokens", "InputTokens"),
    ("output_tokens", "OutputTokens"),
    ("cost_usd", "toString(TotalCost)"),
    ("cost_source", "CostSource"),
    ("user_id", "UserId"),
    ("session_id", "SessionId"),
    ("project_id", "ProjectId"),
    ("ticket_id", "TicketId"),
    ("conversation_id", "ConversationId"),
)
ACTIVITY_FIELDS = tuple(name for name, _ in ACTIVITY_COLUMNS)

# TotalCost is Decimal(18, 12): totals are summed as integers of 1e-12 USD, exactly
COST_SCALE = 12
# exact: widened to Decimal128 first (Decimal64 * 1e12 would overflow for large costs), then the whole part
COST_UNITS_SQL = f"toInt64(toDecimal128(TotalCost, {COST_SCALE}) * {10 ** COST_SCALE})"


NUMERIC_FIELDS = frozenset({"duration_ms", "input_tokens", "output_tokens"})


def activity_json_sql() -> str:
    """An expression giving each row's activity as JSON text, built by the engine: one string per row to
    Python instead of 22 values and no encoding in Python.  ``concat`` of ``toJSONString`` per value
    (measured 3-4x cheaper in the engine than ``formatRowNoNewline('JSONEachRow', ...)``, and ~8x
    cheaper overall than json.dumps over the columns); the keys are fixed ASCII names."""
    parts = []
    for i, (name, expr) in enumerate(ACTIVITY_COLUMNS):
        parts.append(f"'{'{' if i == 0 else ','}\"{name}\":'")
        parts.append(f"toString({expr})" if name in NUMERIC_FIELDS else f"toJSONString({expr})")
    return "concat(" + ", ".join(parts) + ", '}')"


def units_to_text(units: int) -> str:
    """123000000 -> '0.000123': the exact decimal, without trailing zeros."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10 ** COST_SCALE)
    frac_text = f"{frac:0{COST_SCALE}d}".rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"
