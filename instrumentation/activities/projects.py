"""Project actions: the timeline of what happened to a user's project.

Action types from the seeds are constants of :class:`ProjectAction`; any other
string is accepted.  The status vocabulary is normalised so it can be queried
with the other activities: ``success``/``succeeded``/``ok`` -> ``completed``,
``error``/``failure`` -> ``failed``; other values are kept as given.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

from spanledger import semconv as sc
from spanledger._safe import never_fail
from spanledger.activities._base import ActivityRef, Attributes, merge_attributes, put, record_instant


class ProjectAction:
    PROJECT_CREATED: Final = "project_created"
    DATABASE_CREATED: Final = "database_created"
    ENDPOINTS_ADDED: Final = "endpoints_added"
    QUERIES_EXECUTED: Final = "queries_executed"
    DEPLOYMENT: Final = "deployment"
    GITHUB_PUSH: Final = "github_push"
    ENDPOINTS_MODIFIED: Final = "endpoints_modified"
    TABLES_ADDED: Final = "tables_added"


_STATUS_ALIASES: Final = {
    "success": "completed", "succeeded": "completed", "ok": "completed", "done": "completed",
    "error": "failed", "failure": "failed",
}  # fmt: skip


def normalize_status(status: Any) -> str | None:
    if status is None:
        return None
    text = str(status)
    return _STATUS_ALIASES.get(text.lower(), text)


@never_fail()
def project_action(
    action_type: str,
    *,
    project_id: str | None = None,
    user_id: str | None = None,
    request_id: str | None = None,
    details: str | None = None,
    status: str | None = "success",
    environment: str | None = None,
    duration_ms: float | None = None,
    error: BaseException | str | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ActivityRef | None:
    """Record a project action (``project.{action_type}``); ``error`` implies status ``failed``."""
    action_type = str(action_type) if action_type else "custom"
    attrs: Attributes = {sc.ACTIVITY_TYPE: "project_action", sc.PROJECT_ACTION_TYPE: action_type}
    put(attrs, sc.PROJECT_ID, project_id)
    put(attrs, sc.USER_ID, user_id)
    put(attrs, sc.REQUEST_ID, request_id)
    put(attrs, sc.PROJECT_ACTION_DETAILS, details)
    put(attrs, sc.STATUS, "failed" if error is not None else normalize_status(status))
    put(attrs, sc.ENVIRONMENT, environment)
    put(attrs, sc.DURATION_MS, duration_ms)
    merge_attributes(attrs, attributes)
    return record_instant(f"project.{action_type}", attrs, duration_ms=duration_ms, error=error)
