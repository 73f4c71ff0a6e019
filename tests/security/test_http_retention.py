"""DELETE /v1/activities under attack: its parameters are values, never SQL, and a tenant's clean-up stays its own.

(Its own module: the embedded engine opens one data dir per process, so this collector cannot run beside the
module-scoped one of test_http_auth.py.)"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "serve"))

from api_support import ACME, GLOBEX, OPERATOR, TENANTS_CONFIG, call, get  # noqa: E402
from collector_support import wait_stored  # noqa: E402


def test_retention_parameters_are_values_never_sql(collector_factory):
    collector = collector_factory(TENANTS_CONFIG)
    api = collector.api.url
    old = [{"type": "tool_call", "start_time": "2026-01-01T12:00:00Z"}]
    assert call(api, "POST", "/v1/activities/batch", old, token=ACME)[0] == 201
    assert call(api, "POST", "/v1/activities/batch", old, token=GLOBEX)[0] == 201
    wait_stored(collector, 2)
    for evil in ("x' OR '1'='1", "acme' --", "globex\\", "'; DROP TABLE spanledger.otel_traces; --"):
        status, body = call(api, "DELETE", "/v1/activities", token=OPERATOR, params={"older_than": "1d", "tenant": evil})
        assert status == 200 and body["deleted_rows"] == 0, (evil, body)
    for evil in ("1d; DROP TABLE x", "2026-01-01' OR 1=1", "-5d", "99999999d"):
        status, body = call(api, "DELETE", "/v1/activities", token=OPERATOR, params={"older_than": evil})
        assert status == 400 and "older_than" in body["error"], (evil, body)
    status, body = call(api, "DELETE", "/v1/activities", token=OPERATOR, params={"older_than": "1d", "tenant": "acme"})
    assert status == 200 and body["deleted_rows"] == 1 and body["dropped_partitions"] == []
    status, page = get(api, "/v1/activities", OPERATOR)
    assert [a["tenant"] for a in page["activities"]] == ["globex"]
    # the trace rows (each span's summary, behind /v1/traces) go with the spans: acme's is gone, globex's stays
    status, body = call(api, "POST", "/v1/sql", {"query": "SELECT TenantId, count() FROM spanledger.otel_traces_trace_rows "
                                                          "GROUP BY TenantId"}, token=OPERATOR)
    assert status == 200 and body["rows"] == [["globex", 1]], body
    assert get(api, f"/v1/traces/{page['activities'][0]['trace_id']}", GLOBEX)[0] == 200
