"""One activity as the API shows it (the same JSON shape as GET /v1/activities), and the SQL that reads it.

Values are formatted by the engine where exactness matters: the cost is the
Decimal's own text (``toString``), never a float, and the start time is ISO
8601 in UTC with microseconds.
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


def activity_select() -> str:
    """The SELECT list of the activity columns, aliased ``a_<name>`` so no alias shadows a real column."""
    return ", ".join(f"{expr} AS a_{name}" for name, expr in ACTIVITY_COLUMNS)


def cost_units(cost_text: str) -> int:
    """'0.000123' -> 123000000 (units of 1e-12 USD), exactly."""
    whole, _, frac = cost_text.partition(".")
    negative = whole.startswith("-")
    units = int(whole or "0") * 10 ** COST_SCALE
    frac_units = int((frac + "0" * COST_SCALE)[:COST_SCALE] or "0")
    return units - frac_units if negative else units + frac_units


def units_to_text(units: int) -> str:
    """123000000 -> '0.000123': the exact decimal, without trailing zeros."""
    sign = "-" if units < 0 else ""
    whole, frac = divmod(abs(units), 10 ** COST_SCALE)
    frac_text = f"{frac:0{COST_SCALE}d}".rstrip("0")
    return f"{sign}{whole}.{frac_text}" if frac_text else f"{sign}{whole}"
