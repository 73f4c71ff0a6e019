"""Product analytics events: what users do in the product (category, action, entity).

``category``/``action`` default to the first and last words of ``event_type``
(``project_subtask_completed`` -> ``project`` / ``completed``).  ``metadata``
entries become ``spanledger.event.metadata.<key>`` attributes (nested values as
JSON) so the collector can filter on them.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from spanledger import semconv as sc
from spanledger._jsonish import flatten_attributes
from spanledger._safe import never_fail
from spanledger.activities._base import ActivityRef, Attributes, merge_attributes, put, record_instant


@never_fail()
def product_event(
    event_type: str,
    *,
    category: str | None = None,
    action: str | None = None,
    entity_type: str | None = None,
    entity_id: str | None = None,
    device_type: str | None = None,
    duration_ms: float | None = None,
    user_id: str | None = None,
    session_id: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    attributes: Mapping[str, Any] | None = None,
) -> ActivityRef | None:
    """Record a product event as a finished span named ``event_type``."""
    event_type = str(event_type) if event_type else "event"
    words = event_type.split("_")
    attrs: Attributes = {
        sc.ACTIVITY_TYPE: "product_event",
        sc.EVENT_TYPE: event_type,
        sc.EVENT_CATEGORY: str(category) if category else words[0],
        sc.EVENT_ACTION: str(action) if action else words[-1],
    }
    put(attrs, sc.ENTITY_TYPE, entity_type)
    put(attrs, sc.ENTITY_ID, entity_id)
    put(attrs, sc.DEVICE_TYPE, device_type)
    put(attrs, sc.DURATION_MS, duration_ms)
    put(attrs, sc.USER_ID, user_id)
    put(attrs, sc.SESSION_ID, session_id)
    if metadata:
        attrs.update(flatten_attributes(sc.EVENT_METADATA_PREFIX, metadata))
    merge_attributes(attrs, attributes)
    return record_instant(event_type, attrs, duration_ms=duration_ms)
